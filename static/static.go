// Package static holds the playground's CSS and JavaScript (plain ES
// modules, no build step), embedded in the binary and served with
// content-hash URLs.
package static

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed *.css *.js
var files embed.FS

type asset struct {
	data  []byte
	hash  string // first 16 hex digits of the SHA-256 of data
	ctype string
}

var assets = func() map[string]*asset {
	m := make(map[string]*asset)
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		data, err := files.ReadFile(e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(data)
		ctype := mime.TypeByExtension(path.Ext(e.Name()))
		if strings.HasSuffix(e.Name(), ".js") {
			ctype = "text/javascript; charset=utf-8"
		}
		m[e.Name()] = &asset{data: data, hash: hex.EncodeToString(sum[:8]), ctype: ctype}
	}
	return m
}()

// URL is the path of an asset with its content hash, safe to cache for
// ever: /static/app.js?v=0123456789abcdef.
func URL(name string) string {
	a := assets[name]
	if a == nil {
		panic("static: no asset " + name)
	}
	return "/static/" + name + "?v=" + a.hash
}

// Handler serves the assets under /static/. A request with the current
// hash in v may be cached for a year; any other (an ES module's import of
// its sibling, say) is revalidated with its ETag.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		a := assets[name]
		if a == nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("ETag", `"`+a.hash+`"`)
		if r.URL.Query().Get("v") == a.hash {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.data))
	})
}
