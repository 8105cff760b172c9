package main

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/torii-idp/torii/login/federation/fedtest"
	"github.com/torii-idp/torii/login/notify/notifytest"
)

// "Continue with GitHub" in Chromium against the fake GitHub: a new
// account, the mailed code (TORII_OTP=always), consent, and an ID token
// with amr fed otp; then the account page lists GitHub. Screenshots of
// every page.
func TestBrowserContinueWithGitHub(t *testing.T) {
	fakes, _, opt := fedFakes(t)
	b := newBrowserEnv(t, opt)
	gh := fakes[fedtest.GitHub]
	gh.User.Name = "Mona Lisa Octocat"
	gh.User.Emails = []fedtest.Email{{Email: "mona@example.com", Primary: true, Verified: true}}
	b.startSignIn()
	b.shot("login-with-providers")
	b.click(`form[action="/login/federated/github"] button[type="submit"]`)
	b.expectPage("Enter your code")
	b.shot("code-after-github")
	mail := b.smtp.WaitFor(t, "mona@example.com", "sign-in code")
	b.fill(map[string]string{"code": notifytest.Code(t, mail.Text)})
	b.click(`form[action="/login/code"] button[type="submit"]`)
	b.expectPage("Allow Example Notes")
	b.shot("consent")
	b.click(`button[value="allow"]`)
	b.expectWelcome("mona@example.com", "fed otp")
	if gh.Redeemed() != 1 {
		t.Errorf("%d codes redeemed at GitHub, want 1", gh.Redeemed())
	}
	b.run(chromedp.Navigate(b.issuer + "/account"))
	b.expectPage("Your account")
	var linked bool
	b.eval(`!!document.querySelector('#identities') && document.querySelector('#identities').textContent.includes("GitHub")`, &linked)
	if !linked {
		t.Error("the account page does not list GitHub")
	}
	b.shot("account-identities")
}

// A cancelled GitHub sign-in ends on a page with a way back.
func TestBrowserContinueWithGitHubCancelled(t *testing.T) {
	fakes, _, opt := fedFakes(t)
	b := newBrowserEnv(t, opt)
	fakes[fedtest.GitHub].AuthorizeError = "access_denied"
	b.startSignIn()
	b.click(`form[action="/login/federated/github"] button[type="submit"]`)
	b.expectPage("Sign-in cancelled")
	b.shot("cancelled")
	b.click(`a.button`)
	b.expectPage("Sign in")
}
