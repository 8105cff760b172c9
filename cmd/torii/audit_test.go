package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/login/iplimit"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"", time.Time{}, false},
		{"24h", now.Add(-24 * time.Hour), false},
		{"2026-12-01T00:00:00Z", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), false},
		{"-1h", time.Time{}, true},
		{"yesterday", time.Time{}, true},
	}
	for _, tc := range tests {
		got, err := parseSince(tc.in, now)
		if (err != nil) != tc.wantErr || !got.Equal(tc.want) {
			t.Errorf("parseSince(%q) = %v, %v, want %v (error %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestCLIAudit(t *testing.T) {
	dbs := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "torii.db") },
		"postgres": func(t *testing.T) string { return storagetest.PostgresURL(t) },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("TORII_DATABASE_URL", dbs[name](t))
			t.Setenv("TORII_LOG_LEVEL", "warn")
			code, out, stderr := torii(t, "users", "create", "--email", "audit@example.com", "--password", testPassword, "--verified")
			if code != 0 {
				t.Fatalf("users create = %d: %s", code, stderr)
			}
			var u struct{ ID string }
			json.Unmarshal([]byte(out), &u)
			if code, _, stderr := torii(t, "users", "roles", u.ID, "--add", "billing"); code != 0 {
				t.Fatalf("users roles = %d: %s", code, stderr)
			}
			if code, _, stderr := torii(t, "users", "delete", u.ID); code != 0 {
				t.Fatalf("users delete = %d: %s", code, stderr)
			}
			if code, _, stderr := torii(t, "keys", "rotate", "--alg", "ES256"); code != 0 {
				t.Fatalf("keys rotate = %d: %s", code, stderr)
			}
			list := func(args ...string) []map[string]any {
				t.Helper()
				code, out, stderr := torii(t, append([]string{"audit", "list"}, args...)...)
				if code != 0 {
					t.Fatalf("audit list %v = %d: %s", args, code, stderr)
				}
				var es []map[string]any
				if err := json.Unmarshal([]byte(out), &es); err != nil {
					t.Fatalf("audit list %v: %v in %s", args, err, out)
				}
				return es
			}
			es := list("--user", u.ID)
			var types []string
			for _, e := range es {
				types = append(types, e["type"].(string))
				if e["actor"] != "cli" || e["subject"] != u.ID {
					t.Errorf("event %v: want actor cli, subject %s", e, u.ID)
				}
			}
			if strings.Join(types, " ") != "account.deleted admin.user_roles_set account.created" {
				t.Errorf("audit list --user = %v, want [account.deleted admin.user_roles_set account.created] (newest first)", types)
			}
			if es := list("--type", "keys.rotated", "--since", "1h"); len(es) == 0 || es[0]["actor"] != "cli" {
				t.Errorf("audit list --type keys.rotated = %v, want the CLI's rotation", es)
			}
			if es := list("--type", "admin.*", "--limit", "1"); len(es) != 1 || es[0]["type"] != "admin.user_roles_set" {
				t.Errorf("audit list --type admin.* --limit 1 = %v", es)
			}
			if es := list("--since", "2999-01-01T00:00:00Z"); len(es) != 0 {
				t.Errorf("audit list --since (future) = %v, want []", es)
			}
			for _, args := range [][]string{{"--limit", "0"}, {"--since", "yesterday"}} {
				if code, _, stderr := torii(t, append([]string{"audit", "list"}, args...)...); code != 2 || stderr == "" {
					t.Errorf("audit list %v = %d %q, want 2 with a message", args, code, stderr)
				}
			}
		})
	}
}

// TestAuditMeta: the middleware hands the audit events the client IP
// behind a trusted proxy, the user agent and the request ID.
func TestAuditMeta(t *testing.T) {
	proxies := iplimit.Proxies{netip.MustParsePrefix("10.0.0.0/8")}
	var got storage.AuditMeta
	h := requestID(auditMeta(proxies)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = storage.AuditMetaFrom(r.Context())
	})))
	tests := []struct {
		name, remote, xff, want string
	}{
		{"direct", "198.51.100.4:4444", "203.0.113.9", "198.51.100.4"},
		{"trusted proxy", "10.1.2.3:4444", "203.0.113.9", "203.0.113.9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tc.remote
			req.Header.Set("X-Forwarded-For", tc.xff)
			req.Header.Set("User-Agent", "agent/1.0")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got.IP != tc.want || got.UserAgent != "agent/1.0" || got.RequestID == "" || got.RequestID != rec.Header().Get("X-Request-Id") {
				t.Errorf("AuditMeta = %+v, want IP %s, agent/1.0 and the X-Request-Id %q", got, tc.want, rec.Header().Get("X-Request-Id"))
			}
		})
	}
}
