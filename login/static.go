package login

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// staticFile is one embedded asset, read once at start.
type staticFile struct {
	body        []byte
	etag        string
	contentType string
}

// loadStatic reads every file of fsys, keyed by its slash path.
func loadStatic(fsys fs.FS) (map[string]staticFile, error) {
	files := map[string]staticFile{}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		ctype := mime.TypeByExtension(path.Ext(name))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		files[name] = newStaticFile(body, ctype)
		return nil
	})
	return files, err
}

// newStaticFile is body served as ctype, with an ETag of its digest.
func newStaticFile(body []byte, ctype string) staticFile {
	sum := sha256.Sum256(body)
	return staticFile{body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, contentType: ctype}
}

// staticMaxAge is how long browsers may reuse the stylesheet without asking;
// after that they revalidate with its ETag.
const staticMaxAge = "public, max-age=3600"

// serveStatic serves GET /static/NAME from the embedded files only.
func (h *Handler) serveStatic(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	f, ok := h.static[strings.TrimPrefix(r.URL.Path, StaticPrefix)]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hdr.Set("Content-Type", f.contentType)
	hdr.Set("Cache-Control", staticMaxAge)
	hdr.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
