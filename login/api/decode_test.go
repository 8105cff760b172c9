package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	type body struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
		On    bool   `json:"on"`
	}
	tests := []struct {
		name, ctype, body string
		status            int
		kind, field       string
	}{
		{"good", "application/json", `{"name":"a","count":1,"on":true}`, 0, "", ""},
		{"charset parameter", "application/json; charset=utf-8", `{"name":"a"}`, 0, "", ""},
		{"form", "application/x-www-form-urlencoded", `name=a`, 415, "unsupported-media-type", ""},
		{"no content type", "", `{"name":"a"}`, 415, "unsupported-media-type", ""},
		{"text/json", "text/json", `{"name":"a"}`, 415, "unsupported-media-type", ""},
		{"unknown member", "application/json", `{"name":"a","admin":true}`, 400, "validation", "admin"},
		{"wrong type", "application/json", `{"count":"7"}`, 400, "validation", "count"},
		{"null for a number is fine", "application/json", `{"count":null}`, 0, "", ""},
		{"truncated", "application/json", `{"name":`, 400, "malformed", ""},
		{"trailing object", "application/json", `{"name":"a"}{}`, 400, "malformed", ""},
		{"trailing garbage", "application/json", `{"name":"a"} x`, 400, "malformed", ""},
		{"an array", "application/json", `[]`, 400, "malformed", ""},
		{"empty", "application/json", ``, 400, "malformed", ""},
		{"over 1 MiB", "application/json", `{"name":"` + strings.Repeat("a", maxBodyBytes) + `"}`, 413, "too-large", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			var v body
			p := decode(httptest.NewRecorder(), r, &v)
			if tc.status == 0 {
				if p != nil {
					t.Fatalf("decode = %+v, want nil", p)
				}
				return
			}
			if p == nil || p.Status != tc.status || p.Type != TypePrefix+tc.kind {
				t.Fatalf("decode = %+v, want %d %s", p, tc.status, tc.kind)
			}
			if tc.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tc.field) {
				t.Errorf("errors = %+v, want one on %q", p.Errors, tc.field)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		want   string
		ok     bool
	}{
		{"bearer", []string{"Bearer abc"}, "abc", true},
		{"lower case scheme", []string{"bearer abc"}, "abc", true},
		{"none", nil, "", false},
		{"basic", []string{"Basic YTpi"}, "", false},
		{"empty token", []string{"Bearer "}, "", false},
		{"two headers", []string{"Bearer a", "Bearer b"}, "", false},
		{"huge", []string{"Bearer " + strings.Repeat("a", 5000)}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, h := range tc.header {
				r.Header.Add("Authorization", h)
			}
			got, ok := bearerToken(r)
			if got != tc.want || ok != tc.ok {
				t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", tc.header, got, ok, tc.want, tc.ok)
			}
		})
	}
}
