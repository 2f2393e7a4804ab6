// Package static holds the playground's CSS and JavaScript (plain ES
// modules, no build step), embedded in the binary and served with
// content-hash URLs.
package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed *.css *.js *.svg
var files embed.FS

type asset struct {
	data   []byte
	hash   string // first 16 hex digits of the SHA-256 of data
	ctype  string
	gzOnce sync.Once
	gz     []byte // data gzipped, for clients that accept it
}

// gzipped is the asset compressed, made at its first request rather than
// at start: compressing every asset at start took 21 ms, half of the
// default world's start-up.
func (a *asset) gzipped() []byte {
	a.gzOnce.Do(func() {
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(a.data)
		zw.Close()
		a.gz = gz.Bytes()
	})
	return a.gz
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
// its sibling, say) is revalidated with its ETag. Clients that accept
// gzip get the asset compressed, once.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, strings.TrimPrefix(r.URL.Path, "/static/"))
	})
}

// Favicon serves the icon at /favicon.ico, where browsers look for it.
func Favicon() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(w, r, "favicon.svg") })
}

func serve(w http.ResponseWriter, r *http.Request, name string) {
	a := assets[name]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Vary", "Accept-Encoding")
	if r.URL.Query().Get("v") == a.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	data, etag := a.data, `"`+a.hash+`"`
	if gz := a.gzipped(); acceptsGzip(r) && len(gz) < len(a.data) {
		data, etag = gz, `"`+a.hash+`-gz"`
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip
// (and does not refuse it with q=0).
func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
