package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gorilla/mux"
	"golang.org/x/net/html"
)

func newDocsServer(t *testing.T) *httptest.Server {
	t.Helper()
	d, err := NewDocs(t.Context())
	if err != nil {
		t.Fatalf("NewDocs: %v", err)
	}
	r := mux.NewRouter()
	d.Routes(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// The served JSON is an OpenAPI 3.1 document that validates.
func TestDocumentServed(t *testing.T) {
	srv := newDocsServer(t)
	resp, body := get(t, srv.URL+DocumentPath)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s = %d %q, want 200 application/json", DocumentPath, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("ETag") == "" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("GET %s: ETag %q, Cache-Control %q, want an ETag and no-cache", DocumentPath, resp.Header.Get("ETag"), resp.Header.Get("Cache-Control"))
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatalf("GET %s: not JSON: %v", DocumentPath, err)
	}
	if v, _ := raw["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}
	doc, err := openapi3.NewLoader().LoadFromData([]byte(body))
	if err != nil {
		t.Fatalf("load served document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("IsOpenAPI31OrLater() = false")
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Errorf("Validate(served document) = %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+DocumentPath, nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	if r2, err := http.DefaultClient.Do(req); err != nil || r2.StatusCode != http.StatusNotModified {
		t.Errorf("GET %s with If-None-Match = %v %v, want 304", DocumentPath, r2.StatusCode, err)
	}
}

// The reference page lists every operation, passes the pages' CSP by
// construction (no script, no inline style, assets from 'self') and its
// stylesheet is served.
func TestDocsPage(t *testing.T) {
	srv := newDocsServer(t)
	resp, body := get(t, srv.URL+DocsPath)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET %s = %d %q, want 200 text/html", DocsPath, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != DocsCSP {
		t.Errorf("Content-Security-Policy = %q, want %q", got, DocsCSP)
	}
	doc, err := OpenAPI(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	page, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse page: %v", err)
	}
	headings := map[string]bool{}
	var assets []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "style", "iframe", "object", "embed":
				t.Errorf("page has a <%s> element", n.Data)
			case "article":
				headings[attrOf(n, "id")] = true
			case "link":
				assets = append(assets, attrOf(n, "href"))
			case "img":
				assets = append(assets, attrOf(n, "src"))
			}
			for _, a := range n.Attr {
				if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
					t.Errorf("<%s> has an inline %s attribute", n.Data, a.Key)
				}
				if (a.Key == "href" || a.Key == "src") && strings.HasPrefix(strings.ToLower(a.Val), "javascript:") {
					t.Errorf("<%s %s=%q>", n.Data, a.Key, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(page)
	n := 0
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			n++
			id := strings.ToLower(method) + "-" + anchorOf(path)
			if !headings[id] {
				t.Errorf("page has no entry for %s %s (id %q)", method, path, id)
			}
		}
	}
	if n == 0 {
		t.Fatal("the document has no operations")
	}
	if len(assets) == 0 {
		t.Error("page links no stylesheet")
	}
	for _, a := range assets {
		if !strings.HasPrefix(a, "/") || strings.HasPrefix(a, "//") {
			t.Errorf("asset %q is not from 'self'", a)
			continue
		}
		resp, _ := get(t, srv.URL+a)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", a, resp.StatusCode)
		}
		if a == docsStylePath && resp.Header.Get("Content-Type") != "text/css; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q, want text/css", a, resp.Header.Get("Content-Type"))
		}
	}
}

func attrOf(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
