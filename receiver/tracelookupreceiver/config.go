// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupreceiver // import "github.com/otelcol-tracelookup/otelcol-tracelookup/receiver/tracelookupreceiver"

import (
	"errors"
	"fmt"
	"net/url"
	"path"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
)

// HTTPConfig is the OTLP/HTTP server, as in the otlp receiver.
type HTTPConfig struct {
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`

	// TracesURLPath is where traces are received; "/v1/traces" by default.
	TracesURLPath string `mapstructure:"traces_url_path,omitempty"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Protocols are the OTLP transports, as in the otlp receiver.
type Protocols struct {
	GRPC configoptional.Optional[configgrpc.ServerConfig] `mapstructure:"grpc"`
	HTTP configoptional.Optional[HTTPConfig]              `mapstructure:"http"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Config is the tracelookup receiver's configuration.
type Config struct {
	// Protocols is the same block as the otlp receiver's.
	Protocols Protocols `mapstructure:"protocols"`
	// Extension names the tracelookup extension whose index receives every span.
	Extension component.ID `mapstructure:"extension"`
	// MaxAttributeDepth refuses a request holding an attribute value nested
	// deeper than this many levels of arrays and maps, before it is unmarshaled.
	MaxAttributeDepth int `mapstructure:"max_attribute_depth"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

// maxAttributeDepthLimit keeps pdata's recursion, one stack frame per
// level, far from the goroutine stack's limit.
const maxAttributeDepthLimit = 10_000

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if !cfg.Protocols.GRPC.HasValue() && !cfg.Protocols.HTTP.HasValue() {
		errs = append(errs, errors.New(`"protocols" must enable at least one of grpc and http`))
	}
	if cfg.Protocols.HTTP.HasValue() {
		p := cfg.Protocols.HTTP.Get().TracesURLPath
		if u, err := url.Parse(p); err != nil || !path.IsAbs(u.Path) || u.Path != p {
			errs = append(errs, fmt.Errorf(`"protocols::http::traces_url_path" must be an absolute URL path such as "/v1/traces", got %q`, p))
		}
	}
	if cfg.MaxAttributeDepth < 1 || cfg.MaxAttributeDepth > maxAttributeDepthLimit {
		errs = append(errs, fmt.Errorf(`"max_attribute_depth" must be between 1 and %d, got %d`, maxAttributeDepthLimit, cfg.MaxAttributeDepth))
	}
	if cfg.Extension.Type().String() == "" {
		errs = append(errs, errors.New(`"extension" must name a tracelookup extension, for example "tracelookup"`))
	}
	return errors.Join(errs...)
}
