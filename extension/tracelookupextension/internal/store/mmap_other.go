// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

//go:build !unix

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

// mapChunk allocates a chunk on the Go heap where there is no mmap; chunks
// are still reused, so the bound holds, with the collector's headroom on top.
func mapChunk(size int) []byte { return make([]byte, size) }

func unmapChunk([]byte) {}
