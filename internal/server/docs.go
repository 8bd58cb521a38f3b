/*
Copyright 2026 The token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package server

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"sync"
	"time"
)

// docs holds the interactive API documentation: Swagger UI and ReDoc, from their npm
// packages (docs/README.md), and our pages around them.
//
//go:embed docs/*.html docs/*.js docs/*.css
var docs embed.FS

// The documentation routes. They hold no data and are never behind Auth.
const (
	routeDocs      = "/docs"
	routeRedoc     = "/redoc"
	routeDocsAsset = "/docs/{file}"
)

// docsPolicy lets a documentation page load only from this server: a browser refuses any
// other host. ReDoc builds its styles at run time and runs its search in a worker from a blob.
const docsPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " +
	"font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'"

// servePage answers one of the documentation pages.
func servePage(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", docsPolicy)
		http.ServeFileFS(w, r, docs, "docs/"+name)
	}
}

// redocLogo is the one address on another host that ReDoc's bundle loads by itself: the
// Redocly logo under its menu. The bundle is served with it replaced by an empty image, which
// ReDoc then hides (the image's onError), so the page loads nothing from elsewhere.
const redocLogo = "https://cdn.redoc.ly/redoc/logo-mini.svg"

// redocBundle is redoc.standalone.js as served.
var redocBundle = sync.OnceValue(func() []byte {
	b, err := docs.ReadFile("docs/redoc.standalone.js")
	if err != nil {
		panic(err) // embedded: present at build time
	}
	return bytes.ReplaceAll(b, []byte(redocLogo), []byte("data:,"))
})

// serveDocsAsset answers a script or style sheet of the documentation pages; anything else is
// a JSON 404.
func serveDocsAsset(w http.ResponseWriter, r *http.Request) {
	name := "docs/" + r.PathValue("file")
	if info, err := fs.Stat(docs, name); err != nil || info.IsDir() {
		notFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	if name == "docs/redoc.standalone.js" {
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(redocBundle()))
		return
	}
	http.ServeFileFS(w, r, docs, name)
}
