// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package configkeys lists the keys a configuration struct decodes, so
// that a component can refuse the ones it would otherwise ignore: the
// collector's squashed server configs (confighttp.ServerConfig) decode
// themselves leniently, and would swallow a misspelt option.
package configkeys // import "github.com/otelcol-tracelookup/otelcol-tracelookup/internal/configkeys"

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Of returns the mapstructure keys of struct type t, following squashed fields.
func Of(t reflect.Type) map[string]bool {
	keys := map[string]bool{}
	add(keys, t)
	return keys
}

func add(keys map[string]bool, t reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		switch {
		case strings.Contains(opts, "squash") && f.Type.Kind() == reflect.Struct:
			add(keys, f.Type)
		case name != "" && name != "-":
			keys[name] = true
		}
	}
}

// Check returns an error naming the first key of conf (in sorted order)
// that is not known, with prefix before it ("protocols::http::").
func Check(conf map[string]any, known map[string]bool, prefix, readme string) error {
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !known[k] {
			return fmt.Errorf("unknown option %q; see the %s for its options", prefix+k, readme)
		}
	}
	return nil
}
