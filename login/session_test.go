package login_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

func TestSignedIn(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := newEnv(t, open, false)
		ctx := t.Context()
		bob, err := e.accounts.Create(ctx, accountUser("bob@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		session := func(subject string, authTime, expires time.Time) string {
			t.Helper()
			tok := randomToken()
			if err := e.store.CreateLoginSession(ctx, &storage.LoginSession{
				IDHash: sha256Hex(tok), Subject: subject, AuthTime: authTime, AMR: []string{"pwd"}, ExpiresAt: expires,
			}); err != nil {
				t.Fatal(err)
			}
			return tok
		}
		now := time.Now()
		live := session(e.alice.ID, now.Add(-time.Minute), now.Add(time.Hour))
		expired := session(e.alice.ID, now.Add(-2*time.Hour), now.Add(-time.Second))
		disabled := session(bob.ID, now.Add(-time.Minute), now.Add(time.Hour))
		if _, err := e.store.DB().NewUpdate().Model((*storage.User)(nil)).Set("disabled = ?", true).Where("id = ?", bob.ID).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		carol, err := e.accounts.Create(ctx, accountUser("carol@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		stale := session(carol.ID, now.Add(-time.Hour), now.Add(time.Hour))
		if _, err := e.store.DB().NewUpdate().Model((*storage.User)(nil)).Set("password_changed_at = ?", now.Add(-time.Minute).UTC()).Where("id = ?", carol.ID).Exec(ctx); err != nil {
			t.Fatal(err)
		}

		tests := []struct {
			name   string
			cookie string
			want   bool
		}{
			{"live session", live, true},
			{"no cookie", "", false},
			{"garbage", "garbage", false},
			{"unknown ID", randomToken(), false},
			{"the stored hash as cookie", sha256Hex(live), false},
			{"expired", expired, false},
			{"disabled user", disabled, false},
			{"password changed since", stale, false},
			{"10 kB cookie", strings.Repeat("a", 10_000), false},
			{"padded base64", live + "=", false},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				sub, ok := e.signedIn(tc.cookie)
				if ok != tc.want {
					t.Fatalf("SignedIn = %q, %v; want %v", sub, ok, tc.want)
				}
			})
		}

		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: "torii_session", Value: live})
		si, ok, err := e.h.SignedIn(r)
		if err != nil || !ok || si.Subject != e.alice.ID || len(si.AMR) != 1 || si.AMR[0] != "pwd" ||
			si.AuthTime.Sub(now.Add(-time.Minute)).Abs() > time.Millisecond {
			t.Errorf("SignedIn = %+v, %v, %v", si, ok, err)
		}

		// A deleted user's sessions die with them.
		if err := e.accounts.Delete(ctx, e.alice.ID); err != nil {
			t.Fatal(err)
		}
		if _, ok := e.signedIn(live); ok {
			t.Error("SignedIn is true for a deleted user")
		}
	})
}

// The session lifetime is the configured one.
func TestSessionLifetime(t *testing.T) {
	e := sqliteEnv(t)
	r := e.browser().signIn("", "alice", alicePassword)
	c := r.cookie("torii_session")
	if c == nil || c.MaxAge != int((24*time.Hour).Seconds()) {
		t.Fatalf("session cookie = %+v, want Max-Age 24h", c)
	}
	ls, err := e.store.LoginSession(t.Context(), sha256Hex(c.Value))
	if err != nil {
		t.Fatal(err)
	}
	if d := ls.ExpiresAt.Sub(ls.AuthTime); d.Round(time.Second) != 24*time.Hour {
		t.Errorf("session lasts %v, want 24h", d)
	}
}

// A hostile user agent is stored cleaned, never failing the sign-in.
func TestUserAgentIsCleaned(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := newEnv(t, open, false)
		b := e.browser()
		tok := b.csrf("/login")
		// The Go client refuses to send such a header, so call the router.
		r := mux.NewRouter()
		e.h.Routes(r)
		req := httptest.NewRequest(http.MethodPost, "/login",
			strings.NewReader("csrf="+tok+"&username=alice&password="+urlEscape(alicePassword)))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("User-Agent", "evil\xff\x00\x01agent"+strings.Repeat("é", 2000))
		req.AddCookie(&http.Cookie{Name: "torii_csrf", Value: b.jarCookie("torii_csrf")})
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("sign-in with a hostile user agent = %d:\n%s", rec.Code, rec.Body)
		}
		var ls storage.LoginSession
		if err := e.store.DB().NewSelect().Model(&ls).Limit(1).Scan(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ls.UserAgent, "evilagent") || len(ls.UserAgent) > 512 {
			t.Errorf("stored user agent %.40q (%d bytes)", ls.UserAgent, len(ls.UserAgent))
		}
	})
}
