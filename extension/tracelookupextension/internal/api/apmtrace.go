// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import "net/http"

// apmTrace is the 003 contract, GET /api/v2/trace/{trace_id}.
type apmTrace struct{ h *Handler }

func (apmTrace) writeError(w http.ResponseWriter, status int, _, message string) {
	writeStatusError(w, status, "NOT_IMPLEMENTED", message)
}

func (a apmTrace) serve(w http.ResponseWriter, _ *http.Request, _ string) Outcome {
	a.writeError(w, http.StatusNotFound, "", "not served yet")
	return OutcomeNotFound
}
