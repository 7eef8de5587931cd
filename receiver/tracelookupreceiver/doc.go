// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

//go:generate mdatagen metadata.yaml

// Package tracelookupreceiver receives OTLP traces over gRPC and HTTP, writes
// every span into a tracelookup extension's index and passes the data on,
// unchanged, to the next consumer.
package tracelookupreceiver // import "github.com/otelcol-tracelookup/otelcol-tracelookup/receiver/tracelookupreceiver"
