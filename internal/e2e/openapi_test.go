// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"net/http"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi/datamodel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// The built collector serves its OpenAPI document, and its answers to a
// trace sent with the OTel SDK, on every contract, are what it says.
func TestCollectorAnswersMatchItsOpenAPIDocument(t *testing.T) {
	n := startNode(t, "")
	const callID = "7d3f9a2e-1b4c-4d5e-8f60-718293a4b5c6"
	root := sendSpan(t, n, "frontend", "GET /checkout", trace.SpanContext{}, attribute.String("call.id", callID))
	sendSpan(t, n, "payment", "charge", root, attribute.Int("amount", 42))
	id := root.TraceID().String()

	served := mustDo(t, "GET", n.url()+"/api/openapi.json", nil)
	require.Equal(t, http.StatusOK, served.Status)
	spec := served.Body
	doc, err := libopenapi.NewDocumentWithConfiguration(spec, &datamodel.DocumentConfiguration{
		IgnoreArrayCircularReferences: true, IgnorePolymorphicCircularReferences: true,
	})
	require.NoError(t, err)
	v, errs := validator.NewValidator(doc)
	require.Empty(t, errs)

	for _, tt := range []struct {
		path, accept string
		status       int
	}{
		{"/api/v1/traces/" + id, "", 200},
		{"/api/v1/traces/" + id + "?flat=true", "", 200},
		{"/api/v1/traces/" + randomTraceID(t), "", 404},
		{"/api/v1/traces?service=payment", "", 200},
		{"/v1/trace/call/" + callID, "", 200},
		{"/v1/trace/call/not-a-uuid", "", 422},
		{"/api/v2/trace/" + id, "", 200},
		{"/api/v2/trace/" + randomTraceID(t), "", 404},
		{"/api/v2/traces/" + id, "", 200},
		{"/api/v2/traces/" + id, "application/protobuf", 200},
		{"/api/search?q=%7Bresource.service.name%3D%22payment%22%7D", "", 200},
		{"/api/traces/" + id, "", 200},
		{"/api/traces?service=frontend", "", 200},
		{"/api/v3/traces/" + id, "", 200},
		{"/api/v3/services", "", 200},
		{"/zipkin/api/v2/trace/" + id, "", 200},
		{"/zipkin/api/v2/services", "", 200},
	} {
		req, err := http.NewRequest(http.MethodGet, n.url()+tt.path, http.NoBody)
		require.NoError(t, err)
		if tt.accept != "" {
			req.Header.Set("Accept", tt.accept)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.Equal(t, tt.status, resp.StatusCode, tt.path)
		ok, errs := v.ValidateHttpResponse(req, resp)
		for _, e := range errs {
			t.Errorf("%s: %s: %s %v", tt.path, e.Message, e.Reason, e.SchemaValidationErrors)
		}
		assert.True(t, ok, tt.path)
		resp.Body.Close()
	}
}
