// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupexporter // import "github.com/otelcol-tracelookup/otelcol-tracelookup/exporter/tracelookupexporter"

import (
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Config is the tracelookup exporter's configuration.
type Config struct {
	// Extension names the tracelookup extension whose index receives every span.
	Extension component.ID `mapstructure:"extension"`
	// QueueConfig is exporterhelper's sending queue, off unless configured:
	// the index is in memory and never fails, so a queue only decouples the
	// pipeline from the time indexing takes (see the README).
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

// Validate checks that an extension is named.
func (cfg *Config) Validate() error {
	if cfg.Extension == (component.ID{}) {
		return errors.New(`"extension" must name a tracelookup extension, such as tracelookup`)
	}
	return nil
}
