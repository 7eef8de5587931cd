// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

//go:build unix && !linux

package store // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"

import "syscall"

const mapFlags = syscall.MAP_ANON | syscall.MAP_PRIVATE
