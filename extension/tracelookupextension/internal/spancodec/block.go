// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package spancodec // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"

import (
	"encoding/binary"
	"errors"
	"slices"

	"github.com/klauspost/compress/s2"
)

// A block holds the records one batch added to one trace. Blocks are written
// back to back, each preceded by a uvarint header: its payload length shifted
// left once, with the low bit set when the payload is stored raw because
// compression did not pay. Every block is written once and never rewritten:
// a trace that receives spans in many batches holds many blocks, and no
// byte is compressed twice. S2 is chosen over zstd for speed: every span the
// index keeps is compressed on ingest, and S2 compresses several times faster,
// while the records' repetition (attribute keys, names, service strings) is
// what both remove.

// errBadBlock is returned for blocks that do not decode.
var errBadBlock = errors.New("spancodec: corrupt block")

// Seal appends records to dst as one block, compressed when that makes it
// smaller. scratch is reusable memory for the compressor; Seal returns it
// grown as needed.
func Seal(dst, records, scratch []byte) (out, scratchOut []byte) {
	if n := s2.MaxEncodedLen(len(records)); cap(scratch) < n {
		scratch = make([]byte, n)
	}
	block := s2.Encode(scratch[:cap(scratch)], records)
	if len(block) < len(records) {
		dst = binary.AppendUvarint(dst, uint64(len(block))<<1)
		return append(dst, block...), scratch
	}
	dst = binary.AppendUvarint(dst, uint64(len(records))<<1|1)
	return append(dst, records...), scratch
}

// Unseal decodes blocks, appending their records to dst. It sizes dst once
// and decodes every block in place.
func Unseal(dst, blocks []byte) ([]byte, error) {
	total := 0
	for rest := blocks; len(rest) > 0; {
		payload, raw, next, err := nextBlock(rest)
		if err != nil {
			return nil, err
		}
		size := len(payload)
		if !raw {
			if size, err = s2.DecodedLen(payload); err != nil {
				return nil, errBadBlock
			}
		}
		total += size
		rest = next
	}
	dst = slices.Grow(dst, total)
	for len(blocks) > 0 {
		payload, raw, next, _ := nextBlock(blocks)
		if raw {
			dst = append(dst, payload...)
		} else {
			size, _ := s2.DecodedLen(payload)
			start := len(dst)
			dst = dst[:start+size]
			if _, err := s2.Decode(dst[start:], payload); err != nil {
				return nil, errBadBlock
			}
		}
		blocks = next
	}
	return dst, nil
}

// UnsealedLen is the size of blocks' records once unsealed, as far as the
// blocks' headers tell.
func UnsealedLen(blocks []byte) int {
	total := 0
	for len(blocks) > 0 {
		payload, raw, next, err := nextBlock(blocks)
		if err != nil {
			break
		}
		size := len(payload)
		if !raw {
			if size, err = s2.DecodedLen(payload); err != nil {
				size = 0
			}
		}
		total += size
		blocks = next
	}
	return total
}

// nextBlock splits the first block off blocks.
func nextBlock(blocks []byte) (payload []byte, raw bool, rest []byte, err error) {
	h, k := binary.Uvarint(blocks)
	n := h >> 1
	if k <= 0 || n > uint64(len(blocks)-k) {
		return nil, false, nil, errBadBlock
	}
	return blocks[k : k+int(n)], h&1 == 1, blocks[k+int(n):], nil
}

// SplitBlock splits the first block, header included, off blocks.
func SplitBlock(blocks []byte) (block, rest []byte, err error) {
	_, _, rest, err = nextBlock(blocks)
	if err != nil {
		return nil, nil, err
	}
	return blocks[:len(blocks)-len(rest)], rest, nil
}
