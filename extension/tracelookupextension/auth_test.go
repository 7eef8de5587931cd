// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package tracelookupextension

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/oidcauthextension"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// authHost offers the extensions an authenticated server looks up.
type authHost struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h authHost) GetExtensions() map[component.ID]component.Component { return h.exts }

// startWithAuth starts the extension behind the authenticator auth, which
// it starts first, as the collector does.
func startWithAuth(t *testing.T, id component.ID, f extension.Factory, authCfg component.Config, mutate func(*Config)) (*tracelookupExtension, string) {
	t.Helper()
	auth, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), authCfg)
	require.NoError(t, err)
	require.NoError(t, auth.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, auth.Shutdown(context.Background())) })

	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = freeAddr(t)
	cfg.ServerConfig.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: id}})
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	ext, err := NewFactory().Create(context.Background(), extensiontest.NewNopSettings(NewFactory().Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), authHost{componenttest.NewNopHost(), map[component.ID]component.Component{id: auth}}))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	return ext.(*tracelookupExtension), "http://" + cfg.ServerConfig.NetAddr.Endpoint
}

func fetch(t *testing.T, url string, header map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body), resp.Header
}

// 003 clients send their key as DD-API-KEY: bearertokenauth accepts it as
// is with header: DD-API-KEY and no scheme. A missing or wrong key is a 401
// in each contract's own format.
func TestUnauthorizedAnswersInTheContractsFormat(t *testing.T) {
	f := bearertokenauthextension.NewFactory()
	authCfg := f.CreateDefaultConfig().(*bearertokenauthextension.Config)
	authCfg.Header = "DD-API-KEY"
	authCfg.Scheme = ""
	authCfg.Tokens = []configopaque.String{"key-1", "key-2"}
	id := component.MustNewIDWithName("bearertokenauth", "dd")
	ext, base := startWithAuth(t, id, f, authCfg, nil)
	traceID := pcommon.TraceID{0xab, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	ext.IndexTraces("", oneSpan(traceID))

	for _, tc := range []struct {
		path, key, want string
	}{
		{"/api/v2/trace/" + traceID.String(), "", `{"errors":[{"status":"401","title":"Unauthorized","detail":"missing or empty authorization header: DD-API-KEY","meta":{}}]}`},
		{"/api/v2/trace/" + traceID.String(), "key-3", `{"errors":[{"status":"401","title":"Unauthorized","detail":"provided authorization does not match expected scheme or token","meta":{}}]}`},
		{"/api/v1/traces/" + traceID.String(), "", `{"status":"error","error_code":"UNAUTHORIZED","message":"missing or empty authorization header: DD-API-KEY"}`},
		{"/v1/trace/call/3f2b6c1e-8d4a-4f3b-9a51-2c7e0d9b1a42", "Bearer key-1", `{"status":"error","error_code":"UNAUTHORIZED","message":"provided authorization does not match expected scheme or token"}`},
	} {
		hdr := map[string]string{}
		if tc.key != "" {
			hdr["DD-API-KEY"] = tc.key
		}
		code, body, h := fetch(t, base+tc.path, hdr)
		assert.Equal(t, http.StatusUnauthorized, code, tc.path)
		assert.Equal(t, tc.want, body, tc.path)
		assert.Equal(t, "application/json", h.Get("Content-Type"), tc.path)
	}
	for _, key := range []string{"key-1", "key-2"} {
		code, body, h := fetch(t, base+"/api/v2/trace/"+traceID.String(), map[string]string{"DD-API-KEY": key, "DD-APPLICATION-KEY": "ignored"})
		assert.Equal(t, http.StatusOK, code, body)
		assert.Equal(t, "60", h.Get("X-RateLimit-Limit"), "the 003 default")
	}
}

// An oidc token's subject names the client; permissions map it to tenants.
func TestPermissionsWithOIDC(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: string(jose.RS256), Use: "sig"}}})
	require.NoError(t, err)
	keysFile := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(keysFile, jwks, 0o600))
	const issuer = "https://issuer.example"
	token := func(subject string) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
		require.NoError(t, err)
		raw, err := jwt.Signed(signer).Claims(jwt.Claims{
			Issuer: issuer, Subject: subject, Audience: jwt.Audience{"tracelookup"},
			IssuedAt: jwt.NewNumericDate(time.Now()), Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour)),
		}).Serialize()
		require.NoError(t, err)
		return "Bearer " + raw
	}

	f := oidcauthextension.NewFactory()
	authCfg := f.CreateDefaultConfig().(*oidcauthextension.Config)
	authCfg.Providers = []oidcauthextension.ProviderCfg{{IssuerURL: issuer, Audience: "tracelookup", PublicKeysFile: keysFile}}
	ext, base := startWithAuth(t, component.MustNewID("oidc"), f, authCfg, func(cfg *Config) {
		cfg.Tenancy.AuthAttribute = "subject"
		cfg.Tenancy.Permissions = map[string][]string{"alice": {"team-a"}, "ops": {"*"}}
	})
	traceID := pcommon.TraceID{0xcd, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	ext.IndexTraces("team-a", oneSpan(traceID))
	ext.IndexTraces("team-b", oneSpan(traceID))
	url := base + "/api/v1/traces/" + traceID.String()

	code, body, _ := fetch(t, url, map[string]string{"Authorization": token("alice")})
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"organization_id":"team-a"`)
	code, body, _ = fetch(t, url, map[string]string{"Authorization": token("alice"), "X-Scope-OrgID": "team-b"})
	assert.Equal(t, http.StatusForbidden, code)
	assert.Equal(t, `{"status":"error","error_code":"FORBIDDEN","message":"alice may not read tenant team-b"}`, body)
	code, body, _ = fetch(t, base+"/api/v2/trace/"+traceID.String(), map[string]string{"Authorization": token("mallory")})
	assert.Equal(t, http.StatusForbidden, code)
	assert.Equal(t, `{"errors":[{"status":"403","title":"Forbidden","detail":"mallory may not read any tenant","meta":{}}]}`, body)
	code, body, _ = fetch(t, url, map[string]string{"Authorization": token("ops"), "X-Scope-OrgID": "team-b"})
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"organization_id":"team-b"`)
	code, body, _ = fetch(t, url, nil)
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Contains(t, body, `"error_code":"UNAUTHORIZED"`)
}
