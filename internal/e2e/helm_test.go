// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// withoutNulls drops the keys whose value is null, as Helm does when it
// merges values over the chart's defaults: that is how a values file takes
// out a default receiver or pipeline.
func withoutNulls(v any) any {
	switch m := v.(type) {
	case map[string]any:
		for k, e := range m {
			if e == nil {
				delete(m, k)
				continue
			}
			m[k] = withoutNulls(e)
		}
	case []any:
		for i := range m {
			m[i] = withoutNulls(m[i])
		}
	}
	return v
}

// chartValues are the top-level values of the opentelemetry-collector Helm
// chart, as its values.schema.json (chart 0.130.1) lists them: the schema
// refuses any other key, and helm install with it.
var chartValues = []string{
	"additionalLabels", "affinity", "alternateConfig", "annotations", "autoscaling", "clusterRole",
	"command", "config", "configMap", "dnsConfig", "dnsPolicy", "enabled", "extraContainers",
	"extraEnvs", "extraEnvsFrom", "extraManifests", "extraVolumeMounts", "extraVolumes",
	"fullnameOverride", "global", "hostAliases", "hostNetwork", "image", "imagePullSecrets",
	"ingress", "initContainers", "internalTelemetryViaOTLP", "lifecycleHooks", "livenessProbe",
	"mode", "nameOverride", "namespaceOverride", "networkPolicy", "nodeSelector", "podAnnotations",
	"podDisruptionBudget", "podLabels", "podMonitor", "podSecurityContext", "ports", "presets",
	"priorityClassName", "prometheusRule", "readinessProbe", "replicaCount", "resources",
	"revisionHistoryLimit", "rollout", "schedulerName", "securityContext", "service",
	"serviceAccount", "serviceMonitor", "shareProcessNamespace", "startupProbe", "statefulset",
	"tolerations", "topologySpreadConstraints", "useGOMEMLIMIT",
}

// Each Helm values file's config: is a whole collector configuration that
// the built collector's validate command accepts, and the chart runs our
// binary.
func TestHelmValuesValidate(t *testing.T) {
	bin := collectorBinary(t)
	files, err := filepath.Glob(filepath.Join("..", "..", "deploy", "helm", "values-*.yaml"))
	require.NoError(t, err)
	require.Len(t, files, 2, "the gateway and the daemonset values")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			require.NoError(t, err)
			var values map[string]any
			require.NoError(t, yaml.Unmarshal(b, &values))
			for key := range values {
				assert.Contains(t, chartValues, key, "the chart's schema refuses a key it does not know")
			}
			assert.Equal(t, "otelcol-tracelookup", values["command"].(map[string]any)["name"], "the chart starts our binary")
			assert.Contains(t, []any{"deployment", "daemonset"}, values["mode"])
			cfg, err := yaml.Marshal(withoutNulls(values["config"]))
			require.NoError(t, err)
			path := filepath.Join(t.TempDir(), "config.yaml")
			require.NoError(t, os.WriteFile(path, cfg, 0o600))
			cmd := exec.Command(bin, "validate", "--config", "file:"+path)
			cmd.Env = append(os.Environ(), "MY_POD_IP=127.0.0.1") // the chart sets it to the pod's address
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)

			// A typo is refused: validate checks for real.
			conf := withoutNulls(values["config"]).(map[string]any)
			conf["processors"].(map[string]any)["batch"] = map[string]any{"timeoutt": "1s"}
			bad, err := yaml.Marshal(conf)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, bad, 0o600))
			cmd = exec.Command(bin, "validate", "--config", "file:"+path)
			cmd.Env = append(os.Environ(), "MY_POD_IP=127.0.0.1")
			out, err = cmd.CombinedOutput()
			require.Error(t, err)
			assert.Contains(t, string(out), "timeoutt")
		})
	}
}

// The image the chart runs: its binary where the chart starts it, as a
// user without privileges, with a default configuration the collector
// accepts. (Building it needs a Docker engine: make image.)
func TestImageMatchesTheChart(t *testing.T) {
	bin := collectorBinary(t)
	b, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	require.NoError(t, err)
	var final []string // the last stage's instructions
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "FROM ") {
			final = nil
		}
		final = append(final, line)
	}
	require.NotEmpty(t, final)
	assert.Equal(t, "FROM scratch", final[0], "a minimal runtime image")
	assert.Contains(t, final, "USER 10001:10001", "not root")
	assert.Contains(t, final, `ENTRYPOINT ["/otelcol-tracelookup"]`, "the chart starts /<command.name>")
	out, err := exec.Command(bin, "validate", "--config", "file:"+filepath.Join("..", "..", "deploy", "image", "config.yaml")).CombinedOutput()
	require.NoError(t, err, "%s", out)
}
