// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupreceiver

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/receiver/tracelookupreceiver/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig()
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg.(*Config), confmap.Validate(cfg)
}

func TestConfig(t *testing.T) {
	// As with the otlp receiver, a protocol is on once it is named; its defaults fill in.
	cfg, err := loadConfig(t, "defaults")
	require.NoError(t, err)
	assert.Equal(t, component.MustNewID("tracelookup"), cfg.Extension)
	assert.Equal(t, "localhost:4317", cfg.Protocols.GRPC.Get().NetAddr.Endpoint)
	assert.Equal(t, "localhost:4318", cfg.Protocols.HTTP.Get().ServerConfig.NetAddr.Endpoint)
	assert.Equal(t, URLPath("/v1/traces"), cfg.Protocols.HTTP.Get().TracesURLPath)

	_, err = loadConfig(t, "")
	assert.ErrorContains(t, err, `"protocols"`, "no protocol named")

	cfg, err = loadConfig(t, "custom")
	require.NoError(t, err)
	assert.Equal(t, component.MustNewIDWithName("tracelookup", "index_b"), cfg.Extension)
	assert.Equal(t, "127.0.0.1:14317", cfg.Protocols.GRPC.Get().NetAddr.Endpoint)
	assert.Equal(t, "127.0.0.1:14318", cfg.Protocols.HTTP.Get().ServerConfig.NetAddr.Endpoint)
	assert.Equal(t, URLPath("/otlp/traces"), cfg.Protocols.HTTP.Get().TracesURLPath)

	cfg, err = loadConfig(t, "grpc_only")
	require.NoError(t, err)
	assert.True(t, cfg.Protocols.GRPC.HasValue())
	assert.False(t, cfg.Protocols.HTTP.HasValue())

	_, err = loadConfig(t, "none")
	assert.ErrorContains(t, err, `"protocols"`)

	_, err = loadConfig(t, "bad_path")
	assert.ErrorContains(t, err, "traces_url_path")

	// As the otlp receiver reads it, a path without its leading slash gets one.
	cfg, err = loadConfig(t, "relative_path")
	require.NoError(t, err)
	assert.Equal(t, URLPath("/v1/traces"), cfg.Protocols.HTTP.Get().TracesURLPath)
}

// A misspelt option under protocols::http is refused, not ignored.
func TestConfigRefusesTyposUnderHTTP(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, "typo").String())
	require.NoError(t, err)
	err = sub.Unmarshal(NewFactory().CreateDefaultConfig())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown option "protocols::http::endpont"`)
}
