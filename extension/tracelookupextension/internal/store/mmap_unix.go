// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

//go:build unix

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import (
	"fmt"
	"syscall"
)

// mapChunk allocates a chunk outside the Go heap, as anonymous private
// memory: the garbage collector neither scans it nor counts it towards its
// heap goal, and its pages become resident only when written.
func mapChunk(size int) []byte {
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, mapFlags)
	if err != nil {
		// As the Go runtime does when the system refuses memory.
		panic(fmt.Sprintf("tracelookup index: cannot map %d bytes: %v", size, err))
	}
	return mem
}

// unmapChunk gives a chunk's memory back to the system.
func unmapChunk(mem []byte) {
	if mem != nil {
		_ = syscall.Munmap(mem)
	}
}
