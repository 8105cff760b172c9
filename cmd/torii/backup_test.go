package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
)

// TestBackup runs torii backup beside a server on a SQLite file that issues
// tokens and creates users all the while: the server answers every request,
// before, during and after; the backup passes integrity_check and, restored
// (a server started on it), knows every user and token committed before the
// backup began.
func TestBackup(t *testing.T) {
	dir := t.TempDir()
	dbURL := "sqlite:" + filepath.Join(dir, "torii.db")
	e := newEnv(t, dbURL)
	id, secret := e.client(provider.ClientSpec{ID: "svc", GrantTypes: []string{"client_credentials"}, Scopes: []string{}})

	var mu sync.Mutex
	var tokens, users, failures []string
	issue := func() {
		form := url.Values{"grant_type": {"client_credentials"}}
		req, _ := http.NewRequest("POST", e.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			mu.Lock()
			failures = append(failures, err.Error())
			mu.Unlock()
			return
		}
		defer resp.Body.Close()
		var body struct {
			AccessToken string `json:"access_token"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		mu.Lock()
		defer mu.Unlock()
		if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
			failures = append(failures, fmt.Sprintf("token: %d", resp.StatusCode))
			return
		}
		tokens = append(tokens, body.AccessToken)
	}
	createUser := func(i int) {
		u, err := e.srv.accounts.Create(context.Background(), account.NewUser{
			Email: fmt.Sprintf("user%d@example.com", i), Password: testPassword, EmailVerified: true,
		})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failures = append(failures, err.Error())
			return
		}
		users = append(users, u.ID)
	}
	for i := range 20 {
		issue()
		if i%5 == 0 {
			createUser(i)
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					issue()
				}
			}
		})
	}
	wg.Go(func() {
		for i := 1000; ; i++ {
			select {
			case <-stop:
				return
			default:
				createUser(i)
			}
		}
	})
	time.Sleep(100 * time.Millisecond) // the load is on

	cliEnv(t)
	t.Setenv("TORII_DATABASE_URL", dbURL)
	backup := filepath.Join(dir, "backup.db")
	mu.Lock()
	committedTokens, committedUsers := append([]string(nil), tokens...), append([]string(nil), users...)
	mu.Unlock()
	code, out, stderr := torii(t, "backup", "--to", backup)
	mu.Lock()
	atEnd := len(tokens)
	mu.Unlock()
	// The server goes on after the backup too.
	for {
		mu.Lock()
		n := len(tokens)
		mu.Unlock()
		if n >= atEnd+20 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("backup = %d: %s", code, stderr)
	}
	var printed struct {
		File  string `json:"file"`
		Bytes int64  `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(out), &printed); err != nil || printed.File != backup || printed.Bytes == 0 {
		t.Errorf("backup printed %q (%v), want JSON naming %s and its size", out, err, backup)
	}
	if len(failures) > 0 {
		t.Errorf("%d requests failed while the backup ran: %q", len(failures), failures[:min(5, len(failures))])
	}
	t.Logf("%d tokens and %d users committed before the backup, %d tokens by its end, %d in all", len(committedTokens), len(committedUsers), atEnd, len(tokens))

	b, err := storage.Open(t.Context(), "sqlite:"+backup, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var check string
	if err := b.DB().QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check of the backup = %q, %v; want ok", check, err)
	}
	for _, u := range committedUsers {
		if _, err := b.User(t.Context(), u); err != nil {
			t.Errorf("user %s, committed before the backup, is not in it: %v", u, err)
		}
	}
	b.Close()

	// Restored: a server on the backup knows every token issued before it.
	restored := newEnv(t, "sqlite:"+backup)
	for i, tok := range committedTokens {
		if got := restored.introspect(tok, id, secret); got["active"] != true {
			t.Fatalf("token %d of %d, issued before the backup, is inactive on the restored database: %v", i+1, len(committedTokens), got)
		}
	}
}

// TestBackupRefusals: backup refuses, with exit status 2 and one line, a
// missing --to, an existing file (left as it was), a PostgreSQL database
// (pointing at pg_dump) and an in-memory one.
func TestBackupRefusals(t *testing.T) {
	dir := t.TempDir()
	db := cliEnv(t)
	if code, _, stderr := torii(t, "migrate"); code != 0 {
		t.Fatal(stderr)
	}
	existing := filepath.Join(dir, "existing.db")
	os.WriteFile(existing, []byte("keep me"), 0o600)
	tests := []struct {
		name  string
		dbURL string
		args  []string
		says  string
	}{
		{"no target", db, []string{"backup"}, "--to"},
		{"existing file", db, []string{"backup", "--to", existing}, "already exists"},
		{"postgres", "postgres://postgres@127.0.0.1:1/torii?sslmode=disable", []string{"backup", "--to", filepath.Join(dir, "pg.db")}, "pg_dump"},
		{"in memory", "sqlite::memory:", []string{"backup", "--to", filepath.Join(dir, "mem.db")}, "one process"},
		{"no database", "sqlite:" + filepath.Join(dir, "nothing.db"), []string{"backup", "--to", filepath.Join(dir, "n.db")}, "no database"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TORII_DATABASE_URL", tc.dbURL)
			code, out, stderr := torii(t, tc.args...)
			if code != 2 || out != "" || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, tc.says) {
				t.Errorf("torii %q = %d, %q, %q; want 2 and one line about %q", tc.args, code, out, stderr, tc.says)
			}
		})
	}
	if got, _ := os.ReadFile(existing); string(got) != "keep me" {
		t.Errorf("the existing file now holds %q", got)
	}
	for _, f := range []string{"pg.db", "mem.db", "nothing.db", "n.db"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("a refused backup created %s", f)
		}
	}
}
