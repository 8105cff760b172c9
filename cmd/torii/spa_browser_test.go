package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/torii-idp/torii/provider"
)

// spaPage is a single-page application's page: its script does the whole
// authorization-code flow with PKCE from the browser (no server of its
// own), then calls userinfo and the account API with the access token.
const spaPage = `<!DOCTYPE html><html><head><title>SPA</title></head><body><h1>Loading</h1><script>
const issuer = %q, clientID = %q, redirect = location.origin + "/callback";
const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const rand = () => b64(crypto.getRandomValues(new Uint8Array(32)));
const show = (h, p) => { document.body.innerHTML = "<h1></h1><p id=detail></p>"; document.querySelector("h1").textContent = h; document.getElementById("detail").textContent = p || ""; };
(async () => {
  if (location.pathname === "/") {
    const verifier = rand(), state = rand();
    sessionStorage.setItem("verifier", verifier); sessionStorage.setItem("state", state);
    const challenge = b64(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    const q = new URLSearchParams({response_type: "code", client_id: clientID, redirect_uri: redirect,
      scope: "openid email account", state, nonce: rand(), code_challenge: challenge, code_challenge_method: "S256"});
    location.assign(issuer + "/oauth2/auth?" + q);
    return;
  }
  const q = new URLSearchParams(location.search);
  if (q.get("state") !== sessionStorage.getItem("state")) return show("SPA error", "state");
  const tr = await fetch(issuer + "/oauth2/token", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
    body: new URLSearchParams({grant_type: "authorization_code", code: q.get("code"), redirect_uri: redirect, client_id: clientID,
      code_verifier: sessionStorage.getItem("verifier")})});
  const tok = await tr.json();
  if (!tok.access_token) return show("SPA error", JSON.stringify(tok));
  const auth = {headers: {Authorization: "Bearer " + tok.access_token}};
  const ui = await (await fetch(issuer + "/userinfo", auth)).json();
  const acc = await (await fetch(issuer + "/api/v1/account", auth)).json();
  show("SPA signed in as " + ui.email, "account " + acc.email + " verified " + acc.email_verified);
})().catch((e) => show("SPA error", String(e)));
</script></body></html>`

// A public single-page client signs in end to end from the browser: the
// code flow with PKCE, the token endpoint, userinfo and the account API,
// all across origins, allowed by the client's registered CORS origin.
func TestBrowserSinglePageApp(t *testing.T) {
	b := newBrowserEnv(t)
	spa := httptest.NewServer(nil)
	t.Cleanup(spa.Close)
	id, _ := b.client(provider.ClientSpec{ID: "spa", Name: "Example SPA", Public: true,
		RedirectURIs: []string{spa.URL + "/callback"}, CORSOrigins: []string{spa.URL},
		Scopes: []string{"openid", "email", "account"}})
	spa.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, spaPage, b.issuer, id)
	})
	b.user("sam@example.com")

	b.run(chromedp.Navigate(spa.URL + "/"))
	b.expectPage("Sign in")
	b.signInWithMailedCode("sam@example.com", testPassword)
	b.expectPage("Allow Example SPA")
	b.click(`button[value="allow"]`)
	b.expectPage("SPA signed in as sam@example.com")
	b.shot("spa")
	var detail string
	b.eval(`document.getElementById("detail").textContent`, &detail)
	if detail != "account sam@example.com verified true" {
		t.Errorf("the SPA's account call = %q", detail)
	}

	// The same page served from an origin no client registered cannot
	// read the token endpoint's answer.
	other := httptest.NewServer(spa.Config.Handler)
	t.Cleanup(other.Close)
	var blocked string
	b.run(chromedp.Navigate(other.URL + "/elsewhere"))
	if err := chromedp.Run(b.ctx, chromedp.Evaluate(fmt.Sprintf(`fetch(%q + "/oauth2/token", {method: "POST",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "grant_type=client_credentials"})
		.then(() => "read").catch((e) => "blocked: " + e.name)`, b.issuer), &blocked, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
		return p.WithAwaitPromise(true)
	})); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(blocked, "blocked") {
		t.Errorf("a script of an unregistered origin read the token endpoint's answer: %q", blocked)
	}
}
