// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupreceiver // import "github.com/otelcol-tracelookup/otelcol-tracelookup/receiver/tracelookupreceiver"

import (
	"encoding"
	"errors"
	"fmt"
	"net/url"
	"path"
	"reflect"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/internal/configkeys"
)

// HTTPConfig is the OTLP/HTTP server, as in the otlp receiver.
type HTTPConfig struct {
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`

	// TracesURLPath is where traces are received; "/v1/traces" by default.
	// A path without its leading slash gets one, as the otlp receiver reads it.
	TracesURLPath URLPath `mapstructure:"traces_url_path,omitempty"`

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

// URLPath is a URL path as the otlp receiver sanitizes it: the path of
// what is given (no query), with a leading slash.
type URLPath string

var _ encoding.TextUnmarshaler = (*URLPath)(nil)

// UnmarshalText reads and sanitizes a URL path.
func (p *URLPath) UnmarshalText(text []byte) error {
	u, err := url.Parse(string(text))
	if err != nil {
		return fmt.Errorf("invalid URL path %q: %w", text, err)
	}
	if !path.IsAbs(u.Path) {
		u.Path = "/" + u.Path
	}
	*p = URLPath(u.Path)
	return nil
}

var (
	_ component.Config    = (*Config)(nil)
	_ confmap.Unmarshaler = (*Config)(nil)
)

// Unmarshal decodes the configuration and refuses unknown keys under
// protocols::http, which confighttp.ServerConfig, squashed into
// HTTPConfig, would otherwise silently ignore (a misspelt option).
func (cfg *Config) Unmarshal(conf *confmap.Conf) error {
	if conf.IsSet("protocols::http") {
		sub, err := conf.Sub("protocols::http")
		if err != nil {
			return err
		}
		if err := configkeys.Check(sub.ToStringMap(), configkeys.Of(reflect.TypeFor[HTTPConfig]()), "protocols::http::", "tracelookup receiver's README"); err != nil {
			return err
		}
	}
	type plain Config // no methods: decodes the fields without calling back here
	return conf.Unmarshal((*plain)(cfg))
}

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
		p := string(cfg.Protocols.HTTP.Get().TracesURLPath)
		// A route pattern cannot hold spaces or braces (ServeMux reads them as its syntax).
		if u, err := url.Parse(p); err != nil || !path.IsAbs(u.Path) || u.Path != p || strings.ContainsAny(p, " \t{}") {
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
