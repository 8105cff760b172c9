package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/login/api"
	"github.com/torii-idp/torii/login/notify/notifytest"
	"github.com/torii-idp/torii/provider"
)

// apiEnv is Torii with mail delivery and a first-party client allowed the
// password grant and the account scope.
type apiEnv struct {
	*env
	id, secret string
}

func newAPIEnv(t *testing.T, dbURL string, opts ...envOption) *apiEnv {
	e := newMailEnv(t, dbURL, "off", opts...)
	id, secret := e.client(provider.ClientSpec{ID: "spa", GrantTypes: []string{"password", "refresh_token", "client_credentials"},
		Scopes: []string{"openid", "email", "offline_access", "account"}})
	return &apiEnv{env: e, id: id, secret: secret}
}

// tokens signs email in with the password grant and returns its access and
// refresh tokens.
func (a *apiEnv) tokens(email, scope string) (access, refresh string) {
	a.t.Helper()
	return a.tokensWith(email, testPassword, scope)
}

func (a *apiEnv) tokensWith(email, password, scope string) (access, refresh string) {
	a.t.Helper()
	status, body, _ := a.postForm("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {email},
		"password": {password}, "scope": {scope}}, a.id, a.secret)
	if status != 200 {
		a.t.Fatalf("password grant for %s: %d %v", email, status, body)
	}
	refresh, _ = body["refresh_token"].(string)
	return body["access_token"].(string), refresh
}

// call makes an API request with a JSON body (nil for none) and returns
// the status, the decoded body and the headers.
func (a *apiEnv) call(method, path, token string, body any) (int, map[string]any, http.Header) {
	a.t.Helper()
	return a.do(jsonRequest(method, a.issuer+api.Prefix+path, token, body))
}

// jsonRequest is a request with a JSON body (nil for none; a string is
// sent as is) and, unless token is "", a bearer token.
func jsonRequest(method, u, token string, body any) *http.Request {
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, u, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// wantProblem asserts an RFC 9457 answer of status and kind; field, when
// set, must be named in its errors.
func wantProblem(t *testing.T, status int, body map[string]any, h http.Header, wantStatus int, kind, field string) {
	t.Helper()
	if status != wantStatus || body["type"] != api.TypePrefix+kind || body["status"] != float64(wantStatus) || body["title"] == "" {
		t.Errorf("got %d %v, want %d problem %s", status, body, wantStatus, kind)
		return
	}
	if ct := h.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	if field == "" {
		return
	}
	errs, _ := body["errors"].([]any)
	for _, e := range errs {
		if m, _ := e.(map[string]any); m["field"] == field && m["message"] != "" {
			return
		}
	}
	t.Errorf("errors = %v, want one naming %q", body["errors"], field)
}

func TestAPIAccount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		a := newAPIEnv(t, dbURL)
		sub := a.user("ann@example.com")
		access, _ := a.tokens("ann@example.com", "openid account")

		status, body, h := a.call("GET", "/account", access, nil)
		if status != 200 || body["id"] != sub || body["email"] != "ann@example.com" || body["email_verified"] != true ||
			body["name"] != "Test ann@example.com" || body["roles"] == nil || body["created_at"] == nil || h.Get("Cache-Control") != "no-store" {
			t.Fatalf("GET /account = %d %v", status, body)
		}
		if _, ok := body["password_hash"]; ok {
			t.Error("the account shows its password hash")
		}

		status, body, _ = a.call("PATCH", "/account", access, map[string]any{"name": "Ann Example", "bio": "Hello", "username": "ann"})
		if status != 200 || body["name"] != "Ann Example" || body["bio"] != "Hello" || body["username"] != "ann" {
			t.Fatalf("PATCH /account = %d %v", status, body)
		}
		// Only the members given change.
		status, body, _ = a.call("PATCH", "/account", access, map[string]any{"bio": "Bye"})
		if status != 200 || body["name"] != "Ann Example" || body["bio"] != "Bye" || body["username"] != "ann" {
			t.Fatalf("PATCH bio = %d %v", status, body)
		}

		bad := []struct {
			name   string
			body   any
			status int
			kind   string
			field  string
		}{
			{"email_verified (mass assignment)", map[string]any{"email_verified": true}, 400, "validation", "email_verified"},
			{"roles", map[string]any{"roles": []string{"admin"}}, 400, "validation", "roles"},
			{"password_hash", map[string]any{"password_hash": "x"}, 400, "validation", "password_hash"},
			{"unknown member", map[string]any{"nickname": "x"}, 400, "validation", "nickname"},
			{"wrong type", map[string]any{"name": 42}, 400, "validation", "name"},
			{"10 kB name", map[string]any{"name": strings.Repeat("n", 10_000)}, 400, "validation", "name"},
			{"NUL in bio", map[string]any{"bio": "a\x00b"}, 400, "validation", "bio"},
			{"SQL in username", map[string]any{"username": "' OR 1=1--"}, 400, "validation", "username"},
			{"truncated JSON", `{"name": "x"`, 400, "malformed", ""},
			{"two objects", `{"name":"x"}{"name":"y"}`, 400, "malformed", ""},
			{"an array", `[1,2]`, 400, "malformed", ""},
			{"empty body", ``, 400, "malformed", ""},
		}
		for _, tc := range bad {
			t.Run(tc.name, func(t *testing.T) {
				status, body, h := a.call("PATCH", "/account", access, tc.body)
				wantProblem(t, status, body, h, tc.status, tc.kind, tc.field)
			})
		}
		// Nothing of that changed the account.
		if _, body, _ := a.call("GET", "/account", access, nil); body["email_verified"] != true || body["name"] != "Ann Example" || len(body["roles"].([]any)) != 0 {
			t.Errorf("account after refused PATCHes = %v", body)
		}

		// Not JSON: 415.
		req, _ := http.NewRequest("PATCH", a.issuer+api.Prefix+"/account", strings.NewReader("name=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+access)
		status, body, h = a.do(req)
		wantProblem(t, status, body, h, 415, "unsupported-media-type", "")
		// Over 1 MiB: 413.
		status, body, h = a.call("PATCH", "/account", access, `{"bio":"`+strings.Repeat("x", 1<<20)+`"}`)
		wantProblem(t, status, body, h, 413, "too-large", "")

		// The access token.
		noScope, _ := a.tokens("ann@example.com", "openid")
		status, body, _ = a.postForm("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"account"}}, a.id, a.secret)
		clientToken, _ := body["access_token"].(string)
		for _, tc := range []struct {
			name, token, authz string
			status             int
			kind, challenge    string
		}{
			{"no token", "", "", 401, "unauthorized", `Bearer realm="torii"`},
			{"garbage token", "garbage", "", 401, "unauthorized", `error="invalid_token"`},
			{"Basic instead of Bearer", "", "Basic YTpi", 401, "unauthorized", `Bearer realm="torii"`},
			{"no account scope", noScope, "", 403, "insufficient-scope", `error="insufficient_scope"`},
			{"a client's own token", clientToken, "", 403, "insufficient-scope", `scope="account"`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req, _ := http.NewRequest("GET", a.issuer+api.Prefix+"/account", nil)
				if tc.token != "" {
					req.Header.Set("Authorization", "Bearer "+tc.token)
				}
				if tc.authz != "" {
					req.Header.Set("Authorization", tc.authz)
				}
				status, body, h := a.do(req)
				wantProblem(t, status, body, h, tc.status, tc.kind, "")
				if !strings.Contains(h.Get("WWW-Authenticate"), tc.challenge) {
					t.Errorf("WWW-Authenticate = %q, want it to hold %s", h.Get("WWW-Authenticate"), tc.challenge)
				}
			})
		}
		status, body, h = a.call("GET", "/account?access_token="+access, "", nil)
		wantProblem(t, status, body, h, 400, "malformed", "")

		// Unknown routes and methods answer problems too.
		status, body, h = a.call("GET", "/nowhere", access, nil)
		wantProblem(t, status, body, h, 404, "not-found", "")
		status, body, h = a.call("PUT", "/account", access, map[string]any{})
		wantProblem(t, status, body, h, 405, "method-not-allowed", "")
	})
}

// Sign-up, verification and a forgotten password through the API, with the
// page's rules: a taken address answers alike and mails its owner.
func TestAPIRegistrationAndReset(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		a := newAPIEnv(t, dbURL)
		a.user("taken@example.com")

		status, body, _ := a.call("POST", "/register", "", map[string]any{"email": "new@example.com", "password": "a quiet walrus sings", "name": "New"})
		ticket, _ := body["ticket"].(string)
		if status != 202 || ticket == "" || len(body) != 1 {
			t.Fatalf("register = %d %v", status, body)
		}
		code := notifytest.Code(t, a.nextMail("new@example.com", "", 0).Text)
		mails := len(a.mail.Mails())

		// A taken address: the same answer, and its owner is mailed.
		status, taken, _ := a.call("POST", "/register", "", map[string]any{"email": "Taken@Example.com", "password": "a quiet walrus sings"})
		if status != 202 || taken["ticket"] == "" || len(taken) != 1 {
			t.Errorf("register of a taken address = %d %v, want the same 202", status, taken)
		}
		a.nextMail("taken@example.com", "", mails)

		for _, tc := range []struct {
			name   string
			body   any
			status int
			kind   string
			field  string
		}{
			{"no email", map[string]any{"password": "a quiet walrus sings"}, 400, "validation", "email"},
			{"bad email", map[string]any{"email": "not an address", "password": "a quiet walrus sings"}, 400, "validation", "email"},
			{"short password", map[string]any{"email": "x@example.com", "password": "short"}, 400, "validation", "password"},
			{"common password", map[string]any{"email": "x@example.com", "password": "password123"}, 400, "validation", "password"},
			{"email_verified", map[string]any{"email": "x@example.com", "password": "a quiet walrus sings", "email_verified": true}, 400, "validation", "email_verified"},
			{"10 kB email", map[string]any{"email": strings.Repeat("a", 10_000) + "@example.com", "password": "a quiet walrus sings"}, 400, "validation", "email"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, body, h := a.call("POST", "/register", "", tc.body)
				wantProblem(t, status, body, h, tc.status, tc.kind, tc.field)
			})
		}

		status, body, h := a.call("POST", "/register/verify", "", map[string]any{"ticket": ticket, "code": wrongCode(code)})
		wantProblem(t, status, body, h, 400, "invalid-code", "")
		status, body, h = a.call("POST", "/register/verify", "", map[string]any{"ticket": ticket})
		wantProblem(t, status, body, h, 400, "validation", "code")
		status, body, _ = a.call("POST", "/register/verify", "", map[string]any{"ticket": ticket, "code": code})
		if status != 200 || body["email_verified"] != true {
			t.Fatalf("verify = %d %v", status, body)
		}
		if u, err := a.srv.store.UserByLogin(t.Context(), "new@example.com"); err != nil || !u.EmailVerified {
			t.Errorf("after verify: %+v, %v; want verified", u, err)
		}
		status, body, h = a.call("POST", "/register/verify", "", map[string]any{"ticket": ticket, "code": code})
		wantProblem(t, status, body, h, 400, "invalid-code", "")

		// Resend at once: held back by the resend interval (30 s here).
		_, body, _ = a.call("POST", "/register", "", map[string]any{"email": "later@example.com", "password": "a quiet walrus sings"})
		status, body, h = a.call("POST", "/register/resend", "", map[string]any{"ticket": body["ticket"]})
		wantProblem(t, status, body, h, 429, "too-many-requests", "")
		if secs, err := strconv.Atoi(h.Get("Retry-After")); err != nil || secs < 1 || secs > 30 {
			t.Errorf("Retry-After = %q, want 1..30", h.Get("Retry-After"))
		}

		// Forgotten password: 202 for any address; the link's token resets.
		mails = len(a.mail.Mails())
		for _, email := range []string{"nobody@example.com", "new@example.com"} {
			if status, body, _ := a.call("POST", "/password/forgot", "", map[string]any{"email": email}); status != 202 {
				t.Errorf("forgot(%s) = %d %v", email, status, body)
			}
		}
		if status, body, _ := a.call("POST", "/password/forgot", "", map[string]any{"email": "no at sign"}); status != 202 {
			t.Errorf("forgot(malformed) = %d %v, want 202 like any address", status, body)
		}
		link := notifytest.Link(t, a.nextMail("new@example.com", "", mails).Text)
		u, _ := url.Parse(link)
		token := u.Query().Get("token")
		status, body, h = a.call("POST", "/password/reset", "", map[string]any{"token": token, "new_password": "short"})
		wantProblem(t, status, body, h, 400, "validation", "new_password")
		status, body, h = a.call("POST", "/password/reset", "", map[string]any{"token": "forged-token", "new_password": "a brand new walrus"})
		wantProblem(t, status, body, h, 400, "invalid-link", "")
		if status, body, _ := a.call("POST", "/password/reset", "", map[string]any{"token": token, "new_password": "a brand new walrus"}); status != 204 {
			t.Fatalf("reset = %d %v", status, body)
		}
		status, body, h = a.call("POST", "/password/reset", "", map[string]any{"token": token, "new_password": "another new walrus"})
		wantProblem(t, status, body, h, 400, "invalid-link", "")
	})
}

// Password change, logout and deactivation through the API.
func TestAPIPasswordLogoutAndDelete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		a := newAPIEnv(t, dbURL)
		a.user("bea@example.com")
		access, refresh := a.tokens("bea@example.com", "openid account offline_access")
		_, otherRefresh := a.tokens("bea@example.com", "openid offline_access")
		refreshWith := func(rt string) (int, map[string]any) {
			status, body, _ := a.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, a.id, a.secret)
			return status, body
		}

		status, body, h := a.call("POST", "/account/password", access, map[string]any{"current_password": "wrong password", "new_password": "a brand new walrus"})
		wantProblem(t, status, body, h, 403, "invalid-credentials", "")
		if u, _ := a.srv.store.UserByLogin(t.Context(), "bea@example.com"); u.FailedLogins != 1 {
			t.Errorf("failed logins after a wrong current password = %d, want 1", u.FailedLogins)
		}
		status, body, h = a.call("POST", "/account/password", access, map[string]any{"current_password": testPassword, "new_password": "short"})
		wantProblem(t, status, body, h, 400, "validation", "new_password")
		mails := len(a.mail.Mails())
		if status, body, _ := a.call("POST", "/account/password", access, map[string]any{"current_password": testPassword, "new_password": "a brand new walrus"}); status != 204 {
			t.Fatalf("password change = %d %v", status, body)
		}
		a.nextMail("bea@example.com", "", mails)
		// The caller's grant stays; every other grant is revoked.
		status, body = refreshWith(otherRefresh)
		wantOAuthError(t, status, body, 400, "invalid_grant")
		status, body = refreshWith(refresh)
		if status != 200 {
			t.Fatalf("refresh of the caller's own grant after the change = %d %v", status, body)
		}
		access, refresh = body["access_token"].(string), body["refresh_token"].(string)

		// Logout with a refresh token that is not the caller's.
		a.user("cy@example.com")
		_, cysRefresh := a.tokens("cy@example.com", "openid offline_access")
		status, body, h = a.call("POST", "/account/logout", access, map[string]any{"refresh_token": cysRefresh})
		wantProblem(t, status, body, h, 400, "validation", "refresh_token")
		if status, _ := refreshWith(cysRefresh); status != 200 {
			t.Error("another user's refresh token was revoked")
		}
		// Logout without members ends the presented token's grant.
		if status, body, _ := a.call("POST", "/account/logout", access, map[string]any{}); status != 204 {
			t.Fatalf("logout = %d %v", status, body)
		}
		status, body, h = a.call("GET", "/account", access, nil)
		wantProblem(t, status, body, h, 401, "unauthorized", "")
		status, body = refreshWith(refresh)
		wantOAuthError(t, status, body, 400, "invalid_grant")

		// all: every grant and every browser session.
		const newPassword = "a brand new walrus"
		access, refresh = a.tokensWith("bea@example.com", newPassword, "openid account offline_access")
		_, refresh2 := a.tokensWith("bea@example.com", newPassword, "openid offline_access")
		b := a.browser()
		a.signInWith(b, "bea@example.com", newPassword)
		status, body, h = a.call("POST", "/account/logout", access, map[string]any{"all": true, "refresh_token": refresh})
		wantProblem(t, status, body, h, 400, "validation", "all")
		if status, body, _ := a.call("POST", "/account/logout", access, map[string]any{"all": true}); status != 204 {
			t.Fatalf("logout all = %d %v", status, body)
		}
		for _, rt := range []string{refresh, refresh2} {
			status, body = refreshWith(rt)
			wantOAuthError(t, status, body, 400, "invalid_grant")
		}
		if n, _ := a.srv.store.LoginSessions(t.Context(), a.userID("bea@example.com")); len(n) != 0 {
			t.Errorf("%d browser sessions after logout all, want 0", len(n))
		}

		// Deactivation needs the password.
		access, _ = a.tokensWith("bea@example.com", newPassword, "openid account")
		status, body, h = a.call("DELETE", "/account", access, map[string]any{"password": "wrong password"})
		wantProblem(t, status, body, h, 403, "invalid-credentials", "")
		status, body, h = a.call("DELETE", "/account", access, map[string]any{})
		wantProblem(t, status, body, h, 400, "validation", "password")
		if status, body, _ := a.call("DELETE", "/account", access, map[string]any{"password": newPassword}); status != 204 {
			t.Fatalf("delete = %d %v", status, body)
		}
		status, body, h = a.call("GET", "/account", access, nil)
		wantProblem(t, status, body, h, 401, "unauthorized", "")
		status, body, _ = a.postForm("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"bea@example.com"},
			"password": {newPassword}}, a.id, a.secret)
		wantOAuthError(t, status, body, 400, "invalid_grant")
	})
}

// userID returns the ID of the user with email.
func (a *apiEnv) userID(email string) string {
	a.t.Helper()
	u, err := a.srv.store.UserByLogin(a.t.Context(), email)
	if err != nil {
		a.t.Fatal(err)
	}
	return u.ID
}

// signInWith signs a browser in on the sign-in page (the code step off).
func (a *apiEnv) signInWith(b *http.Client, email, password string) {
	a.t.Helper()
	p := a.get(b, a.issuer+"/login")
	f := p.formWith(a.t, "password")
	f.values.Set("username", email)
	f.values.Set("password", password)
	if p := a.post(b, f); p.status != 200 {
		a.t.Fatalf("sign-in = %d", p.status)
	}
}

// Sessions and applications: one user cannot end another's session.
func TestAPISessionsAndApplications(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		a := newAPIEnv(t, dbURL)
		a.user("dan@example.com")
		a.user("eve@example.com")
		b := a.browser()
		a.signInWith(b, "dan@example.com", testPassword)
		eb := a.browser()
		a.signInWith(eb, "eve@example.com", testPassword)
		access, _ := a.tokens("dan@example.com", "openid account")
		eveAccess, _ := a.tokens("eve@example.com", "openid account")

		status, body, _ := a.call("GET", "/account/sessions", access, nil)
		items, _ := body["items"].([]any)
		if status != 200 || len(items) != 1 {
			t.Fatalf("sessions = %d %v, want one", status, body)
		}
		danSession := items[0].(map[string]any)["id"].(string)
		_, body, _ = a.call("GET", "/account/sessions", eveAccess, nil)
		eveSession := body["items"].([]any)[0].(map[string]any)["id"].(string)

		status, body, h := a.call("DELETE", "/account/sessions/"+eveSession, access, nil)
		wantProblem(t, status, body, h, 404, "not-found", "")
		status, body, h = a.call("DELETE", "/account/sessions/nope", access, nil)
		wantProblem(t, status, body, h, 404, "not-found", "")
		if status, body, _ := a.call("DELETE", "/account/sessions/"+danSession, access, nil); status != 204 {
			t.Fatalf("end own session = %d %v", status, body)
		}
		if _, body, _ := a.call("GET", "/account/sessions", eveAccess, nil); len(body["items"].([]any)) != 1 {
			t.Error("eve's session ended with dan's")
		}

		// Applications: a consent given on the pages is listed and revoked.
		web, webSecret := a.client(provider.ClientSpec{ID: "webapp"})
		conf := a.oauth2Config(web, webSecret)
		tok, _ := a.login(conf, a.browser(), "dan@example.com")
		status, body, _ = a.call("GET", "/account/applications", access, nil)
		apps, _ := body["items"].([]any)
		if status != 200 || len(apps) != 1 || apps[0].(map[string]any)["client_id"] != web {
			t.Fatalf("applications = %d %v", status, body)
		}
		status, body, h = a.call("DELETE", "/account/applications/other", access, nil)
		wantProblem(t, status, body, h, 404, "not-found", "")
		if status, body, _ := a.call("DELETE", "/account/applications/"+web, access, nil); status != 204 {
			t.Fatalf("revoke application = %d %v", status, body)
		}
		if in := a.introspect(tok.AccessToken, web, webSecret); in["active"] != false {
			t.Errorf("the application's token after its revocation: %v", in)
		}
	})
}

// The public routes have the pages' per-IP limits: failures (a wrong code)
// past the budget, and requests past the rate, get 429 with Retry-After.
func TestAPIPerIPLimits(t *testing.T) {
	e := newMailEnv(t, backends[0].url(t), "off", func(c *Config, _ *serverOptions) {
		c.IPFailureLimit = RateLimit{2, time.Hour}
		c.IPRateLimit = RateLimit{8, time.Hour}
	})
	a := &apiEnv{env: e}
	status, body, _ := a.call("POST", "/register", "", map[string]any{"email": "fay@example.com", "password": "a quiet walrus sings"})
	if status != 202 {
		t.Fatalf("register = %d %v", status, body)
	}
	ticket := body["ticket"]
	for range 2 {
		status, body, h := a.call("POST", "/register/verify", "", map[string]any{"ticket": ticket, "code": "000000"})
		wantProblem(t, status, body, h, 400, "invalid-code", "")
	}
	status, body, h := a.call("POST", "/register/verify", "", map[string]any{"ticket": ticket, "code": "000000"})
	wantProblem(t, status, body, h, 429, "too-many-requests", "")
	if h.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// The request budget: 8 in all, 4 spent so far.
	for range 4 {
		a.call("POST", "/password/forgot", "", map[string]any{"email": "fay@example.com"})
	}
	status, body, h = a.call("POST", "/password/forgot", "", map[string]any{"email": "fay@example.com"})
	wantProblem(t, status, body, h, 429, "too-many-requests", "")
}

// pngOf returns a w×h PNG.
func pngOf(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The picture (raw or multipart, checked as on the page) and a phone
// number that counts only once the texted code is right.
func TestAPIPictureAndPhone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		gw := notifytest.NewSMSServer(t)
		e := newMailEnv(t, dbURL, "off", func(c *Config, _ *serverOptions) { c.SMSURL = Secret(gw.URL()) })
		a := &apiEnv{env: e}
		a.id, a.secret = e.client(provider.ClientSpec{ID: "spa", GrantTypes: []string{"password"}, Scopes: []string{"openid", "account"}})
		a.user("gus@example.com")
		access, _ := a.tokens("gus@example.com", "openid account")
		put := func(ctype string, body []byte) (int, map[string]any, http.Header) {
			req, _ := http.NewRequest("PUT", a.issuer+api.PicturePath, bytes.NewReader(body))
			req.Header.Set("Content-Type", ctype)
			req.Header.Set("Authorization", "Bearer "+access)
			return a.do(req)
		}

		status, body, _ := put("image/png", pngOf(t, 32, 32))
		pic, _ := body["picture"].(string)
		if status != 200 || !strings.HasSuffix(pic, "/avatars/"+body["id"].(string)) {
			t.Fatalf("PUT picture = %d %v", status, body)
		}
		if status, _, h := a.do(mustReq("GET", pic)); status != 200 || h.Get("Content-Type") != "image/png" {
			t.Errorf("GET %s = %d %s", pic, status, h.Get("Content-Type"))
		}
		// Multipart, field "file".
		var mp bytes.Buffer
		w := multipart.NewWriter(&mp)
		fw, _ := w.CreateFormFile("file", "me.png")
		fw.Write(pngOf(t, 16, 16))
		w.Close()
		if status, body, _ := put(w.FormDataContentType(), mp.Bytes()); status != 200 {
			t.Errorf("PUT multipart picture = %d %v", status, body)
		}
		for _, tc := range []struct {
			name, ctype string
			body        []byte
			status      int
			kind, field string
		}{
			{"HTML posing as PNG", "image/png", []byte("<html><script>alert(1)</script></html>"), 400, "validation", "file"},
			{"a GIF", "image/gif", []byte("GIF89a"), 415, "unsupported-media-type", ""},
			{"no content type", "", pngOf(t, 8, 8), 415, "unsupported-media-type", ""},
			{"over 1 MiB", "image/png", bytes.Repeat([]byte{0}, 2<<20), 413, "too-large", ""},
			{"5000 pixels wide", "image/png", pngOf(t, 5000, 1), 400, "validation", "file"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, body, h := put(tc.ctype, tc.body)
				wantProblem(t, status, body, h, tc.status, tc.kind, tc.field)
			})
		}
		if status, body, _ := a.call("DELETE", "/account/picture", access, nil); status != 204 {
			t.Fatalf("DELETE picture = %d %v", status, body)
		}
		if _, body, _ := a.call("GET", "/account", access, nil); body["picture"] != nil {
			t.Errorf("picture after DELETE = %v", body["picture"])
		}

		// Phone.
		status, body, h := a.call("POST", "/account/phone", access, map[string]any{"phone_number": "12345"})
		wantProblem(t, status, body, h, 400, "validation", "phone_number")
		status, body, _ = a.call("POST", "/account/phone", access, map[string]any{"phone_number": "+15550107777"})
		if status != 202 || !strings.HasSuffix(body["destination"].(string), "77") || strings.Contains(body["destination"].(string), "0107") {
			t.Fatalf("POST phone = %d %v", status, body)
		}
		code := notifytest.Code(t, gw.WaitFor(t, "+15550107777").Body)
		if _, body, _ := a.call("GET", "/account", access, nil); body["phone_number"] != nil {
			t.Errorf("phone before verification = %v, want none", body["phone_number"])
		}
		status, body, h = a.call("POST", "/account/phone/verify", access, map[string]any{"code": wrongCode(code)})
		wantProblem(t, status, body, h, 400, "invalid-code", "")
		status, body, _ = a.call("POST", "/account/phone/verify", access, map[string]any{"code": code})
		if status != 200 || body["phone_number"] != "+15550107777" || body["phone_number_verified"] != true {
			t.Fatalf("verify phone = %d %v", status, body)
		}
	})
}

// A new email address counts only once its code is entered; a taken one
// gets the same answer, no code, and its owner is told.
func TestAPIEmailChange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		a := newAPIEnv(t, dbURL, noResendInterval)
		a.user("hal@example.com")
		a.user("ida@example.com")
		access, _ := a.tokens("hal@example.com", "openid account")

		status, body, h := a.call("POST", "/account/email", access, map[string]any{"email": "not an address"})
		wantProblem(t, status, body, h, 400, "validation", "email")
		status, body, h = a.call("POST", "/account/email", access, map[string]any{"email": "HAL@example.com"})
		wantProblem(t, status, body, h, 400, "validation", "email")
		status, body, h = a.call("POST", "/account/email/verify", access, map[string]any{"code": "123456"})
		wantProblem(t, status, body, h, 400, "invalid-code", "")

		// A taken address: 202 as for a free one; the owner is told, and
		// no code can verify it.
		mails := len(a.mail.Mails())
		status, taken, _ := a.call("POST", "/account/email", access, map[string]any{"email": "Ida@Example.com"})
		if status != 202 || taken["destination"] == "" {
			t.Fatalf("change to a taken address = %d %v, want 202", status, taken)
		}
		a.nextMail("ida@example.com", "tried to use your address", mails)
		for _, code := range []string{"000000", "123456"} {
			status, body, h := a.call("POST", "/account/email/verify", access, map[string]any{"code": code})
			wantProblem(t, status, body, h, 400, "invalid-code", "")
		}

		// A free address: the code makes it the account's.
		mails = len(a.mail.Mails())
		status, body, _ = a.call("POST", "/account/email", access, map[string]any{"email": "hal.new@example.com"})
		if status != 202 || len(body) != 2 {
			t.Fatalf("change = %d %v", status, body)
		}
		code := notifytest.Code(t, a.nextMail("hal.new@example.com", "Confirm your new email", mails).Text)
		if _, body, _ := a.call("GET", "/account", access, nil); body["email"] != "hal@example.com" {
			t.Errorf("email before verification = %v, want the old one", body["email"])
		}
		status, body, h = a.call("POST", "/account/email/verify", access, map[string]any{"code": wrongCode(code)})
		wantProblem(t, status, body, h, 400, "invalid-code", "")
		status, body, _ = a.call("POST", "/account/email/verify", access, map[string]any{"code": code})
		if status != 200 || body["email"] != "hal.new@example.com" || body["email_verified"] != true {
			t.Fatalf("verify = %d %v", status, body)
		}
		a.nextMail("hal@example.com", "email address was changed", mails)
		// The new address signs in; the old one no longer does.
		a.tokensWith("hal.new@example.com", testPassword, "openid")
		status, body, _ = a.postForm("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"hal@example.com"},
			"password": {testPassword}}, a.id, a.secret)
		wantOAuthError(t, status, body, 400, "invalid_grant")
	})
}

// noResendInterval lets a new code go at once after the last (the send
// caps still hold).
func noResendInterval(c *Config, _ *serverOptions) { c.OTPResendInterval = 0 }

// A resent verification gives a new ticket and code; the old ones die.
func TestAPIRegistrationResend(t *testing.T) {
	a := newAPIEnv(t, backends[0].url(t), noResendInterval)
	_, body, _ := a.call("POST", "/register", "", map[string]any{"email": "kai@example.com", "password": "a quiet walrus sings"})
	oldTicket := body["ticket"]
	oldCode := notifytest.Code(t, a.nextMail("kai@example.com", "", 0).Text)
	mails := len(a.mail.Mails())
	status, body, _ := a.call("POST", "/register/resend", "", map[string]any{"ticket": oldTicket})
	newTicket, _ := body["ticket"].(string)
	if status != 202 || newTicket == "" || newTicket == oldTicket {
		t.Fatalf("resend = %d %v, want 202 with a new ticket", status, body)
	}
	newCode := notifytest.Code(t, a.nextMail("kai@example.com", "", mails).Text)
	status, body, h := a.call("POST", "/register/verify", "", map[string]any{"ticket": oldTicket, "code": oldCode})
	wantProblem(t, status, body, h, 400, "invalid-code", "")
	if status, body, _ := a.call("POST", "/register/verify", "", map[string]any{"ticket": newTicket, "code": newCode}); status != 200 {
		t.Fatalf("verify with the resent code = %d %v", status, body)
	}
}
