// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupreceiver // import "github.com/otelcol-tracelookup/otelcol-tracelookup/receiver/tracelookupreceiver"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/receiver/tracelookupreceiver/internal/metadata"
)

const (
	defaultGRPCEndpoint  = "localhost:4317"
	defaultHTTPEndpoint  = "localhost:4318"
	defaultTracesURLPath = "/v1/traces"
	// defaultMaxAttributeDepth is far more than any instrumentation nests.
	defaultMaxAttributeDepth = 64
	// defaultHTTPReadTimeout bounds reading one request, body included, so
	// that a client sending it slowly cannot hold a connection open.
	defaultHTTPReadTimeout = 30 * time.Second
)

// defaultExtension is the extension the receiver feeds unless told otherwise.
var defaultExtension = component.MustNewID("tracelookup")

// NewFactory returns the tracelookup receiver's factory.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(metadata.Type, createDefaultConfig,
		receiver.WithTraces(createTraces, metadata.TracesStability))
}

// createDefaultConfig matches the otlp receiver's defaults.
func createDefaultConfig() component.Config {
	grpcCfg := configgrpc.NewDefaultServerConfig()
	grpcCfg.NetAddr.Endpoint = defaultGRPCEndpoint
	grpcCfg.ReadBufferSize = 512 * 1024

	httpCfg := confighttp.NewDefaultServerConfig()
	httpCfg.NetAddr.Endpoint = defaultHTTPEndpoint
	httpCfg.TLS = configoptional.None[configtls.ServerConfig]()
	// confighttp's defaults (read_header_timeout 1m, write_timeout 30s,
	// idle_timeout 1m) stay, and the body is bounded in time as well.
	httpCfg.ReadTimeout = defaultHTTPReadTimeout

	return &Config{
		Protocols: Protocols{
			GRPC: configoptional.Default(grpcCfg),
			HTTP: configoptional.Default(HTTPConfig{ServerConfig: httpCfg, TracesURLPath: defaultTracesURLPath}),
		},
		Extension:         defaultExtension,
		MaxAttributeDepth: defaultMaxAttributeDepth,
	}
}

func createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	return newReceiver(cfg.(*Config), set, next)
}
