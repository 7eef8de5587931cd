// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	_ "embed"
	"net/http"
	"net/url"
)

// openAPI is the OpenAPI 3.1 document of every route this API serves, its
// contracts' error formats included; openapi_test.go checks it with an
// OpenAPI validator and validates the routes' answers against it.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the API's OpenAPI 3.1 document.
func OpenAPI() []byte { return openAPI }

func serveOpenAPI(w http.ResponseWriter, _ *http.Request, _ string, _ url.Values) Outcome {
	writeJSON(w, http.StatusOK, openAPI)
	return OutcomeFound
}
