// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupexporter

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/exporter/tracelookupexporter/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		return nil, err
	}
	return cfg, confmap.Validate(cfg)
}

func TestDefaultConfig(t *testing.T) {
	cfg, err := loadConfig(t, "")
	require.NoError(t, err)
	assert.Equal(t, component.MustNewID("tracelookup"), cfg.Extension)
	assert.False(t, cfg.QueueConfig.HasValue(), "no sending queue unless configured")
}

func TestCustomConfig(t *testing.T) {
	cfg, err := loadConfig(t, "custom")
	require.NoError(t, err)
	assert.Equal(t, component.MustNewIDWithName("tracelookup", "gateway"), cfg.Extension)
	require.True(t, cfg.QueueConfig.HasValue())
	assert.Equal(t, int64(5000), cfg.QueueConfig.Get().QueueSize)
	assert.Equal(t, 2, cfg.QueueConfig.Get().NumConsumers)
}

func TestInvalidConfig(t *testing.T) {
	_, err := loadConfig(t, "no_extension")
	assert.ErrorContains(t, err, "extension")
	conf := confmap.NewFromStringMap(map[string]any{"extenson": "tracelookup"})
	assert.ErrorContains(t, conf.Unmarshal(NewFactory().CreateDefaultConfig()), "extenson", "a misspelt key is refused")
}
