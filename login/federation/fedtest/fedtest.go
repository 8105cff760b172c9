// Package fedtest runs fake upstream identity providers for tests: one
// httptest server per provider speaking that provider's real endpoints and
// JSON shapes — GitHub (/login/oauth/authorize, /login/oauth/access_token,
// /user, /user/emails, also under /api/v3 as GitHub Enterprise Server
// serves them), Google (authorization, token, JWKS, userinfo v2,
// discovery), Facebook (the dialog, the Graph token endpoint and /me) and a
// generic OpenID Connect provider (discovery, authorize, token, JWKS,
// userinfo).
//
// The authorization endpoint answers at once as a person who allows the
// request: a redirect to redirect_uri with a code and the state (or an
// error, see Fake.AuthorizeError). The token endpoint checks the client,
// the redirect URI and the PKCE verifier. Switches on Fake make each
// endpoint fail or an ID token go wrong.
package fedtest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Kinds of fake.
const (
	GitHub   = "github"
	Google   = "google"
	Facebook = "facebook"
	OIDC     = "oidc"
)

// GoogleIssuer is the issuer of Google's ID tokens.
const GoogleIssuer = "https://accounts.google.com"

// Email is one address of a GitHub account (/user/emails).
type Email struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// User is the person signed in at the fake.
type User struct {
	Subject       string // GitHub: a number
	Login         string // GitHub's login
	Name          string
	Email         string // the profile's (GitHub: public) email
	EmailVerified bool
	Picture       string
	// Emails is GitHub's /user/emails answer.
	Emails []Email
}

// Fake is one fake provider. Its exported fields are set before the flow,
// or changed later through Configure, which waits for the requests being
// answered (a request still hanging at the end of a test included).
type Fake struct {
	Kind         string
	Server       *httptest.Server
	ClientID     string
	ClientSecret string
	// Issuer is the ID tokens' iss: the server's URL for OIDC,
	// GoogleIssuer for Google.
	Issuer string
	User   User

	// AuthorizeError, when set, is sent back as ?error= instead of a code.
	AuthorizeError string
	// TokenStatus and ProfileStatus, when set, make the token and the
	// profile/userinfo endpoints answer that status with an error body.
	TokenStatus, ProfileStatus int
	// Hang makes every endpoint but authorize wait until the request is
	// cancelled (a provider that does not answer).
	Hang bool
	// HangProfile makes the profile, emails and userinfo endpoints wait
	// until the request is cancelled.
	HangProfile bool
	// Claims changes the ID token's claims before signing (wrong iss, aud,
	// exp, nonce).
	Claims func(claims map[string]any)
	// WrongKey signs ID tokens with a key that is not in the JWKS.
	WrongKey bool

	key, otherKey *rsa.PrivateKey
	stop          chan struct{}
	// cfg guards the exported fields: serve reads them under its read
	// lock (released while it hangs), Configure writes them.
	cfg    sync.RWMutex
	mu     sync.Mutex
	codes  map[string]grant
	tokens map[string]bool
	// Redeemed counts successful code redemptions.
	redeemed int
	requests []string
}

type grant struct {
	clientID, redirectURI, challenge, nonce string
}

// New starts a fake of kind with client credentials "client-<kind>" and
// "secret-<kind>", stopped at the end of the test.
func New(t testing.TB, kind string) *Fake {
	t.Helper()
	f := &Fake{Kind: kind, ClientID: "client-" + kind, ClientSecret: "secret-" + kind,
		codes: map[string]grant{}, tokens: map[string]bool{}}
	var err error
	if f.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if f.otherKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	f.stop = make(chan struct{})
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		close(f.stop)
		f.Server.Close()
	})
	f.Issuer = f.Server.URL
	if kind == Google {
		f.Issuer = GoogleIssuer
	}
	f.User = User{Subject: "1001", Login: "octo", Name: "Octo Cat", Email: "octo@example.com", EmailVerified: true,
		Picture: PictureURL,
		Emails:  []Email{{Email: "octo@example.com", Primary: true, Verified: true}}}
	return f
}

// PictureURL is the picture the fake's profiles name by default: served by
// the fake at /picture.png, reached through Transport with PictureHost.
const (
	PictureHost = "img.example"
	PictureURL  = "https://" + PictureHost + "/picture.png"
)

// PicturePNG is a small PNG picture.
func PicturePNG() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = 0x80
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	return buf.Bytes()
}

// URL is the fake's base URL.
func (f *Fake) URL() string { return f.Server.URL }

// Redeemed returns how many codes were exchanged.
func (f *Fake) Redeemed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.redeemed
}

// Transport returns an http.RoundTripper that sends requests for the given
// hosts to the fakes (https or http alike) and every other request to
// base (nil: http.DefaultTransport). Google's and Facebook's endpoints are
// fixed in goth; tests reach the fakes through it.
func Transport(base http.RoundTripper, hosts map[string]*Fake) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		f, ok := hosts[r.URL.Hostname()]
		if !ok {
			return base.RoundTrip(r)
		}
		u, _ := url.Parse(f.Server.URL)
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host, r.Host = u.Scheme, u.Host, u.Host
		return base.RoundTrip(r)
	})
}

// GoogleHosts and FacebookHosts are the hosts of those providers' fixed
// endpoints.
var (
	GoogleHosts   = []string{"accounts.google.com", "oauth2.googleapis.com", "www.googleapis.com", "openidconnect.googleapis.com"}
	FacebookHosts = []string{"www.facebook.com", "graph.facebook.com"}
	GitHubHosts   = []string{"github.com", "api.github.com"}
)

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Requests returns the paths requested so far, in order.
func (f *Fake) Requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// Configure changes the fake's exported fields with fn, between the
// requests it answers.
func (f *Fake) Configure(fn func(f *Fake)) {
	f.cfg.Lock()
	defer f.cfg.Unlock()
	fn(f)
}

// profilePaths are the endpoints HangProfile holds.
var profilePaths = map[string]bool{"/user": true, "/user/emails": true, "/oauth2/v2/userinfo": true, "/me": true, "/userinfo": true}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.URL.Path)
	f.mu.Unlock()
	path := strings.TrimPrefix(r.URL.Path, "/api/v3")
	f.cfg.RLock()
	authorize := path == "/login/oauth/authorize" || path == "/o/oauth2/auth" || path == "/dialog/oauth" || path == "/authorize"
	if (f.Hang && !authorize) || (f.HangProfile && profilePaths[path]) {
		f.cfg.RUnlock()
		select {
		case <-r.Context().Done():
		case <-f.stop:
		}
		return
	}
	defer f.cfg.RUnlock()
	switch {
	case path == "/.well-known/openid-configuration" && (f.Kind == OIDC || f.Kind == Google):
		f.discovery(w)
	case f.Kind == GitHub && path == "/login/oauth/authorize",
		f.Kind == Google && path == "/o/oauth2/auth",
		f.Kind == Facebook && path == "/dialog/oauth",
		f.Kind == OIDC && path == "/authorize":
		f.authorize(w, r)
	case f.Kind == GitHub && path == "/login/oauth/access_token",
		f.Kind == Google && path == "/token",
		f.Kind == Facebook && (path == "/oauth/access_token" || path == "/v19.0/oauth/access_token"),
		f.Kind == OIDC && path == "/token":
		f.token(w, r)
	case (f.Kind == Google && path == "/oauth2/v3/certs") || (f.Kind == OIDC && path == "/jwks"):
		f.jwks(w)
	case f.Kind == GitHub && path == "/user":
		f.githubUser(w, r)
	case f.Kind == GitHub && path == "/user/emails":
		f.githubEmails(w, r)
	case f.Kind == Google && path == "/oauth2/v2/userinfo":
		f.googleUserinfo(w, r)
	case f.Kind == Facebook && path == "/me":
		f.facebookMe(w, r)
	case f.Kind == OIDC && path == "/userinfo":
		f.userinfo(w, r)
	case path == "/picture.png":
		w.Header().Set("Content-Type", "image/png")
		w.Write(PicturePNG())
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *Fake) discovery(w http.ResponseWriter) {
	base := f.Server.URL
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                f.Issuer,
		"authorization_endpoint":                base + "/authorize",
		"token_endpoint":                        base + "/token",
		"jwks_uri":                              base + "/jwks",
		"userinfo_endpoint":                     base + "/userinfo",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
	})
}

func (f *Fake) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || q.Get("client_id") != f.ClientID || redirect.Scheme == "" {
		http.Error(w, "bad client or redirect_uri", http.StatusBadRequest)
		return
	}
	back := redirect.Query()
	back.Set("state", q.Get("state"))
	if f.AuthorizeError != "" {
		back.Set("error", f.AuthorizeError)
	} else {
		code := randomString()
		f.mu.Lock()
		f.codes[code] = grant{clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"),
			challenge: q.Get("code_challenge"), nonce: q.Get("nonce")}
		f.mu.Unlock()
		back.Set("code", code)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (f *Fake) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if f.TokenStatus != 0 {
		writeJSON(w, f.TokenStatus, map[string]string{"error": "server_error"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	f.mu.Lock()
	g, found := f.codes[r.PostForm.Get("code")]
	delete(f.codes, r.PostForm.Get("code"))
	f.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case id != f.ClientID || secret != f.ClientSecret:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	case !found || g.redirectURI != r.PostForm.Get("redirect_uri"):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	case g.challenge == "" || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "PKCE verification failed"})
		return
	}
	at := "fake_at_" + randomString()
	f.mu.Lock()
	f.tokens[at] = true
	f.redeemed++
	f.mu.Unlock()
	if f.Kind == GitHub {
		// GitHub answers form-encoded unless asked for JSON.
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		fmt.Fprint(w, url.Values{"access_token": {at}, "token_type": {"bearer"}, "scope": {"read:user,user:email"}}.Encode())
		return
	}
	resp := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 3600}
	if f.Kind == Google || f.Kind == OIDC {
		resp["id_token"] = f.idToken(g.nonce)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (f *Fake) idToken(nonce string) string {
	now := time.Now()
	claims := map[string]any{
		"iss": f.Issuer, "aud": f.ClientID, "sub": f.User.Subject, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"nonce": nonce, "email": f.User.Email, "email_verified": f.User.EmailVerified, "name": f.User.Name,
		"picture": f.User.Picture,
	}
	if f.Claims != nil {
		f.Claims(claims)
	}
	key := f.key
	if f.WrongKey {
		key = f.otherKey
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		panic(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		panic(err)
	}
	return tok
}

func (f *Fake) jwks(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
}

// bearer checks the access token (header, or GitHub/Google/Facebook's
// access_token parameter).
func (f *Fake) bearer(w http.ResponseWriter, r *http.Request) bool {
	if f.ProfileStatus != 0 {
		writeJSON(w, f.ProfileStatus, map[string]string{"message": "profile unavailable"})
		return false
	}
	at := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if at == "" || at == r.Header.Get("Authorization") {
		at = r.URL.Query().Get("access_token")
	}
	f.mu.Lock()
	ok := f.tokens[at]
	f.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
	}
	return ok
}

func (f *Fake) githubUser(w http.ResponseWriter, r *http.Request) {
	if !f.bearer(w, r) {
		return
	}
	var id int
	fmt.Sscan(f.User.Subject, &id)
	var email any
	if f.User.Email != "" {
		email = f.User.Email
	}
	writeJSON(w, http.StatusOK, map[string]any{"login": f.User.Login, "id": id, "avatar_url": f.User.Picture,
		"name": f.User.Name, "email": email, "type": "User"})
}

func (f *Fake) githubEmails(w http.ResponseWriter, r *http.Request) {
	if !f.bearer(w, r) {
		return
	}
	emails := f.User.Emails
	if emails == nil {
		emails = []Email{}
	}
	type row struct {
		Email
		Visibility any `json:"visibility"`
	}
	rows := make([]row, len(emails))
	for i, e := range emails {
		rows[i] = row{Email: e}
	}
	writeJSON(w, http.StatusOK, rows)
}

func (f *Fake) googleUserinfo(w http.ResponseWriter, r *http.Request) {
	if !f.bearer(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": f.User.Subject, "email": f.User.Email, "verified_email": f.User.EmailVerified,
		"name": f.User.Name, "given_name": "Octo", "family_name": "Cat", "picture": f.User.Picture})
}

func (f *Fake) facebookMe(w http.ResponseWriter, r *http.Request) {
	if !f.bearer(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": f.User.Subject, "name": f.User.Name, "email": f.User.Email,
		"first_name": "Octo", "last_name": "Cat",
		"picture": map[string]any{"data": map[string]any{"url": f.User.Picture, "is_silhouette": false}}})
}

func (f *Fake) userinfo(w http.ResponseWriter, r *http.Request) {
	if !f.bearer(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sub": f.User.Subject, "email": f.User.Email, "email_verified": f.User.EmailVerified,
		"name": f.User.Name, "picture": f.User.Picture})
}

func randomString() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
