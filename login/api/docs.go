package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gorilla/mux"
)

// The OpenAPI document of Torii's HTTP API and its reference page.
const (
	// DocumentPath serves the OpenAPI document as JSON.
	DocumentPath = "/api/openapi.json"
	// DocsPath serves the reference page rendered from it.
	DocsPath = "/api/docs"
	// docsStylePath serves the page's stylesheet.
	docsStylePath = DocsPath + "/style.css"
)

// DocsCSP is the reference page's Content-Security-Policy, the login pages'
// own: no script at all, styles from the server only.
const DocsCSP = "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

var (
	//go:embed openapi.yaml
	openAPIYAML []byte
	//go:embed docs.html
	docsHTML string
	//go:embed docs.css
	docsCSS []byte
)

// OpenAPI loads the embedded OpenAPI 3.1 document and validates it. Every
// call parses anew, so callers may change what they get.
func OpenAPI(ctx context.Context) (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("api: load openapi.yaml: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("api: validate openapi.yaml: %w", err)
	}
	return doc, nil
}

// Docs serves the OpenAPI document (DocumentPath) and the reference page
// (DocsPath), both rendered once from the embedded document. Mount it with
// Routes on every listener that serves documented routes.
type Docs struct {
	json, page, css          []byte
	jsonTag, pageTag, cssTag string
}

// NewDocs loads and validates the embedded document and renders its JSON
// and its reference page.
func NewDocs(ctx context.Context) (*Docs, error) {
	doc, err := OpenAPI(ctx)
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("api: encode openapi document: %w", err)
	}
	page, err := renderDocs(doc)
	if err != nil {
		return nil, err
	}
	return &Docs{json: js, page: page, css: docsCSS, jsonTag: etag(js), pageTag: etag(page), cssTag: etag(docsCSS)}, nil
}

// etag is a strong entity tag of b.
func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// Routes mounts GET and HEAD of DocumentPath, DocsPath and the page's
// stylesheet on r.
func (d *Docs) Routes(r *mux.Router) {
	r.HandleFunc(DocumentPath, d.serve(d.json, d.jsonTag, "application/json", "")).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(DocsPath, d.serve(d.page, d.pageTag, "text/html; charset=utf-8", DocsCSP)).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(docsStylePath, d.serve(d.css, d.cssTag, "text/css; charset=utf-8", "")).Methods(http.MethodGet, http.MethodHead)
}

// serve answers body with its entity tag (conditional requests answer 304):
// the document changes only with the binary, so caches revalidate.
func (d *Docs) serve(body []byte, tag, contentType, csp string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", tag)
		if csp != "" {
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Frame-Options", "DENY")
		} else {
			// The document and stylesheet are public; any script may read them.
			h.Set("Access-Control-Allow-Origin", "*")
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}
}

// The reference page's model.

type docsPage struct {
	Title, Version, Description string
	Servers                     []docsServer
	Groups                      []docsGroup
	Schemas                     []docsNamedSchema
	Security                    []docsNamedText
}

type docsServer struct{ URL, Description string }

type docsGroup struct {
	Name, Description string
	Operations        []docsOperation
}

type docsOperation struct {
	Anchor, Method, Path, Summary, Description string
	Servers                                    []docsServer
	Security                                   []string
	Parameters                                 []docsParam
	Body                                       *docsBody
	Responses                                  []docsResponse
}

type docsParam struct {
	Name, In, Description string
	Required              bool
	Schema                *docsSchema
}

type docsBody struct {
	Required bool
	Content  []docsContent
}

type docsContent struct {
	MediaType string
	Schema    *docsSchema
}

type docsResponse struct {
	Status, Description string
	Headers             []docsParam
	Content             []docsContent
}

type docsNamedSchema struct {
	Name   string
	Schema *docsSchema
}

type docsNamedText struct{ Name, Text string }

// docsSchema is a schema as the page shows it: a one-line type, its
// constraints, and its members or alternatives below.
type docsSchema struct {
	Ref         string // component name, linked
	Type        string
	Constraints []string
	Description string
	Properties  []docsProperty
	Items       *docsSchema
	Alternative string // "one of", "any of", "all of"
	Variants    []*docsSchema
}

type docsProperty struct {
	Name     string
	Required bool
	Schema   *docsSchema
}

// operationMethods orders a path's operations on the page.
var operationMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// renderDocs renders the reference page of doc.
func renderDocs(doc *openapi3.T) ([]byte, error) {
	page := docsPage{Title: doc.Info.Title, Version: doc.Info.Version, Description: doc.Info.Description}
	for _, s := range doc.Servers {
		page.Servers = append(page.Servers, docsServer{URL: s.URL, Description: s.Description})
	}
	groups := map[string]*docsGroup{}
	var order []string
	for _, t := range doc.Tags {
		groups[t.Name] = &docsGroup{Name: t.Name, Description: t.Description}
		order = append(order, t.Name)
	}
	paths := doc.Paths.Map()
	names := make([]string, 0, len(paths))
	for p := range paths {
		names = append(names, p)
	}
	slices.Sort(names)
	for _, path := range names {
		item := paths[path]
		for _, method := range operationMethods {
			op := item.GetOperation(method)
			if op == nil {
				continue
			}
			o := docsOperation{
				Anchor: strings.ToLower(method) + "-" + anchorOf(path), Method: method, Path: path,
				Summary: op.Summary, Description: op.Description,
			}
			for _, s := range item.Servers {
				o.Servers = append(o.Servers, docsServer{URL: s.URL, Description: s.Description})
			}
			security := doc.Security
			if op.Security != nil {
				security = *op.Security
			}
			for _, req := range security {
				var alt []string
				for name, scopes := range req {
					if len(scopes) > 0 {
						name += " (" + strings.Join(scopes, ", ") + ")"
					}
					alt = append(alt, name)
				}
				slices.Sort(alt)
				if len(alt) == 0 {
					alt = []string{"none"}
				}
				o.Security = append(o.Security, strings.Join(alt, " and "))
			}
			for _, p := range append(slices.Clone(item.Parameters), op.Parameters...) {
				if p.Value == nil {
					continue
				}
				o.Parameters = append(o.Parameters, docsParam{Name: p.Value.Name, In: p.Value.In, Description: p.Value.Description,
					Required: p.Value.Required, Schema: schemaOf(p.Value.Schema, 0)})
			}
			if rb := op.RequestBody; rb != nil && rb.Value != nil {
				o.Body = &docsBody{Required: rb.Value.Required, Content: contentOf(rb.Value.Content)}
			}
			responses := op.Responses.Map()
			statuses := make([]string, 0, len(responses))
			for s := range responses {
				statuses = append(statuses, s)
			}
			slices.Sort(statuses)
			for _, status := range statuses {
				resp := responses[status].Value
				if resp == nil {
					continue
				}
				r := docsResponse{Status: status, Content: contentOf(resp.Content)}
				if resp.Description != nil {
					r.Description = *resp.Description
				}
				hs := make([]string, 0, len(resp.Headers))
				for h := range resp.Headers {
					hs = append(hs, h)
				}
				slices.Sort(hs)
				for _, h := range hs {
					hv := resp.Headers[h].Value
					if hv == nil {
						continue
					}
					r.Headers = append(r.Headers, docsParam{Name: h, Description: hv.Description, Required: hv.Required, Schema: schemaOf(hv.Schema, 0)})
				}
				o.Responses = append(o.Responses, r)
			}
			tag := "other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			g := groups[tag]
			if g == nil {
				g = &docsGroup{Name: tag}
				groups[tag] = g
				order = append(order, tag)
			}
			g.Operations = append(g.Operations, o)
		}
	}
	for _, name := range order {
		if g := groups[name]; len(g.Operations) > 0 {
			page.Groups = append(page.Groups, *g)
		}
	}
	if doc.Components != nil {
		schemas := make([]string, 0, len(doc.Components.Schemas))
		for name := range doc.Components.Schemas {
			schemas = append(schemas, name)
		}
		slices.Sort(schemas)
		for _, name := range schemas {
			ref := doc.Components.Schemas[name]
			page.Schemas = append(page.Schemas, docsNamedSchema{Name: name, Schema: expand(ref)})
		}
		security := make([]string, 0, len(doc.Components.SecuritySchemes))
		for name := range doc.Components.SecuritySchemes {
			security = append(security, name)
		}
		slices.Sort(security)
		for _, name := range security {
			s := doc.Components.SecuritySchemes[name].Value
			if s == nil {
				continue
			}
			text := s.Type
			if s.Scheme != "" {
				text += " " + s.Scheme
			}
			if s.Description != "" {
				text += ": " + s.Description
			}
			page.Security = append(page.Security, docsNamedText{Name: name, Text: text})
		}
	}
	tmpl, err := template.New("docs").Funcs(template.FuncMap{
		"paragraphs": paragraphs,
		"prose":      prose,
		"lower":      strings.ToLower,
		"anchor":     anchorOf,
	}).Parse(docsHTML)
	if err != nil {
		return nil, fmt.Errorf("api: parse docs.html: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, page); err != nil {
		return nil, fmt.Errorf("api: render docs.html: %w", err)
	}
	return buf.Bytes(), nil
}

// anchorOf turns a path or name into an HTML id.
func anchorOf(s string) string {
	return strings.Trim(strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, s), "-")
}

// paragraphs splits a description on blank lines.
func paragraphs(s string) []string {
	var out []string
	for _, p := range strings.Split(strings.TrimSpace(s), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// prose renders text with its `code` spans as <code>; everything else is
// escaped.
func prose(s string) template.HTML {
	var b strings.Builder
	for i, part := range strings.Split(s, "`") {
		if i%2 == 1 {
			b.WriteString("<code>" + template.HTMLEscapeString(part) + "</code>")
		} else {
			b.WriteString(template.HTMLEscapeString(part))
		}
	}
	return template.HTML(b.String())
}

// contentOf lists a content map's media types in order.
func contentOf(c openapi3.Content) []docsContent {
	types := make([]string, 0, len(c))
	for t := range c {
		types = append(types, t)
	}
	slices.Sort(types)
	out := make([]docsContent, 0, len(types))
	for _, t := range types {
		var s *docsSchema
		if c[t] != nil {
			s = schemaOf(c[t].Schema, 0)
		}
		out = append(out, docsContent{MediaType: t, Schema: s})
	}
	return out
}

// maxSchemaDepth bounds how deep inline schemas are shown.
const maxSchemaDepth = 6

// schemaOf describes ref for the page: a reference to a component is a
// link (the component is shown once, in the schema section).
func schemaOf(ref *openapi3.SchemaRef, depth int) *docsSchema {
	if ref == nil {
		return nil
	}
	if name, ok := strings.CutPrefix(ref.Ref, "#/components/schemas/"); ok {
		return &docsSchema{Ref: name, Type: name}
	}
	if ref.Value == nil || depth > maxSchemaDepth {
		return &docsSchema{Type: "…"}
	}
	return describe(ref.Value, depth)
}

// expand describes a component schema itself, not a link to it.
func expand(ref *openapi3.SchemaRef) *docsSchema {
	if ref == nil || ref.Value == nil {
		return &docsSchema{Type: "…"}
	}
	return describe(ref.Value, 0)
}

func describe(s *openapi3.Schema, depth int) *docsSchema {
	d := &docsSchema{Description: s.Description}
	if s.Type != nil {
		d.Type = strings.Join(s.Type.Slice(), " | ")
	}
	if s.Format != "" {
		d.Type += " (" + s.Format + ")"
	}
	if s.Const != nil {
		d.Constraints = append(d.Constraints, "always "+jsonText(s.Const))
	}
	if len(s.Enum) > 0 {
		vals := make([]string, 0, len(s.Enum))
		for _, v := range s.Enum {
			vals = append(vals, jsonText(v))
		}
		d.Constraints = append(d.Constraints, "one of "+strings.Join(vals, ", "))
	}
	if s.MinLength > 0 {
		d.Constraints = append(d.Constraints, "at least "+strconv.FormatUint(s.MinLength, 10)+" characters")
	}
	if s.MaxLength != nil {
		d.Constraints = append(d.Constraints, "at most "+strconv.FormatUint(*s.MaxLength, 10)+" bytes")
	}
	if s.Pattern != "" {
		d.Constraints = append(d.Constraints, "matches "+s.Pattern)
	}
	if s.Min != nil {
		d.Constraints = append(d.Constraints, "minimum "+strconv.FormatFloat(*s.Min, 'f', -1, 64))
	}
	if s.Max != nil {
		d.Constraints = append(d.Constraints, "maximum "+strconv.FormatFloat(*s.Max, 'f', -1, 64))
	}
	if s.ContentMediaType != "" {
		d.Constraints = append(d.Constraints, "content "+s.ContentMediaType)
	}
	if s.AdditionalProperties.Has != nil && !*s.AdditionalProperties.Has {
		d.Constraints = append(d.Constraints, "no other members")
	}
	for _, ex := range s.Examples {
		d.Constraints = append(d.Constraints, "e.g. "+jsonText(ex))
	}
	if s.Items != nil {
		d.Items = schemaOf(s.Items, depth+1)
	}
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		d.Properties = append(d.Properties, docsProperty{Name: n, Required: slices.Contains(s.Required, n), Schema: schemaOf(s.Properties[n], depth+1)})
	}
	for _, alt := range []struct {
		name string
		refs openapi3.SchemaRefs
	}{{"one of", s.OneOf}, {"any of", s.AnyOf}, {"all of", s.AllOf}} {
		if len(alt.refs) == 0 {
			continue
		}
		d.Alternative = alt.name
		for _, r := range alt.refs {
			d.Variants = append(d.Variants, schemaOf(r, depth+1))
		}
	}
	return d
}

// jsonText shows a value as JSON.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
