// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

//go:generate mdatagen metadata.yaml

// Package tracelookupextension keeps recent spans in a bounded in-memory index
// and serves trace lookups over HTTP from it.
package tracelookupextension // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension"
