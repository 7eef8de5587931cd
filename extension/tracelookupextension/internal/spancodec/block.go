// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package spancodec // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"

import (
	"encoding/binary"
	"errors"
	"slices"

	"github.com/klauspost/compress/s2"
)

// Sealed blocks are S2 blocks of encoded records, each preceded by its
// compressed length as a uvarint, so a trace sealed several times holds the
// blocks back to back. S2 is chosen over zstd for speed: sealing runs for
// every span the index keeps, and S2 compresses several times faster, while
// the records' repetition (resource records, attribute keys, names) is what
// both remove.

// errBadBlock is returned for sealed data that does not decode.
var errBadBlock = errors.New("spancodec: corrupt sealed block")

// Seal compresses encoded records into a block, appended to dst. ok is false
// when compression does not pay; the caller keeps the records as they are.
func Seal(dst, records []byte) ([]byte, bool) {
	block := s2.Encode(nil, records)
	if len(block)+binary.MaxVarintLen32 >= len(records) {
		return dst, false
	}
	dst = binary.AppendUvarint(dst, uint64(len(block)))
	return append(dst, block...), true
}

// Unseal decompresses sealed blocks, appending the records to dst. It sizes
// dst once and decodes every block in place.
func Unseal(dst, blocks []byte) ([]byte, error) {
	total := 0
	for rest := blocks; len(rest) > 0; {
		block, next, err := nextBlock(rest)
		if err != nil {
			return nil, err
		}
		size, err := s2.DecodedLen(block)
		if err != nil {
			return nil, errBadBlock
		}
		total += size
		rest = next
	}
	dst = slices.Grow(dst, total)
	for len(blocks) > 0 {
		block, next, _ := nextBlock(blocks)
		size, _ := s2.DecodedLen(block)
		start := len(dst)
		dst = dst[:start+size]
		if _, err := s2.Decode(dst[start:], block); err != nil {
			return nil, errBadBlock
		}
		blocks = next
	}
	return dst, nil
}

// nextBlock splits the first length-prefixed block off blocks.
func nextBlock(blocks []byte) (block, rest []byte, err error) {
	n, k := binary.Uvarint(blocks)
	if k <= 0 || n > uint64(len(blocks)-k) {
		return nil, nil, errBadBlock
	}
	return blocks[k : k+int(n)], blocks[k+int(n):], nil
}
