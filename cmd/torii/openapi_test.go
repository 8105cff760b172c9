package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/gorilla/mux"

	"github.com/torii-idp/torii/login/api"
)

// The OpenAPI document (login/api/openapi.yaml) is kept true by two checks:
//
//   - TestOpenAPICoversRoutes: every route a listener's router mounts under
//     documentedPrefixes has an operation in the document, and every
//     operation of that listener has a route (listenerRouters).
//   - validateResponses: every response the tests receive on those routes
//     is validated against the document with kin-openapi; newEnv wraps the
//     public listener with it.
//
// A path item belongs to the listeners named in its x-torii-listeners
// extension, by default the public one. To check another listener (the
// admin listener, say), add its router to listenerRouters and wrap its test
// server's handler with validateResponses under the same name.

// documentedPrefixes are the route templates the document must describe,
// on every listener.
var documentedPrefixes = []string{api.Prefix + "/", "/oauth2/", "/userinfo", "/.well-known/"}

// publicListener names the public listener (TORII_ADDR) in
// x-torii-listeners.
const publicListener = "public"

// adminListener names the admin API's listener (TORII_ADMIN_ADDR).
const adminListener = "admin"

// listenerRouters returns each listener's router of s, by the name its path
// items use in x-torii-listeners.
func listenerRouters(s *server) map[string]*mux.Router {
	return map[string]*mux.Router{
		publicListener: s.router,
		adminListener:  s.adminRouter,
	}
}

// documented reports whether a route template is one the document must
// describe.
func documented(path string) bool {
	for _, p := range documentedPrefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// openAPIDoc is the embedded document, loaded once for the whole test
// binary; kin-openapi only reads it while validating.
var openAPIDoc = sync.OnceValues(func() (*openapi3.T, error) {
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	return api.OpenAPI(context.Background())
})

func loadOpenAPI(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := openAPIDoc()
	if err != nil {
		t.Fatalf("api.OpenAPI: %v", err)
	}
	return doc
}

// pathParam matches a path parameter of a mux template or an OpenAPI path.
var pathParam = regexp.MustCompile(`\{[^{}]*\}`)

// operationKey is "METHOD /path/{}" with parameters' names erased.
func operationKey(method, path string) string {
	return strings.ToUpper(method) + " " + pathParam.ReplaceAllString(path, "{}")
}

// pathListeners returns the listeners a path item is served on.
func pathListeners(item *openapi3.PathItem) []string {
	raw, ok := item.Extensions["x-torii-listeners"].([]any)
	if !ok {
		return []string{publicListener}
	}
	var out []string
	for _, v := range raw {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// documentedOperations returns the document's operations on listener.
func documentedOperations(doc *openapi3.T, listener string) map[string]bool {
	ops := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		if !slices.Contains(pathListeners(item), listener) {
			continue
		}
		for method := range item.Operations() {
			ops[operationKey(method, path)] = true
		}
	}
	return ops
}

// routedOperations walks r and returns its routes under documentedPrefixes,
// OPTIONS (CORS preflights) excluded.
func routedOperations(t *testing.T, r *mux.Router) map[string]bool {
	t.Helper()
	ops := map[string]bool{}
	err := r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil || !documented(path) {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			return fmt.Errorf("route %s takes every method: give it Methods(...)", path)
		}
		for _, m := range methods {
			if m != http.MethodOptions {
				ops[operationKey(m, path)] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk routes: %v", err)
	}
	return ops
}

// Every documented route has an entry in the OpenAPI document and every
// entry a route, on each listener.
func TestOpenAPICoversRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	e := newEnv(t, backends[0].url(t))
	routers := listenerRouters(e.srv)
	listeners := map[string]bool{}
	for _, item := range doc.Paths.Map() {
		for _, l := range pathListeners(item) {
			listeners[l] = true
		}
	}
	for l := range listeners {
		if routers[l] == nil {
			t.Errorf("the document has paths on listener %q, which listenerRouters does not know", l)
		}
	}
	for name, r := range routers {
		t.Run(name, func(t *testing.T) {
			routed, want := routedOperations(t, r), documentedOperations(doc, name)
			if len(routed) == 0 {
				t.Fatal("no documented routes found: is the router empty?")
			}
			for _, op := range slices.Sorted(mapKeys(routed)) {
				if !want[op] {
					t.Errorf("route %s has no entry in login/api/openapi.yaml", op)
				}
			}
			for _, op := range slices.Sorted(mapKeys(want)) {
				if !routed[op] {
					t.Errorf("openapi.yaml documents %s, which the %s listener does not route", op, name)
				}
			}
		})
	}
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// The public listener serves the document as OpenAPI 3.1 that validates,
// and the reference page under the pages' CSP.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, backends[0].url(t))
	resp, err := e.ts.Client().Get(e.issuer + api.DocumentPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s = %d %q, want 200 application/json", api.DocumentPath, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var head struct {
		OpenAPI string `json:"openapi"`
	}
	if err := json.Unmarshal(body, &head); err != nil || !strings.HasPrefix(head.OpenAPI, "3.1.") {
		t.Errorf("openapi = %q (%v), want 3.1.x", head.OpenAPI, err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatalf("load %s: %v", api.DocumentPath, err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Errorf("Validate(%s) = %v", api.DocumentPath, err)
	}

	resp, err = e.ts.Client().Get(e.issuer + api.DocsPath)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET %s = %d %q, want 200 text/html", api.DocsPath, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != api.DocsCSP {
		t.Errorf("GET %s: Content-Security-Policy %q, want %q", api.DocsPath, got, api.DocsCSP)
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !bytes.Contains(page, []byte(`<code>`+path+`</code>`)) || !bytes.Contains(page, []byte(`>`+method+`<`)) {
				t.Errorf("GET %s does not list %s %s", api.DocsPath, method, path)
			}
		}
	}
}

// validateResponses wraps a listener's handler: every response to a
// request under documentedPrefixes is validated against the OpenAPI
// document (the operation of the route router matched, the status, the
// headers and the body), and a mismatch fails t with the method, path,
// status and kin-openapi's reason. Requests the router matches no route for
// (404, 405) must answer a problem under /api/v1. Benchmarks are not
// slowed down: for a *testing.B next is returned as is.
func validateResponses(t testing.TB, listener string, router *mux.Router, next http.Handler) http.Handler {
	if _, ok := t.(*testing.B); ok {
		return next
	}
	doc := loadOpenAPI(t)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions || !documented(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		var match mux.RouteMatch
		router.Match(r, &match)
		req := r.Clone(r.Context())
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if err := checkResponse(doc, listener, req, &match, rec); err != nil {
			t.Errorf("openapi: %s %s answered %d on the %s listener: %v\nbody: %.2000s", r.Method, r.URL.Path, rec.status(), listener, err, rec.body.String())
		}
	})
}

// checkResponse validates one recorded response.
func checkResponse(doc *openapi3.T, listener string, req *http.Request, match *mux.RouteMatch, rec *recorder) error {
	status := rec.status()
	if match.MatchErr != nil || match.Route == nil {
		// No route: the router's 404 or 405.
		if !strings.HasPrefix(req.URL.Path, api.Prefix+"/") {
			return nil
		}
		if ct := rec.header.Get("Content-Type"); ct != "application/problem+json" {
			return fmt.Errorf("unrouted request: Content-Type %q, want application/problem+json", ct)
		}
		var v any
		if err := json.Unmarshal(rec.body.Bytes(), &v); err != nil {
			return fmt.Errorf("unrouted request: body: %w", err)
		}
		return doc.Components.Schemas["Problem"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020())
	}
	path, err := match.Route.GetPathTemplate()
	if err != nil {
		return err
	}
	if !documented(path) {
		return nil
	}
	item := doc.Paths.Find(path)
	if item == nil {
		// Parameter names may differ between the route and the document.
		for p, it := range doc.Paths.Map() {
			if operationKey("", p) == operationKey("", path) {
				path, item = p, it
			}
		}
	}
	if item == nil || !slices.Contains(pathListeners(item), listener) {
		return fmt.Errorf("route %s has no path in openapi.yaml on the %s listener", path, listener)
	}
	op := item.GetOperation(req.Method)
	if op == nil {
		return fmt.Errorf("openapi.yaml has no %s operation for %s", req.Method, path)
	}
	resp := op.Responses.Status(status)
	if resp == nil || resp.Value == nil {
		return fmt.Errorf("status %d is not documented for %s %s", status, req.Method, path)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	if optional, _ := resp.Value.Extensions["x-torii-body-optional"].(bool); optional && rec.body.Len() == 0 && rec.header.Get("Content-Type") == "" {
		opts.ExcludeResponseBody = true
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: match.Vars,
			Route:      &routers.Route{Spec: doc, Path: path, PathItem: item, Method: req.Method, Operation: op},
			Options:    opts,
		},
		Status:  status,
		Header:  rec.header,
		Options: opts,
	}
	input.SetBodyBytes(rec.body.Bytes())
	return openapi3filter.ValidateResponse(req.Context(), input)
}

// recorder passes a response through and keeps its status, headers (as
// they were when the status was written) and body.
type recorder struct {
	http.ResponseWriter
	code   int
	header http.Header
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
		r.header = r.ResponseWriter.Header().Clone()
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.WriteHeader(http.StatusOK)
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// status is the status written; a handler that wrote nothing answered 200.
func (r *recorder) status() int {
	if r.code == 0 {
		r.code = http.StatusOK
		r.header = r.ResponseWriter.Header().Clone()
	}
	return r.code
}
