package main

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/torii-idp/torii/login/api"
)

// errReader fails as a connection that broke mid-body does.
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// The middleware's own answers: a panic is a 500 and a body that cannot be
// read a 400, as RFC 9457 problems under /api/v1 and in the protocol's
// shape elsewhere; a panic's stack goes to the log, never to the client.
func TestMiddlewareAnswers(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	panics := recoverPanics(log)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	unread := limitBody()(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	for _, tc := range []struct {
		name        string
		handler     http.Handler
		method      string
		path        string
		body        io.Reader
		status      int
		contentType string
		field, want string
	}{
		{"panic in the API", panics, "GET", api.Prefix + "/account", nil, 500, "application/problem+json", "type", api.TypePrefix + "internal"},
		{"panic elsewhere", panics, "GET", "/login", nil, 500, "text/plain; charset=utf-8", "", ""},
		{"unreadable API body", unread, "POST", api.Prefix + "/register", errReader{}, 400, "application/problem+json", "type", api.TypePrefix + "malformed"},
		{"unreadable token request", unread, "POST", "/oauth2/token", errReader{}, 400, "application/json", "error", "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, tc.body)
			if tc.body != nil {
				req.ContentLength = -1
			}
			rec := httptest.NewRecorder()
			tc.handler.ServeHTTP(rec, req)
			if rec.Code != tc.status || rec.Header().Get("Content-Type") != tc.contentType {
				t.Fatalf("= %d %q, want %d %q", rec.Code, rec.Header().Get("Content-Type"), tc.status, tc.contentType)
			}
			if strings.Contains(rec.Body.String(), "boom") || strings.Contains(rec.Body.String(), "goroutine") {
				t.Errorf("the answer tells the cause: %s", rec.Body)
			}
			if tc.field != "" {
				var m map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m[tc.field] != tc.want {
					t.Errorf("body = %s, want %s %q", rec.Body, tc.field, tc.want)
				}
			}
		})
	}
	if !strings.Contains(logs.String(), "goroutine") {
		t.Error("the panic's stack is not in the log")
	}
}
