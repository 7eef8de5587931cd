// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import "net/http"

// callTrace is the 000 contract, GET /v1/trace/call/{call_id}.
type callTrace struct{ h *Handler }

func (callTrace) writeError(w http.ResponseWriter, status int, code, message string) {
	writeStatusError(w, status, code, message)
}

func (c callTrace) serve(w http.ResponseWriter, _ *http.Request, _ string) Outcome {
	c.writeError(w, http.StatusNotFound, "NOT_FOUND", "not served yet")
	return OutcomeNotFound
}
