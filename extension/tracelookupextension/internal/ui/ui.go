// Copyright The otelcol-tracelookup Authors
// SPDX-License-Identifier: Apache-2.0

// Package ui is the extension's own trace viewer: a page that lists and
// searches the index's traces and draws one as a waterfall, served from
// assets embedded in the binary (plain HTML, CSS and JavaScript modules:
// no build step, no CDN). It reads the native API, as any client does.
package ui // import "github.com/otelcol-tracelookup/otelcol-tracelookup/extension/tracelookupextension/internal/ui"

import (
	"bytes"
	"embed"
	"html"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed assets
var assets embed.FS

// Handler serves the page under base (a path that ends with "/"): the
// page itself at base and base + "trace/{id}" (deep links, which the page
// reads from its address), and its files under base + "ui/".
type Handler struct {
	base  string
	index []byte
}

// Base is the path the page is served under.
func (h *Handler) Base() string { return h.base }

// New returns the viewer served under base ("/" when empty; a trailing
// slash is added); the page names the tenant in tenantHeader.
func New(base, tenantHeader string) *Handler {
	base = Base(base)
	page, err := fs.ReadFile(assets, "assets/index.html")
	if err != nil {
		panic(err) // embedded at build time
	}
	page = bytes.ReplaceAll(page, []byte("{{BASE}}"), []byte(html.EscapeString(base)))
	page = bytes.ReplaceAll(page, []byte("{{TENANT_HEADER}}"), []byte(html.EscapeString(tenantHeader)))
	return &Handler{base: base, index: page}
}

// Base is the path the viewer is served under, as New reads it.
func Base(p string) string {
	p = path.Clean("/" + p)
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// ServePage answers the page itself.
func (h *Handler) ServePage(w http.ResponseWriter, _ *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Length", strconv.Itoa(len(h.index)))
	hdr.Set("Cache-Control", "no-cache")
	setSecurityHeaders(hdr)
	_, _ = w.Write(h.index)
}

// ServeAsset answers one of the page's files by name, or 404.
func (h *Handler) ServeAsset(w http.ResponseWriter, r *http.Request, name string) {
	if strings.Contains(name, "/") || name == "index.html" {
		http.NotFound(w, r)
		return
	}
	b, err := fs.ReadFile(assets, "assets/"+name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	ct := mime.TypeByExtension(path.Ext(name))
	if strings.HasSuffix(name, ".js") {
		ct = "text/javascript; charset=utf-8" // modules need a JavaScript type
	}
	hdr.Set("Content-Type", ct)
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	hdr.Set("Cache-Control", "no-cache")
	setSecurityHeaders(hdr)
	_, _ = w.Write(b)
}

// setSecurityHeaders keeps the page to its own origin: no inline script,
// nothing loaded from elsewhere, not framed by other sites.
func setSecurityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'self'")
	h.Set("Referrer-Policy", "same-origin")
}

// WriteError answers an error that arose before the page was served (an
// authentication failure) as a small page that says so, not a blank one.
func WriteError(w http.ResponseWriter, status int, message string) {
	body := "<!doctype html><meta charset=utf-8><title>Trace lookup: " + strconv.Itoa(status) + "</title>" +
		"<p>" + strconv.Itoa(status) + " " + html.EscapeString(http.StatusText(status)) + ": " + html.EscapeString(message) +
		"</p><p>The trace lookup API refused the page: with <code>auth:</code> configured, the page's own requests need credentials too. Open it through a proxy that adds them, or read the API with a client that sends them.</p>"
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	setSecurityHeaders(hdr)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// WriteMethodNotAllowed answers a method other than GET or HEAD on a page path.
func WriteMethodNotAllowed(w http.ResponseWriter) {
	w.Header().Set("Allow", "GET, HEAD")
	WriteError(w, http.StatusMethodNotAllowed, "the page answers GET and HEAD")
}
