package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/torii-idp/torii/login/api"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
)

// The API benchmarks run in-process like the token ones, on SQLite and,
// when TORII_TEST_POSTGRES_URL is set, PostgreSQL:
//
//	go test -run '^$' -bench 'API' -benchmem ./cmd/torii

// forEachBackendB runs a benchmark on each database.
func forEachBackendB(b *testing.B, fn func(b *testing.B, dbURL string)) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) { fn(b, be.url(b)) })
	}
}

// BenchmarkAPIAccount is GET /api/v1/account: a token check and a user
// read.
func BenchmarkAPIAccount(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, dbURL string) {
		e := newEnv(b, dbURL)
		e.user("bench@example.com")
		id, secret := e.client(provider.ClientSpec{ID: "spa", GrantTypes: []string{"password"}, Scopes: []string{"account"}})
		status, body, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"bench@example.com"},
			"password": {testPassword}, "scope": {"account"}}, id, secret)
		if status != 200 {
			b.Fatalf("password grant: %d %v", status, body)
		}
		token := body["access_token"].(string)
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest("GET", api.Prefix+"/account", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			rec := httptest.NewRecorder()
			e.srv.handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("GET /account = %d %s", rec.Code, rec.Body)
			}
		}
	})
}

// BenchmarkAPIAdminListUsers pages through 10,000 users, 50 (the default)
// and 200 at a time, in creation and email order, and with a search.
func BenchmarkAPIAdminListUsers(b *testing.B) {
	forEachBackendB(b, func(b *testing.B, dbURL string) {
		e := newEnv(b, dbURL)
		ctx := b.Context()
		err := e.srv.store.InTx(ctx, func(ctx context.Context) error {
			for i := range 10_000 {
				u := &storage.User{ID: fmt.Sprintf("user-%05d", i), Email: fmt.Sprintf("user%05d@example.com", i),
					Name: fmt.Sprintf("Person %d", i), EmailVerified: true}
				u.EmailSkeleton = u.Email
				if err := e.srv.store.CreateUser(ctx, u); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		id, secret := e.client(provider.ClientSpec{ID: "ops", GrantTypes: []string{"client_credentials"}, Scopes: []string{provider.ScopeAdmin}})
		status, body, _ := e.postForm("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {provider.ScopeAdmin}}, id, secret)
		if status != 200 {
			b.Fatalf("client credentials: %d %v", status, body)
		}
		token := body["access_token"].(string)
		for _, q := range []string{"limit=50", "limit=200", "limit=50&sort=-email", "limit=50&q=person%2099"} {
			b.Run(q, func(b *testing.B) {
				next := ""
				b.ReportAllocs()
				for b.Loop() {
					path := api.AdminPrefix + "/users?" + q
					if next != "" {
						path += "&cursor=" + url.QueryEscape(next)
					}
					req := httptest.NewRequest("GET", path, nil)
					req.Header.Set("Authorization", "Bearer "+token)
					rec := httptest.NewRecorder()
					e.srv.adminHandler.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("GET %s = %d %s", path, rec.Code, rec.Body)
					}
					var page struct {
						NextCursor *string `json:"next_cursor"`
					}
					if err := jsonDecode(rec.Body, &page); err != nil {
						b.Fatal(err)
					}
					next = ""
					if page.NextCursor != nil {
						next = *page.NextCursor // the last page starts over
					}
				}
			})
		}
	})
}
