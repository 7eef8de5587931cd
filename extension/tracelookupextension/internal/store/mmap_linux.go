// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import "syscall"

// mapFlags populates a new chunk's pages in the mmap call itself: one
// system call instead of a page fault for every 4 KiB as ingest first
// writes each page. A chunk is mapped only to be filled.
const mapFlags = syscall.MAP_ANON | syscall.MAP_PRIVATE | syscall.MAP_POPULATE
