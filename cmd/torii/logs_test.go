package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/torii-idp/torii/login/notify/notifytest"
	"github.com/torii-idp/torii/provider"
)

// TestNoSecretsInLogsFullFlow runs every flow of the pages with real mail
// delivery (SMTP, not development mode) and the code step on, at debug
// level: registration, verification by code and by link, sign-in with the
// password and a mailed code (after a resend), consent, tokens, a password
// reset by link. Then no password, code, link token, cookie, CSRF token,
// authorization code, token or client secret appears in the logs
// (SECURITY 61).
func TestNoSecretsInLogsFullFlow(t *testing.T) {
	e := newMailEnv(t, backends[0].url(t), "always", func(c *Config, _ *serverOptions) { c.OTPResendInterval = 0 })
	id, secret := e.client(provider.ClientSpec{ID: "webapp", Name: "Web App"})
	conf := e.oauth2Config(id, secret)
	secrets := map[string]string{"client secret": secret}
	issuerURL, _ := url.Parse(e.issuer)
	keepCookies := func(name string, b *http.Client) {
		for _, c := range b.Jar.Cookies(issuerURL) {
			secrets[name+" cookie "+c.Name+"="+c.Value[:4]] = c.Value
		}
	}
	mailsSeen := 0
	mailed := func(name, to, subject string) notifytest.Mail {
		t.Helper()
		m := e.nextMail(to, subject, mailsSeen)
		mailsSeen = len(e.mail.Mails())
		for i, c := range regexp.MustCompile(`\b\d{6}\b`).FindAllString(m.Text, -1) {
			secrets[name+" code "+string(rune('a'+i))] = c
		}
		for _, l := range regexp.MustCompile(`https?://\S+`).FindAllString(m.Text, -1) {
			if u, err := url.Parse(l); err == nil && u.Query().Get("token") != "" {
				secrets[name+" link token"] = u.Query().Get("token")
			}
		}
		return m
	}
	// submit fills and posts the form of p with the input field, or, for a
	// field starting with "/", the form posting there.
	submit := func(b *http.Client, p *page, field string, values map[string]string) *page {
		t.Helper()
		var f form
		if strings.HasPrefix(field, "/") {
			for _, ff := range p.forms(t) {
				if strings.HasSuffix(ff.action, field) {
					f = ff
				}
			}
			if f.values == nil {
				t.Fatalf("no form posting to %s on %s:\n%s", field, p.url, p.body)
			}
		} else {
			f = p.formWith(t, field)
		}
		for k, v := range values {
			f.values.Set(k, v)
		}
		secrets["CSRF form token "+f.values.Get("csrf")[:4]] = f.values.Get("csrf")
		return e.post(b, f)
	}

	// Register; verify by code.
	const norasPassword, norasNewPassword, omarsPassword = "nora has a long passphrase", "nora picked another passphrase", "omar's passphrase is long"
	secrets["password"], secrets["new password"], secrets["second user's password"] = norasPassword, norasNewPassword, omarsPassword
	b := e.browser()
	p := submit(b, e.get(b, e.issuer+"/register"), "password2", map[string]string{
		"email": "nora@example.com", "name": "Nora", "password": norasPassword, "password2": norasPassword})
	if !strings.HasSuffix(p.url.Path, "/verify") {
		t.Fatalf("after registering: %d %s", p.status, p.url)
	}
	m := mailed("registration", "nora@example.com", "Confirm")
	keepCookies("registration", b)
	if p = submit(b, p, "code", map[string]string{"code": notifytest.Code(t, m.Text)}); !strings.HasSuffix(p.url.Path, "/login") {
		t.Fatalf("after the verification code: %d %s", p.status, p.url)
	}

	// Register another account; verify by link.
	b2 := e.browser()
	submit(b2, e.get(b2, e.issuer+"/register"), "password2", map[string]string{
		"email": "omar@example.com", "password": omarsPassword, "password2": omarsPassword})
	m = mailed("second registration", "omar@example.com", "Confirm")
	if p := e.get(b2, notifytest.Link(t, m.Text)); p.status != http.StatusOK || !strings.Contains(p.body, "confirmed") {
		t.Fatalf("verification link = %d", p.status)
	}
	keepCookies("second registration", b2)

	// Sign in through the relying party: password, resend, code, consent.
	signIn := func(password string) *oauth2.Token {
		t.Helper()
		f := newCodeFlow(conf)
		p := e.get(b, f.authURL())
		p = submit(b, p, "password", map[string]string{"username": "nora@example.com", "password": password})
		mailed("sign-in", "nora@example.com", "sign-in code")
		p = submit(b, p, "/login/code/resend", map[string]string{"channel": "email"})
		m := mailed("resent sign-in", "nora@example.com", "sign-in code")
		p = submit(b, p, "code", map[string]string{"code": notifytest.Code(t, m.Text)})
		if strings.HasSuffix(p.url.Path, provider.ConsentPath) {
			keepCookies("consent", b)
			p = e.consent(b, p, "allow")
		}
		q := e.callback(p)
		secrets["authorization code "+q.Get("code")[:12]] = q.Get("code")
		tok, err := conf.Exchange(e.ctx(), q.Get("code"), oauth2.VerifierOption(f.verifier))
		if err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		secrets["PKCE verifier "+f.verifier[:4]] = f.verifier
		keepCookies("signed-in", b)
		return tok
	}
	tok := signIn(norasPassword)
	tok2, err := conf.TokenSource(e.ctx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	e.introspect(tok2.AccessToken, id, secret)
	for name, tk := range map[string]*oauth2.Token{"first": tok, "refreshed": tok2} {
		secrets[name+" access token"] = tk.AccessToken
		secrets[name+" refresh token"] = tk.RefreshToken
		secrets[name+" ID token"], _ = tk.Extra("id_token").(string)
	}

	// Forgot the password: reset by link, then sign in with the new one.
	anon := e.browser()
	submit(anon, e.get(anon, e.issuer+"/forgot"), "email", map[string]string{"email": "nora@example.com"})
	m = mailed("reset", "nora@example.com", "new password")
	p = e.get(anon, notifytest.Link(t, m.Text))
	if p = submit(anon, p, "password2", map[string]string{"password": norasNewPassword, "password2": norasNewPassword}); !strings.HasSuffix(p.url.Path, "/login") {
		t.Fatalf("after the reset: %d %s", p.status, p.url)
	}
	keepCookies("reset", anon)
	tok3 := signIn(norasNewPassword)
	secrets["last access token"], secrets["last refresh token"] = tok3.AccessToken, tok3.RefreshToken

	logs := e.logs.String()
	for _, want := range []string{"login: signed in", "http request"} {
		if !strings.Contains(logs, want) {
			t.Fatalf("the logs lack %q: nothing was captured?", want)
		}
	}
	if strings.Contains(logs, "DEVELOPMENT MODE") {
		t.Error("mail went to the log (development mode), not to the SMTP server")
	}
	for name, s := range secrets {
		if s == "" {
			t.Errorf("the %s was not captured", name)
			continue
		}
		if regexp.MustCompile(`(^|[^0-9A-Za-z_-])` + regexp.QuoteMeta(s) + `($|[^0-9A-Za-z_-])`).MatchString(logs) {
			t.Errorf("the logs contain the %s", name)
		}
	}
	if len(secrets) < 25 {
		t.Errorf("only %d secrets checked: the flow did not run in full", len(secrets))
	}
}
