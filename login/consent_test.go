package login_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

func urlEscape(s string) string { return url.QueryEscape(s) }

// consentEnv returns a signed-in browser and a pending request "req1" for
// client "app".
func consentEnv(t *testing.T, open func(testing.TB) *storage.Store, scope string) (*env, *browser) {
	t.Helper()
	e := newEnv(t, open, false)
	e.pendingRequest("req1", scope)
	b := e.browser()
	if r := b.signIn("req1", "alice", alicePassword); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in = %d", r.StatusCode)
	}
	return e, b
}

func TestConsentPage(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e, b := consentEnv(t, open, "openid profile email phone offline_access calendar.read openid")
		r := b.get("/consent?req=req1")
		if r.StatusCode != http.StatusOK {
			t.Fatalf("GET /consent = %d:\n%s", r.StatusCode, r.body)
		}
		checkPageHeaders(t, "GET /consent", r)
		for _, want := range []string{
			"<strong>Example App</strong>",
			"<li>Sign you in</li>",
			"<li>See your name, username and picture</li>",
			"<li>See your email address</li>",
			"<li>See your phone number</li>",
			"<li>Stay signed in when you are away</li>",
			"<code>calendar.read</code>",
			`name="action" value="allow"`,
			`name="action" value="deny"`,
			`<input type="hidden" name="req" value="req1">`,
			aliceEmail,
		} {
			if !strings.Contains(r.body, want) {
				t.Errorf("consent page lacks %s", want)
			}
		}
		if n := strings.Count(r.body, "<li>Sign you in</li>"); n != 1 {
			t.Errorf("openid listed %d times, want once", n)
		}
		_ = e
	})
}

func TestConsentAllow(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e, b := consentEnv(t, open, "openid email")
		ctx := t.Context()
		// Consent given earlier is kept.
		if err := e.store.SaveConsent(ctx, &storage.Consent{Subject: e.alice.ID, ClientID: "app", Scopes: []string{"profile"}}); err != nil {
			t.Fatal(err)
		}
		tok := b.csrf("/consent?req=req1")
		r := b.post("/consent", url.Values{"csrf": {tok}, "req": {"req1"}, "action": {"allow"}})
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/oauth2/auth/resume?req=req1" {
			t.Fatalf("allow = %d, Location %q; want 303 to the resume URL", r.StatusCode, r.Header.Get("Location"))
		}
		c, err := e.store.Consent(ctx, e.alice.ID, "app")
		if err != nil {
			t.Fatal(err)
		}
		got := slices.Sorted(slices.Values(c.Scopes))
		if !slices.Equal(got, []string{"email", "openid", "profile"}) {
			t.Errorf("consented scopes = %v, want email, openid, profile", got)
		}
	})
}

func TestConsentDeny(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e, b := consentEnv(t, open, "openid email")
		tok := b.csrf("/consent?req=req1")
		r := b.post("/consent", url.Values{"csrf": {tok}, "req": {"req1"}, "action": {"deny"}})
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/oauth2/auth/resume?req=req1&deny=1" {
			t.Fatalf("deny = %d, Location %q; want 303 to the resume URL with deny=1", r.StatusCode, r.Header.Get("Location"))
		}
		if _, err := e.store.Consent(t.Context(), e.alice.ID, "app"); err == nil {
			t.Error("deny saved a consent")
		}
	})
}

func TestConsentWithoutSession(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := newEnv(t, open, false)
		e.pendingRequest("req1", "openid")
		b := e.browser()
		if r := b.get("/consent?req=req1"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login?req=req1" {
			t.Errorf("GET /consent = %d, Location %q; want 303 to /login?req=req1", r.StatusCode, r.Header.Get("Location"))
		}
		tok := b.csrf("/login?req=req1")
		r := b.post("/consent", url.Values{"csrf": {tok}, "req": {"req1"}, "action": {"allow"}})
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login?req=req1" {
			t.Errorf("POST /consent = %d, Location %q; want 303 to /login?req=req1", r.StatusCode, r.Header.Get("Location"))
		}
		b.setJarCookie("torii_session", randomToken())
		if r := b.get("/consent?req=req1"); r.StatusCode != http.StatusSeeOther {
			t.Errorf("GET /consent with an unknown session = %d, want 303", r.StatusCode)
		}
		if _, err := e.store.Consent(t.Context(), e.alice.ID, "app"); err == nil {
			t.Error("a consent was saved without a session")
		}
	})
}

func TestConsentRefusals(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e, b := consentEnv(t, open, "openid")
		tok := b.csrf("/consent?req=req1")
		other := e.browser()
		otherTok := other.csrf("/login")
		tests := []struct {
			name   string
			get    string
			form   url.Values
			status int
			msg    string
		}{
			{name: "GET unknown req", get: "/consent?req=gone", status: http.StatusBadRequest, msg: "This sign-in request has expired. Go back to the app and try again."},
			{name: "GET no req", get: "/consent", status: http.StatusBadRequest, msg: "This sign-in request has expired."},
			{name: "GET malformed req", get: "/consent?req=%3Cscript%3E", status: http.StatusBadRequest, msg: "This sign-in request has expired."},
			{name: "POST unknown req", form: url.Values{"csrf": {tok}, "req": {"gone"}, "action": {"allow"}}, status: http.StatusBadRequest, msg: "This sign-in request has expired."},
			{name: "POST no token", form: url.Values{"req": {"req1"}, "action": {"allow"}}, status: http.StatusForbidden, msg: "This form has expired"},
			{name: "POST forged token", form: url.Values{"csrf": {randomToken()}, "req": {"req1"}, "action": {"allow"}}, status: http.StatusForbidden, msg: "This form has expired"},
			{name: "POST another browser's token", form: url.Values{"csrf": {otherTok}, "req": {"req1"}, "action": {"allow"}}, status: http.StatusForbidden, msg: "This form has expired"},
			{name: "POST bad action", form: url.Values{"csrf": {tok}, "req": {"req1"}, "action": {"maybe"}}, status: http.StatusBadRequest, msg: "The request was not understood."},
			{name: "POST two actions", form: url.Values{"csrf": {tok}, "req": {"req1"}, "action": {"deny", "allow"}}, status: http.StatusBadRequest, msg: "The request was not understood."},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var r *response
				if tc.get != "" {
					r = b.get(tc.get)
				} else {
					r = b.post("/consent", tc.form)
				}
				if r.StatusCode != tc.status || !strings.Contains(r.body, tc.msg) {
					t.Errorf("status %d, want %d with %q:\n%s", r.StatusCode, tc.status, tc.msg, r.body)
				}
				checkPageHeaders(t, tc.name, r)
			})
		}
		if _, err := e.store.Consent(t.Context(), e.alice.ID, "app"); err == nil {
			t.Error("a refused request saved a consent")
		}
		// A deleted client ends the request.
		if err := e.store.DeleteClient(t.Context(), "app"); err != nil {
			t.Fatal(err)
		}
		if r := b.get("/consent?req=req1"); r.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /consent for a deleted client = %d, want 400", r.StatusCode)
		}
	})
}
