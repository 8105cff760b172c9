package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/login/notify/notifytest"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
)

// toriiProcess is a `torii serve` in a process of its own (the test binary
// standing in for torii, see TestMain).
type toriiProcess struct {
	cmd  *exec.Cmd
	base string
	out  *syncBuffer
	done chan struct{}
}

// startTorii starts serve on addr with env added to the test's environment
// and waits until /readyz answers 200.
func startTorii(t *testing.T, addr string, env []string) *toriiProcess {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &toriiProcess{cmd: exec.Command(exe, "serve"), base: "http://" + addr, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(append(os.Environ(), benchChildEnv+"=1", "TORII_ADDR="+addr, "TORII_ISSUER=http://"+addr), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start torii: %v", err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("torii serve exited before it was ready:\n%s", p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("torii serve not ready after 30 s:\n%s", p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL: no shutdown, no last flush.
func (p *toriiProcess) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// TestCrashRecovery kills `torii serve` with SIGKILL while a bounded load
// issues client-credentials tokens, rotates refresh tokens and has one-time
// codes mailed, restarts it on the same database, and checks that nothing
// answered was lost: every access token whose response arrived is active,
// every refresh rotation that answered is the one in force, and every
// queued mail is sent, once.
//
// The one duplicate SMTP allows (a mail the server accepted whose
// acknowledgement never reached the sender, sent again) is kept out of the
// test on purpose: the mail server starts refusing (451) just before the
// kill, and the kill waits until no message is being sent; so the mails
// queued at the kill are all sent after the restart.
func TestCrashRecovery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		ctx := t.Context()
		const chains, codeUsers = 4, 24
		smtpd := notifytest.NewSMTPServer(t)
		certFile := filepath.Join(t.TempDir(), "smtp.pem")
		if err := os.WriteFile(certFile, smtpd.CertPEM(), 0o600); err != nil {
			t.Fatal(err)
		}

		// The client and the users, written before the server starts.
		cfg := newEnvConfig(dbURL)
		srv, err := newServer(ctx, cfg, newLogger(io.Discard, cfg), serverOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, secret, err := srv.provider.Clients().Register(ctx, provider.ClientSpec{ID: "crash",
			GrantTypes: []string{"password", "refresh_token", "client_credentials"}, Scopes: []string{"openid", "offline_access"}})
		if err != nil {
			t.Fatal(err)
		}
		for i := range codeUsers + 1 {
			if _, err := srv.accounts.Create(ctx, account.NewUser{Email: fmt.Sprintf("u%02d@example.com", i), Password: testPassword, EmailVerified: true}); err != nil {
				t.Fatal(err)
			}
		}
		srv.close()

		addr := freeAddr(t)
		env := []string{"TORII_DATABASE_URL=" + dbURL, "TORII_OTP=off", "TORII_SMTP_URL=" + smtpd.URL(), "TORII_MAIL_FROM=torii@example.test",
			"SSL_CERT_FILE=" + certFile, "TORII_ADMIN_ADDR=off", "TORII_METRICS_ADDR=", "TORII_LOG_LEVEL=warn", "TORII_SHUTDOWN_DELAY=0s",
			"TORII_IP_RATE_LIMIT=1000000/1s", "TORII_IP_FAILURE_LIMIT=1000000/1s", "TORII_TOKEN_FAILURE_LIMIT=1000000/1s"}
		proc := startTorii(t, addr, env)
		client := &http.Client{Timeout: 30 * time.Second}
		post := func(form url.Values) (int, map[string]any, error) {
			req, _ := http.NewRequestWithContext(context.Background(), "POST", proc.base+"/oauth2/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("crash", secret)
			resp, err := client.Do(req)
			if err != nil {
				return 0, nil, err
			}
			defer resp.Body.Close()
			var m map[string]any
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				return 0, nil, err
			}
			json.Unmarshal(raw, &m)
			return resp.StatusCode, m, nil
		}

		// Each chain starts with a refresh token of the same user.
		type chain struct {
			refresh, access string
			rotations       int
			unanswered      bool // a request was in flight at the kill
		}
		chainsState := make([]*chain, chains)
		for i := range chainsState {
			status, m, err := post(url.Values{"grant_type": {"password"}, "username": {"u00@example.com"}, "password": {testPassword}, "scope": {"openid offline_access"}})
			if err != nil || status != 200 {
				t.Fatalf("password grant = %d %v %v", status, m, err)
			}
			chainsState[i] = &chain{refresh: m["refresh_token"].(string), access: m["access_token"].(string)}
		}

		var (
			mu        sync.Mutex
			ccTokens  []string
			codeSent  = map[string]bool{} // users whose code step answered 403: a mail queued
			codeMaybe = map[string]bool{} // users whose request was in flight at the kill
			rotations atomic.Int32
			wg        sync.WaitGroup
		)
		for range 2 { // client credentials
			wg.Go(func() {
				for {
					status, m, err := post(url.Values{"grant_type": {"client_credentials"}})
					if err != nil {
						return
					}
					if status != 200 {
						t.Errorf("client credentials = %d %v", status, m)
						return
					}
					mu.Lock()
					ccTokens = append(ccTokens, m["access_token"].(string))
					mu.Unlock()
				}
			})
		}
		for _, c := range chainsState { // refresh rotations
			wg.Go(func() {
				for {
					status, m, err := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.refresh}})
					if err != nil {
						c.unanswered = true
						return
					}
					if status != 200 {
						t.Errorf("refresh = %d %v", status, m)
						return
					}
					c.refresh, c.access = m["refresh_token"].(string), m["access_token"].(string)
					c.rotations++
					rotations.Add(1)
				}
			})
		}
		var nextUser atomic.Int32
		for range 2 { // one-time codes, one sign-in per user
			wg.Go(func() {
				for {
					i := int(nextUser.Add(1))
					if i > codeUsers {
						return
					}
					email := fmt.Sprintf("u%02d@example.com", i)
					status, m, err := post(url.Values{"grant_type": {"password"}, "username": {email}, "password": {testPassword},
						"scope": {"openid"}, "acr_values": {"mfa"}})
					mu.Lock()
					switch {
					case err != nil:
						codeMaybe[email] = true
					case status == http.StatusForbidden && m["error"] == "mfa_required":
						codeSent[email] = true
					default:
						t.Errorf("password grant with acr_values=mfa for %s = %d %v", email, status, m)
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			})
		}

		// Under load: some mails delivered, tokens issued, rotations done.
		deadline := time.Now().Add(60 * time.Second)
		for {
			mu.Lock()
			n, codes := len(ccTokens), len(codeSent)
			mu.Unlock()
			if n >= 50 && rotations.Load() >= 4*chains && codes >= 8 && len(smtpd.Mails()) >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("load too slow: %d tokens, %d rotations, %d codes, %d mails in 60 s", n, rotations.Load(), codes, len(smtpd.Mails()))
			}
			time.Sleep(10 * time.Millisecond)
		}
		smtpd.Reject(true)
		db := openRaw(t, dbURL)
		for {
			var sending int
			if err := db.QueryRow("SELECT count(*) FROM outbox WHERE status = 'pending' AND claimed_until IS NOT NULL").Scan(&sending); err != nil {
				t.Fatal(err)
			}
			if sending == 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		proc.kill()
		wg.Wait()
		client.CloseIdleConnections() // the killed process's
		mailsAtKill := len(smtpd.Mails())
		mu.Lock()
		t.Logf("killed after %d client-credentials tokens, %d rotations, %d codes queued (%d in flight), %d mails delivered",
			len(ccTokens), rotations.Load(), len(codeSent), len(codeMaybe), mailsAtKill)
		mu.Unlock()

		smtpd.Reject(false)
		proc = startTorii(t, addr, env)

		introspect := func(tok string) bool {
			req, _ := http.NewRequest("POST", proc.base+"/oauth2/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("crash", secret)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]any
			json.NewDecoder(resp.Body).Decode(&m)
			return m["active"] == true
		}
		inactive := 0
		for _, tok := range ccTokens {
			if !introspect(tok) {
				inactive++
			}
		}
		if inactive > 0 {
			t.Errorf("%d of %d client-credentials tokens answered before the kill are inactive after the restart", inactive, len(ccTokens))
		}
		for i, c := range chainsState {
			if c.unanswered && !introspect(c.refresh) {
				// The rotation in flight at the kill committed: its answer
				// was lost, and the last one answered is rotated away.
				t.Logf("chain %d: the rotation in flight at the kill committed", i)
				continue
			}
			if !introspect(c.refresh) || !introspect(c.access) {
				t.Errorf("chain %d: the last answered rotation (%d) is not in force after the restart", i, c.rotations)
				continue
			}
			if status, m, err := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.refresh}}); err != nil || status != 200 {
				t.Errorf("chain %d: refresh with the last answered token after the restart = %d %v %v", i, status, m, err)
			}
		}

		// Every queued mail goes out after the restart, once.
		for {
			var pending int
			if err := db.QueryRow("SELECT count(*) FROM outbox WHERE status = 'pending'").Scan(&pending); err != nil {
				t.Fatal(err)
			}
			if pending == 0 {
				break
			}
			if time.Now().After(deadline.Add(60 * time.Second)) {
				t.Fatalf("%d messages still pending long after the restart:\n%s", pending, proc.out)
			}
			time.Sleep(50 * time.Millisecond)
		}
		got := map[string]int{}
		for _, m := range smtpd.Mails() {
			for _, to := range m.To {
				got[to]++
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for email := range codeSent {
			if got[email] != 1 {
				t.Errorf("%s got %d mails, want 1 (its code was queued before the kill)", email, got[email])
			}
		}
		for email := range codeMaybe {
			if got[email] > 1 {
				t.Errorf("%s got %d mails, want at most 1 (its request was in flight at the kill)", email, got[email])
			}
		}
		if after := len(smtpd.Mails()) - mailsAtKill; after == 0 {
			t.Error("no mail was sent after the restart: the test did not kill with mails queued")
		}
		var sent int
		if err := db.QueryRow("SELECT count(*) FROM outbox WHERE status = 'sent'").Scan(&sent); err != nil || sent != len(smtpd.Mails()) {
			t.Errorf("%d outbox rows sent (%v), %d mails received", sent, err, len(smtpd.Mails()))
		}
	})
}

// openRaw opens dbURL (a Torii database URL) with database/sql, for the
// test's own queries while a server runs on it.
func openRaw(t *testing.T, dbURL string) *sql.DB {
	t.Helper()
	dialect, dsn, err := storage.ParseURL(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	driver := "pgx"
	if dialect == storage.SQLite {
		driver, dsn = "sqlite", dsn+"_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
