// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

//go:build !race

package api

// raceEnabled: the race detector changes what the runtime allocates.
const raceEnabled = false
