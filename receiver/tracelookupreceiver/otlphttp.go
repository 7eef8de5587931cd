// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupreceiver // import "github.com/otelcol-tracelookup/otelcol-tracelookup/receiver/tracelookupreceiver"

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/receiver/tracelookupreceiver/internal/nesting"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension"
)

const (
	pbContentType   = "application/x-protobuf"
	jsonContentType = "application/json"
	dataFormatJSON  = "json"
)

// handleTraces serves OTLP/HTTP: protobuf or JSON in, the same encoding out.
func handleTraces(w http.ResponseWriter, req *http.Request, exp *exporter) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writePlain(w, http.StatusMethodNotAllowed, fmt.Sprintf("%d method not allowed, supported: [POST]", http.StatusMethodNotAllowed))
		return
	}
	isJSON := false
	switch mediaType(req.Header.Get("Content-Type")) {
	case pbContentType:
	case jsonContentType:
		isJSON = true
	default:
		writePlain(w, http.StatusUnsupportedMediaType, fmt.Sprintf("%d unsupported media type, supported: [%s, %s]", http.StatusUnsupportedMediaType, jsonContentType, pbContentType))
		return
	}
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		writeStatus(w, isJSON, status.New(codes.InvalidArgument, err.Error()))
		return
	}
	otlpReq, format, err := exp.unmarshal(body, isJSON)
	if err != nil {
		writeStatus(w, isJSON, status.New(codes.InvalidArgument, err.Error()))
		return
	}
	resp, err := exp.export(req.Context(), tracelookupextension.TenantOf(req.Header.Values(exp.index.TenantHeader())), otlpReq.Traces(), format)
	if err != nil {
		s, _ := status.FromError(err)
		writeStatus(w, isJSON, s)
		return
	}
	var msg []byte
	if isJSON {
		msg, err = resp.MarshalJSON()
	} else {
		msg, err = resp.MarshalProto()
	}
	if err != nil {
		writeStatus(w, isJSON, status.New(codes.Internal, err.Error()))
		return
	}
	writeBody(w, isJSON, http.StatusOK, msg)
}

// unmarshal checks a request body, then unmarshals it.
func (e *exporter) unmarshal(body []byte, isJSON bool) (ptraceotlp.ExportRequest, string, error) {
	req := ptraceotlp.NewExportRequest()
	if !isJSON {
		if err := nesting.CheckProto(body, e.maxDepth); err != nil {
			return req, dataFormatProtobuf, err
		}
		return req, dataFormatProtobuf, req.UnmarshalProto(body)
	}
	// JSON text is UTF-8 (RFC 8259); the unmarshaler would fail on it with an error of its own.
	if !utf8.Valid(body) {
		return req, dataFormatJSON, errors.New("the request body is not valid UTF-8, which JSON must be")
	}
	if err := nesting.CheckJSON(body, e.maxDepth); err != nil {
		return req, dataFormatJSON, err
	}
	return req, dataFormatJSON, req.UnmarshalJSON(body)
}

func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return mt
}

// httpStatusOf maps a gRPC code to the OTLP/HTTP status code the OTLP
// specification gives it (retryable codes to 429 and 503).
func httpStatusOf(c codes.Code) int {
	switch c {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.Unavailable, codes.DataLoss:
		return http.StatusServiceUnavailable
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unimplemented:
		return http.StatusNotFound
	default:
		return http.StatusInternalServerError
	}
}

// codeOf maps an HTTP status back to a gRPC code, for errors that the HTTP
// server raises itself (authentication, body size, decompression).
func codeOf(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.Unimplemented
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return codes.Unavailable
	default:
		return codes.Unknown
	}
}

// writeStatus writes a google.rpc.Status body, as OTLP/HTTP prescribes for failures.
func writeStatus(w http.ResponseWriter, isJSON bool, s *status.Status) {
	writeStatusAs(w, isJSON, s, httpStatusOf(s.Code()))
}

func writeStatusAs(w http.ResponseWriter, isJSON bool, s *status.Status, httpStatus int) {
	// A throttled request says when to retry, if the pipeline said so (a
	// RetryInfo detail), as the otlp receiver does.
	if httpStatus == http.StatusTooManyRequests || httpStatus == http.StatusServiceUnavailable {
		for _, d := range s.Details() {
			if info, ok := d.(*errdetails.RetryInfo); ok {
				w.Header().Set("Retry-After", strconv.FormatInt(int64(info.GetRetryDelay().AsDuration()/time.Second), 10))
			}
		}
	}
	var (
		msg []byte
		err error
	)
	if isJSON {
		msg, err = protojson.Marshal(s.Proto())
	} else {
		msg, err = proto.Marshal(s.Proto())
	}
	if err != nil {
		writePlain(w, http.StatusInternalServerError, "failed to marshal error status")
		return
	}
	writeBody(w, isJSON, httpStatus, msg)
}

// errorHandlerOption answers errors the HTTP server raises itself in OTLP's
// status format, keeping the server's status code: a 401 stays a 401.
func errorHandlerOption() confighttp.ToServerOption {
	return confighttp.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, errMsg string, statusCode int) {
		isJSON := mediaType(r.Header.Get("Content-Type")) != pbContentType
		writeStatusAs(w, isJSON, status.New(codeOf(statusCode), errMsg), statusCode)
	})
}

func writeBody(w http.ResponseWriter, isJSON bool, code int, msg []byte) {
	ct := pbContentType
	if isJSON {
		ct = jsonContentType
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(code)
	_, _ = w.Write(msg)
}

func writePlain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}
