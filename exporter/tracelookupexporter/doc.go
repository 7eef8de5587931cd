// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

//go:generate mdatagen metadata.yaml

// Package tracelookupexporter writes every batch that reaches the end of a
// traces pipeline into a tracelookup extension's index: after the
// pipeline's processors (redaction, attributes, sampling), behind any
// receiver.
package tracelookupexporter // import "github.com/otelcol-tracelookup/otelcol-tracelookup/exporter/tracelookupexporter"
