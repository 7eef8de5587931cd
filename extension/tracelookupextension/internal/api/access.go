// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

package api // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/api"

import (
	"net/http"
	"slices"

	"go.opentelemetry.io/collector/client"

	"github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/store"
)

// DefaultTenantHeader is the header that names a request's tenant, the one
// Tempo, Loki and Mimir read.
const DefaultTenantHeader = "X-Scope-OrgID"

// AnyTenant in a subject's list of tenants lets it read every tenant.
const AnyTenant = "*"

// Tenancy says which tenant a lookup reads and whether it may.
type Tenancy struct {
	// Header names the request header that names the tenant ("" for DefaultTenantHeader).
	Header string
	// AuthAttribute, when set, names the attribute of the authenticated
	// client (client.Info's auth data) that identifies it: its subject.
	AuthAttribute string
	// DefaultTenant is read by requests that name no tenant ("" for store.DefaultTenant).
	DefaultTenant string
	// Permissions maps subjects to the tenants they may read, AnyTenant
	// for all; a subject reads its first tenant when the request names
	// none. Nil: each subject reads its own tenant, the one named like it.
	Permissions map[string][]string
}

// access is one request's tenant, or why it may not read it.
type access struct {
	tenant string
	// status, when not 0, refuses the request with message.
	status  int
	code    string
	message string
}

func refuse(status int, code, message string) access {
	return access{status: status, code: code, message: message}
}

// tenantOf decides which tenant r reads:
//   - without AuthAttribute, the tenant the header names, else the default;
//   - with it and Permissions, the tenant the header names if the subject
//     may read it, else the subject's first tenant;
//   - with it and no Permissions, the subject's own tenant; a header naming
//     another is refused.
//
// An authenticated client whose auth data lacks the attribute is refused:
// access is never granted for want of an identity.
func (h *Handler) tenantOf(r *http.Request) access {
	t := &h.opts.Tenancy
	values := r.Header.Values(t.Header)
	if len(values) > 1 {
		// A proxy that appends its own verified value must not let the
		// client's come first: more than one is refused.
		return refuse(http.StatusBadRequest, "INVALID_TENANT", "the "+t.Header+" header must be sent once")
	}
	requested := ""
	if len(values) == 1 {
		requested = values[0]
	}
	if requested != "" && !store.ValidTenant(requested) {
		return refuse(http.StatusBadRequest, "INVALID_TENANT",
			"the "+t.Header+" header does not name a valid tenant: use "+store.TenantRule)
	}
	if t.AuthAttribute == "" {
		if requested == "" {
			requested = t.DefaultTenant
		}
		return access{tenant: requested}
	}
	subject := subjectOf(r, t.AuthAttribute)
	if subject == "" {
		return refuse(http.StatusForbidden, "FORBIDDEN",
			"the authenticated client has no "+Echo(t.AuthAttribute)+" to grant it a tenant by")
	}
	if t.Permissions == nil {
		if !store.ValidTenant(subject) {
			return refuse(http.StatusForbidden, "FORBIDDEN",
				"the authenticated client's "+Echo(t.AuthAttribute)+" is not a valid tenant id, so it has no tenant to read; map it to tenants with tenancy::permissions")
		}
		switch requested {
		case "", subject:
			return access{tenant: subject}
		default:
			return refuse(http.StatusForbidden, "FORBIDDEN", Echo(subject)+" may not read tenant "+Echo(requested))
		}
	}
	allowed := t.Permissions[subject]
	if requested == "" && len(allowed) > 0 {
		requested = allowed[0]
		if requested == AnyTenant {
			requested = t.DefaultTenant
		}
	}
	if requested == "" || !(slices.Contains(allowed, requested) || slices.Contains(allowed, AnyTenant)) {
		if requested == "" {
			return refuse(http.StatusForbidden, "FORBIDDEN", Echo(subject)+" may not read any tenant")
		}
		return refuse(http.StatusForbidden, "FORBIDDEN", Echo(subject)+" may not read tenant "+Echo(requested))
	}
	return access{tenant: requested}
}

// subjectOf is the string value of the authenticated client's attribute, or "".
func subjectOf(r *http.Request, attribute string) string {
	info := client.FromContext(r.Context())
	if info.Auth == nil {
		return ""
	}
	switch v := info.Auth.GetAttribute(attribute).(type) {
	case string:
		return v
	case []string: // a claim with several values: the first names the client
		if len(v) > 0 {
			return v[0]
		}
	case []any: // the same, decoded from JSON (an oidc claims.<name>)
		if len(v) > 0 {
			if s, ok := v[0].(string); ok {
				return s
			}
		}
	}
	return ""
}
