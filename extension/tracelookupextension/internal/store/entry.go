// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"encoding/binary"
	"errors"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/spancodec"
)

// What one batch adds to one trace is one entry in the chunk log: the keys
// of the spans it stored (see spanKey), then their block (see
// spancodec.Seal):
//
//	uvarint(key count) | key count x 8 bytes, little-endian | block
//
// The keys live in the log, not on the Go heap, because they are read only
// when a later batch of the same trace is checked for duplicates; on the
// heap they would cost eight bytes a span and the collector's headroom on top.

var errBadEntry = errors.New("store: corrupt entry")

// appendEntryKeys appends an entry's keys; its block follows them.
func appendEntryKeys(dst []byte, keys []uint64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = binary.LittleEndian.AppendUint64(dst, k)
	}
	return dst
}

// forEntries calls fn with the keys and the block of each entry in data.
func forEntries(data []byte, fn func(keys, block []byte)) error {
	for len(data) > 0 {
		n, k := binary.Uvarint(data)
		if k <= 0 || n > uint64(len(data)-k)/8 {
			return errBadEntry
		}
		keys := data[k : k+8*int(n)]
		block, rest, err := spancodec.SplitBlock(data[k+8*int(n):])
		if err != nil {
			return err
		}
		fn(keys, block)
		data = rest
	}
	return nil
}

// blocksOnly drops the keys from entries in place, leaving the blocks back
// to back, as spancodec.Unseal reads them.
func blocksOnly(entries []byte) ([]byte, error) {
	out := entries[:0]
	err := forEntries(entries, func(_, block []byte) { out = append(out, block...) })
	return out, err
}

// appendKeys appends the keys of every entry to dst.
func appendKeys(dst []uint64, entries []byte) ([]uint64, error) {
	err := forEntries(entries, func(keys, _ []byte) {
		for i := 0; i < len(keys); i += 8 {
			dst = append(dst, binary.LittleEndian.Uint64(keys[i:]))
		}
	})
	return dst, err
}
