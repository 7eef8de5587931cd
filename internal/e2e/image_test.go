// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
)

// imageEnv names the image TestImage runs (`make image-test` sets it), and
// containerToolEnv the command that runs it (docker unless told).
const (
	imageEnv         = "TRACELOOKUP_IMAGE"
	containerToolEnv = "TRACELOOKUP_CONTAINER_TOOL"
)

// TestImage runs the built image as the chart runs it: its own entrypoint,
// its own configuration (only the listen addresses moved to the loopback
// interface, as servers in tests are), its own user. The collector starts,
// indexes OTLP sent by the SDK, writes its snapshot into the image's
// directory as that user at a stop, and answers for the trace after a
// restart of the same container.
func TestImage(t *testing.T) {
	image := os.Getenv(imageEnv)
	if image == "" {
		t.Skipf("%s is not set: `make image-test` builds the image and runs this test against it", imageEnv)
	}
	tool := cmp.Or(os.Getenv(containerToolEnv), "docker")
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tool, args...).CombinedOutput()
		require.NoError(t, err, "%s %s: %s", tool, strings.Join(args, " "), out)
		return strings.TrimSpace(string(out))
	}

	var cfg struct {
		User         string
		Entrypoint   []string
		Cmd          []string
		ExposedPorts map[string]any
	}
	require.NoError(t, json.Unmarshal([]byte(run("image", "inspect", "--format", "{{json .Config}}", image)), &cfg))
	assert.Equal(t, "10001:10001", cfg.User, "not root")
	assert.Equal(t, []string{"/otelcol-tracelookup"}, cfg.Entrypoint, "the chart starts /<command.name>")
	assert.Equal(t, []string{"--config", "/etc/otelcol-tracelookup/config.yaml"}, cfg.Cmd)
	for _, port := range []string{"4317/tcp", "4318/tcp", "8088/tcp"} {
		assert.Contains(t, cfg.ExposedPorts, port)
	}

	n := node{api: freePort(t), grpc: freePort(t)}
	name := "tracelookup-e2e-" + randomTraceID(t)[:12]
	run("create", "--name", name, "--network", "host", image,
		"--config", "/etc/otelcol-tracelookup/config.yaml",
		"--set", "extensions::tracelookup::endpoint="+addr(n.api),
		"--set", "receivers::tracelookup::protocols::grpc::endpoint="+addr(n.grpc),
		"--set", "receivers::tracelookup::protocols::http::endpoint="+addr(freePort(t)),
		"--set", "service::telemetry::metrics::level=none") // not the host's port 8888
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command(tool, "logs", name).CombinedOutput()
			t.Logf("the container's output:\n%s", out)
		}
		_ = exec.Command(tool, "rm", "--force", name).Run()
	})
	lookup := func() int {
		resp, err := do("GET", n.url()+"/api/v1/traces/"+randomTraceID(t), nil)
		if err != nil {
			return 0
		}
		return resp.Status
	}
	started := func() {
		t.Helper()
		run("start", name)
		poll(t, readyTimeout, "the container's API", func() error {
			if status := lookup(); status != 404 {
				return fmt.Errorf("status %d", status)
			}
			return nil
		})
	}
	stopped := func() string {
		t.Helper()
		run("stop", "--time", "30", name)
		assert.Equal(t, "0", run("inspect", "--format", "{{.State.ExitCode}}", name), "a clean exit at SIGTERM")
		return run("logs", name)
	}

	started()
	root := sendSpan(t, n, "frontend", "GET /checkout", trace.SpanContext{})
	sendSpan(t, n, "payment", "charge", root)
	id := root.TraceID().String()
	require.Equal(t, 200, mustDo(t, "GET", n.url()+"/api/v1/traces/"+id, nil).Status)
	assert.Contains(t, stopped(), "The index was written to its snapshot", "the image's snapshot directory is writable by its user")

	started()
	resp := mustDo(t, "GET", n.url()+"/api/v1/traces/"+id+"?flat=true", nil)
	require.Equal(t, 200, resp.Status, "%s", resp.Body)
	assert.Contains(t, string(resp.Body), `"charge"`, "both spans came back")
	assert.Contains(t, string(resp.Body), `"GET /checkout"`)
	assert.Contains(t, stopped(), "The index was read back from its snapshot")
}
