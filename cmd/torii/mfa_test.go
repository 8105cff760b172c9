package main

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/login/notify/notifytest"
	"github.com/torii-idp/torii/provider"
)

// mfaEnv is Torii with mail and SMS delivery, a first-party client allowed
// the password grant, and a user with a verified phone.
type mfaEnv struct {
	*env
	sms          *notifytest.SMSServer
	id, secret   string
	sub, email   string
	phone        string
	mailsSoFar   int
	smsSoFar     int
	passwordForm url.Values
}

func newMFAEnv(t *testing.T, dbURL, otp string) *mfaEnv {
	gw := notifytest.NewSMSServer(t)
	e := newMailEnv(t, dbURL, otp, func(c *Config, _ *serverOptions) {
		c.SMSURL = Secret(gw.URL())
		c.OTPResendInterval = 30 * time.Second
	})
	m := &mfaEnv{env: e, sms: gw, email: "mia@example.com", phone: "+15550104242"}
	u, err := e.srv.accounts.Create(context.Background(), account.NewUser{
		Email: m.email, Password: testPassword, Phone: m.phone, EmailVerified: true, PhoneVerified: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	m.sub = u.ID
	m.id, m.secret = e.client(provider.ClientSpec{ID: "first-party", GrantTypes: []string{"password", "refresh_token"}})
	m.passwordForm = url.Values{"grant_type": {"password"}, "username": {m.email}, "password": {testPassword},
		"scope": {"openid email offline_access"}}
	return m
}

// password runs the first step and returns the answer.
func (m *mfaEnv) password(extra url.Values) (int, map[string]any, http.Header) {
	m.t.Helper()
	form := url.Values{}
	for k, v := range m.passwordForm {
		form[k] = v
	}
	for k, v := range extra {
		form[k] = v
	}
	return m.postForm("/oauth2/token", form, m.id, m.secret)
}

// mfaToken runs the first step, asserts mfa_required, and returns the
// token and the code mailed for it.
func (m *mfaEnv) mfaToken(t *testing.T) (token, code string) {
	t.Helper()
	status, body, h := m.password(nil)
	if status != http.StatusForbidden || body["error"] != "mfa_required" {
		t.Fatalf("password step = %d %v, want 403 mfa_required", status, body)
	}
	if h.Get("Cache-Control") != "no-store" {
		t.Errorf("mfa_required Cache-Control = %q, want no-store", h.Get("Cache-Control"))
	}
	token, _ = body["mfa_token"].(string)
	if len(token) < 40 || body["expires_in"] != float64(600) || body["error_description"] == "" {
		t.Fatalf("mfa_required body = %v", body)
	}
	mail := m.nextMail(m.email, "sign-in code", m.mailsSoFar)
	m.mailsSoFar = len(m.mail.Mails())
	return token, notifytest.Code(t, mail.Text)
}

func (m *mfaEnv) redeem(token, code string, id, secret string) (int, map[string]any) {
	m.t.Helper()
	status, body, _ := m.postForm("/oauth2/token", url.Values{"grant_type": {provider.GrantTypeMFAOTP}, "mfa_token": {token}, "otp": {code}}, id, secret)
	return status, body
}

func wrongCode(code string) string {
	n, _ := strconv.Atoi(code)
	return strconv.Itoa(100000 + (n+1)%900000)
}

// The password grant with the code step, end to end, with a real relying
// party's libraries (x/oauth2 for the refresh, go-oidc for the ID token).
func TestPasswordGrantCodeStep(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		m := newMFAEnv(t, dbURL, "always")
		status, body, _ := m.password(nil)
		if status != http.StatusForbidden || body["error"] != "mfa_required" {
			t.Fatalf("password step = %d %v, want 403 mfa_required", status, body)
		}
		if ch, _ := body["channels"].([]any); len(ch) != 2 || ch[0] != "email" || ch[1] != "sms" {
			t.Errorf("channels = %v, want [email sms]", body["channels"])
		}
		if body["access_token"] != nil {
			t.Fatal("tokens before the code")
		}
		token := body["mfa_token"].(string)
		code := notifytest.Code(t, m.nextMail(m.email, "sign-in code", 0).Text)
		m.mailsSoFar = len(m.mail.Mails())

		// A wrong code: invalid_grant, and the token still works.
		status, body = m.redeem(token, wrongCode(code), m.id, m.secret)
		wantOAuthError(t, status, body, 400, "invalid_grant")
		status, body = m.redeem(token, code, m.id, m.secret)
		if status != 200 || body["access_token"] == nil || body["refresh_token"] == nil || body["id_token"] == nil {
			t.Fatalf("mfa-otp grant = %d %v, want tokens", status, body)
		}
		// The ID token says how the user signed in.
		verifier := m.oidcProvider().Verifier(&oidc.Config{ClientID: m.id})
		idt, err := verifier.Verify(m.ctx(), body["id_token"].(string))
		if err != nil {
			t.Fatalf("ID token: %v", err)
		}
		var claims struct {
			AMR []string `json:"amr"`
			ACR string   `json:"acr"`
			Sub string   `json:"sub"`
		}
		if err := idt.Claims(&claims); err != nil || strings.Join(claims.AMR, " ") != "pwd otp" || claims.ACR != "mfa" || claims.Sub != m.sub {
			t.Errorf("ID token claims = %+v, %v; want amr [pwd otp], acr mfa, sub %s", claims, err, m.sub)
		}
		if in := m.introspect(body["access_token"].(string), m.id, m.secret); in["active"] != true || in["sub"] != m.sub {
			t.Errorf("introspection = %v", in)
		}
		// The refresh token works like any other.
		conf := m.oauth2Config(m.id, m.secret)
		if _, err := conf.TokenSource(m.ctx(), &oauth2.Token{RefreshToken: body["refresh_token"].(string)}).Token(); err != nil {
			t.Errorf("refresh: %v", err)
		}
		// Single use.
		status, body = m.redeem(token, code, m.id, m.secret)
		wantOAuthError(t, status, body, 400, "invalid_grant")

		// Neither the mfa_token nor the password is ever logged (SECURITY 61).
		for name, secret := range map[string]string{"mfa token": token, "password": testPassword} {
			if strings.Contains(m.logs.String(), secret) {
				t.Errorf("the logs contain the %s", name)
			}
		}

		// Discovery lists the grant.
		_, doc, _ := m.do(mustReq("GET", m.issuer+"/.well-known/openid-configuration"))
		if gts, _ := doc["grant_types_supported"].([]any); !containsAny(gts, provider.GrantTypeMFAOTP) {
			t.Errorf("grant_types_supported = %v, want %s listed", doc["grant_types_supported"], provider.GrantTypeMFAOTP)
		}
	})
}

func containsAny(list []any, want string) bool {
	for _, v := range list {
		if v == want {
			return true
		}
	}
	return false
}

// acr_values=mfa asks for the code step with TORII_OTP=off; without it the
// password grant issues tokens at once.
func TestPasswordGrantCodeStepAskedFor(t *testing.T) {
	m := newMFAEnv(t, backends[0].url(t), "off")
	if status, body, _ := m.password(nil); status != 200 || body["access_token"] == nil {
		t.Fatalf("password grant, code step off = %d %v, want tokens", status, body)
	}
	m.passwordForm.Set("acr_values", "mfa")
	token, code := m.mfaToken(t)
	if status, body := m.redeem(token, code, m.id, m.secret); status != 200 || body["access_token"] == nil {
		t.Fatalf("mfa-otp grant = %d %v, want tokens", status, body)
	}
}

// Every way an mfa_token or code can be wrong: the exact status and error.
func TestMFATokenRules(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		m := newMFAEnv(t, dbURL, "always")
		other, otherSecret := m.client(provider.ClientSpec{ID: "other-first-party", GrantTypes: []string{"password"}})
		webapp, webappSecret := m.client(provider.ClientSpec{ID: "webapp"})
		token, code := m.mfaToken(t)

		tests := []struct {
			name       string
			form       url.Values
			id, secret string
			status     int
			errorCode  string
		}{
			{"another client's token", url.Values{"mfa_token": {token}, "otp": {code}}, other, otherSecret, 400, "invalid_grant"},
			{"a client without the password grant", url.Values{"mfa_token": {token}, "otp": {code}}, webapp, webappSecret, 400, "unauthorized_client"},
			{"wrong secret", url.Values{"mfa_token": {token}, "otp": {code}}, m.id, "wrong-secret", 401, "invalid_client"},
			{"unknown token", url.Values{"mfa_token": {"torii_mfa_" + strings.Repeat("A", 43)}, "otp": {code}}, m.id, m.secret, 400, "invalid_grant"},
			{"garbage token", url.Values{"mfa_token": {"' OR 1=1--"}, "otp": {code}}, m.id, m.secret, 400, "invalid_grant"},
			{"no token", url.Values{"otp": {code}}, m.id, m.secret, 400, "invalid_request"},
			{"no code", url.Values{"mfa_token": {token}}, m.id, m.secret, 400, "invalid_request"},
			{"repeated code", url.Values{"mfa_token": {token}, "otp": {code, code}}, m.id, m.secret, 400, "invalid_request"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				form := url.Values{"grant_type": {provider.GrantTypeMFAOTP}}
				for k, v := range tc.form {
					form[k] = v
				}
				status, body, _ := m.postForm("/oauth2/token", form, tc.id, tc.secret)
				wantOAuthError(t, status, body, tc.status, tc.errorCode)
			})
		}
		// The code in the URL is refused.
		req, _ := http.NewRequest("POST", m.issuer+"/oauth2/token?otp="+code, strings.NewReader(url.Values{
			"grant_type": {provider.GrantTypeMFAOTP}, "mfa_token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(m.id, m.secret)
		status, body, _ := m.do(req)
		wantOAuthError(t, status, body, 400, "invalid_request")
		// None of that used the token up: the right code still works.
		if status, body := m.redeem(token, code, m.id, m.secret); status != 200 {
			t.Fatalf("right code after the refused requests = %d %v", status, body)
		}

		// Five wrong codes kill the code, and the token dies with it.
		token, code = m.mfaToken(t)
		for range 5 {
			status, body := m.redeem(token, wrongCode(code), m.id, m.secret)
			wantOAuthError(t, status, body, 400, "invalid_grant")
		}
		if status, body := m.redeem(token, code, m.id, m.secret); status != 400 || body["error"] != "invalid_grant" {
			t.Errorf("right code after five wrong ones = %d %v, want invalid_grant", status, body)
		}
		status, body, _ = m.postForm(provider.MFAChallengePath, url.Values{"mfa_token": {token}, "channel": {"email"}}, m.id, m.secret)
		wantOAuthError(t, status, body, 400, "invalid_grant")

		// A token lives at most TORII_OTP_TTL.
		token, code = m.mfaToken(t)
		if _, err := m.srv.store.DB().NewUpdate().TableExpr("mfa_challenges").Set("expires_at = ?", time.Now().Add(-time.Second).UTC()).
			Where("used_at IS NULL").Exec(t.Context()); err != nil {
			t.Fatal(err)
		}
		status, body = m.redeem(token, code, m.id, m.secret)
		wantOAuthError(t, status, body, 400, "invalid_grant")

		// Two redemptions racing with the right code: one wins.
		token, code = m.mfaToken(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 20 {
			wg.Go(func() {
				if status, _ := m.redeem(token, code, m.id, m.secret); status == 200 {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d of 20 parallel redemptions succeeded, want 1", wins)
		}

		// Wrong password, unknown user: invalid_grant as before, no code.
		mails := len(m.mail.Mails())
		status, body, _ = m.password(url.Values{"password": {"wrong password"}})
		wantOAuthError(t, status, body, 400, "invalid_grant")
		status, body, _ = m.password(url.Values{"username": {"nobody@example.com"}})
		wantOAuthError(t, status, body, 400, "invalid_grant")
		time.Sleep(100 * time.Millisecond)
		if n := len(m.mail.Mails()); n != mails {
			t.Errorf("%d mails sent for failed passwords, want none", n-mails)
		}
	})
}

// POST /oauth2/mfa/challenge: another code, by mail or SMS, with the page's
// resend rules: the first code on a channel goes at once, another on the
// same channel waits (429 + Retry-After).
func TestMFAChallengeEndpoint(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		m := newMFAEnv(t, dbURL, "always")
		token, mailed := m.mfaToken(t)
		challenge := func(form url.Values, id, secret string) (int, map[string]any, http.Header) {
			return m.postForm(provider.MFAChallengePath, form, id, secret)
		}
		// SMS: the first code on that channel goes at once.
		status, body, _ := challenge(url.Values{"mfa_token": {token}, "channel": {"sms"}}, m.id, m.secret)
		if status != 200 || body["channel"] != "sms" || !strings.HasSuffix(body["destination"].(string), "42") || strings.Contains(body["destination"].(string), "0104") {
			t.Fatalf("challenge by SMS = %d %v, want 200 with a masked number", status, body)
		}
		sms := m.sms.WaitFor(t, m.phone)
		code := notifytest.Code(t, sms.Body)
		// Again on the same channel: held back by the resend interval.
		status, body, h := challenge(url.Values{"mfa_token": {token}, "channel": {"sms"}}, m.id, m.secret)
		wantOAuthError(t, status, body, 429, "invalid_request")
		if secs, err := strconv.Atoi(h.Get("Retry-After")); err != nil || secs < 1 || secs > 30 {
			t.Errorf("Retry-After = %q, want 1..30", h.Get("Retry-After"))
		}
		tests := []struct {
			name       string
			form       url.Values
			id, secret string
			status     int
			errorCode  string
		}{
			{"bad channel", url.Values{"mfa_token": {token}, "channel": {"pigeon"}}, m.id, m.secret, 400, "invalid_request"},
			{"no channel", url.Values{"mfa_token": {token}}, m.id, m.secret, 400, "invalid_request"},
			{"unknown token", url.Values{"mfa_token": {"torii_mfa_nope"}, "channel": {"email"}}, m.id, m.secret, 400, "invalid_grant"},
			{"no client authentication", url.Values{"mfa_token": {token}, "channel": {"email"}}, "", "", 401, "invalid_client"},
			{"wrong secret", url.Values{"mfa_token": {token}, "channel": {"email"}}, m.id, "wrong", 401, "invalid_client"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				status, body, _ := challenge(tc.form, tc.id, tc.secret)
				wantOAuthError(t, status, body, tc.status, tc.errorCode)
			})
		}
		// The SMS code replaced the mailed one, which no longer works.
		if mailed != code {
			status, body := m.redeem(token, mailed, m.id, m.secret)
			wantOAuthError(t, status, body, 400, "invalid_grant")
		}
		if status, body := m.redeem(token, code, m.id, m.secret); status != 200 {
			t.Fatalf("SMS code = %d %v", status, body)
		}

		// A user without a verified phone: channels [email], SMS refused.
		m.user("noah@example.com")
		status, body, _ = m.postForm("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"noah@example.com"},
			"password": {testPassword}}, m.id, m.secret)
		if ch, _ := body["channels"].([]any); status != 403 || len(ch) != 1 || ch[0] != "email" {
			t.Fatalf("password step for a user without phone = %d %v, want channels [email]", status, body)
		}
		status, body, _ = challenge(url.Values{"mfa_token": {body["mfa_token"].(string)}, "channel": {"sms"}}, m.id, m.secret)
		wantOAuthError(t, status, body, 400, "invalid_request")
	})
}

// Ten wrong codes over two password-grant sign-ins lock the code step as
// on the page: the next right password gets invalid_grant and no code.
func TestMFACodeLockout(t *testing.T) {
	m := newMFAEnv(t, backends[0].url(t), "always")
	for range 2 {
		token, code := m.mfaToken(t)
		for range 5 {
			status, body := m.redeem(token, wrongCode(code), m.id, m.secret)
			wantOAuthError(t, status, body, 400, "invalid_grant")
		}
	}
	mails := len(m.mail.Mails())
	status, body, _ := m.password(nil)
	wantOAuthError(t, status, body, 400, "invalid_grant")
	time.Sleep(100 * time.Millisecond)
	if n := len(m.mail.Mails()); n != mails {
		t.Errorf("%d codes sent while the code step is locked, want none", n-mails)
	}
	u, err := m.srv.store.User(t.Context(), m.sub)
	if err != nil || !u.OTPLockedUntil.Valid || u.FailedOTPs != 10 {
		t.Errorf("after ten wrong codes: %+v, %v; want the code step locked", u, err)
	}
}
