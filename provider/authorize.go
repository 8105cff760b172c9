package provider

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"

	"github.com/torii-idp/torii/storage"
)

// S256 challenges are base64url SHA-256 digests: exactly 43 characters.
var challengePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// singleValued are the authorization request parameters that must not be
// repeated (RFC 6749 §3.1: no first-value-wins).
var singleValued = []string{"response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method",
	"prompt", "max_age", "response_mode", "login_hint", "id_token_hint", "acr_values", "request", "request_uri"}

// maxParamLen bounds every authorization request parameter; longer values
// are refused early and cheaply.
const maxParamLen = 4096

// authorize is the authorization endpoint.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		p.errorPage(w, r, http.StatusBadRequest, "Sign-in request rejected", "The request could not be read.")
		return
	}
	// Which client and where to send errors must be unambiguous before
	// anything may be redirected.
	for _, k := range []string{"client_id", "redirect_uri"} {
		if len(r.Form[k]) > 1 {
			p.errorPage(w, r, http.StatusBadRequest, "Sign-in request rejected", "The request repeats the parameter "+k+" (invalid_request).")
			return
		}
	}
	if r.Form.Get("redirect_uri") == "" {
		// Torii always wants it: with several registered URIs it would be
		// ambiguous, and OpenID Connect requires it.
		p.errorPage(w, r, http.StatusBadRequest, "Sign-in request rejected", "The request has no redirect_uri (invalid_request).")
		return
	}
	for k, vs := range r.Form {
		for _, v := range vs {
			if len(v) > maxParamLen || len(k) > 256 {
				p.errorPage(w, r, http.StatusBadRequest, "Sign-in request rejected", "A request parameter is too long (invalid_request).")
				return
			}
		}
	}
	// Request objects are not supported; fosite would fail on them before
	// it knows where to send the error, so set them aside and answer
	// request_not_supported to the client once the redirect URI is known.
	_, hasRequest := r.Form["request"]
	_, hasRequestURI := r.Form["request_uri"]
	r.Form.Del("request")
	r.Form.Del("request_uri")
	ctx := r.Context()
	who := p.readSignIn(r, r.Form.Get("client_id"))
	ar, err := p.newAuthorizeRequest(ctx, r)
	if err != nil {
		p.writeAuthorizeError(w, r, ar, err)
		return
	}
	switch {
	case hasRequest:
		err = fosite.ErrRequestNotSupported.WithHint("Request objects are not supported.")
	case hasRequestURI:
		err = fosite.ErrRequestURINotSupported.WithHint("request_uri is not supported.")
	default:
		err = p.checkAuthorizeRequest(ar)
	}
	if err != nil {
		p.writeAuthorizeError(w, r, ar, err)
		return
	}
	p.proceed(w, r, ar, nil, who)
}

// newAuthorizeRequest is fosite's NewAuthorizeRequest with Torii's redirect
// URI rule on top: a redirect_uri fosite matched but redirectURIRegistered
// does not (user info or a bad port on a loopback URI, for instance) fails
// the request with errRedirectURIMismatch, which writeAuthorizeError answers
// with the error page.
func (p *Provider) newAuthorizeRequest(ctx context.Context, r *http.Request) (fosite.AuthorizeRequester, error) {
	ar, err := p.oauth2.NewAuthorizeRequest(ctx, r)
	if err == nil && !redirectURIRegistered(ar.GetRequestForm().Get("redirect_uri"), ar.GetClient().GetRedirectURIs()) {
		err = errRedirectURIMismatch
	}
	return ar, err
}

// browserSignIn is what a browser's session cookie says (Browser.SignedIn).
type browserSignIn struct {
	SignIn
	ok  bool
	err error
}

// readSignIn reads the browser's sign-in before the authorization request
// is validated, so that on PostgreSQL the request's client, which fosite
// reads next, comes in the same round trip (storage.NoteReads).
func (p *Provider) readSignIn(r *http.Request, clientID string) browserSignIn {
	storage.NoteReads(r.Context(), storage.ReadAhead{ClientID: clientID})
	signin, ok, err := p.browser.SignedIn(r)
	return browserSignIn{signin, ok, err}
}

// checkAuthorizeRequest adds Torii's rules to fosite's validation.
func (p *Provider) checkAuthorizeRequest(ar fosite.AuthorizeRequester) error {
	form := ar.GetRequestForm()
	for _, k := range singleValued {
		if len(form[k]) > 1 {
			return fosite.ErrInvalidRequest.WithHintf("The parameter '%s' must not be repeated.", k)
		}
	}
	if n := form.Get("nonce"); n != "" && len(n) < fosite.MinParameterEntropy {
		return fosite.ErrInsufficientEntropy.WithHintf("The nonce must be at least %d characters long.", fosite.MinParameterEntropy)
	}
	prompts := strings.Fields(form.Get("prompt"))
	for _, p := range prompts {
		if !slices.Contains([]string{"none", "login", "consent", "select_account"}, p) {
			return fosite.ErrInvalidRequest.WithHintf("Unknown prompt value '%s'.", p)
		}
	}
	if slices.Contains(prompts, "none") && len(prompts) > 1 {
		return fosite.ErrInvalidRequest.WithHint("prompt=none cannot be combined with other values.")
	}
	if m := form.Get("response_mode"); m != "" && m != "query" {
		return fosite.ErrUnsupportedResponseMode.WithHint("Only response_mode=query is supported.")
	}
	client, ok := ar.GetClient().(*storage.Client)
	if !ok {
		return fosite.ErrServerError.WithDebug("unexpected client type")
	}
	challenge := form.Get("code_challenge")
	if challenge == "" {
		if client.Public || !client.PKCEOptional {
			return fosite.ErrInvalidRequest.WithHint("This client must send a PKCE code_challenge with code_challenge_method=S256.")
		}
		if form.Get("code_challenge_method") != "" {
			return fosite.ErrInvalidRequest.WithHint("code_challenge_method was sent without code_challenge.")
		}
		return nil
	}
	if form.Get("code_challenge_method") != "S256" {
		return fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256; plain is not allowed.")
	}
	if !challengePattern.MatchString(challenge) {
		return fosite.ErrInvalidRequest.WithHint("code_challenge must be the 43-character base64url encoding of a SHA-256 digest.")
	}
	return nil
}

// proceed carries a validated authorization request forward: to the login
// page, the consent page, or the client with a code. pending is the stored
// request when the browser comes back from a login or consent page.
func (p *Provider) proceed(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, pending *storage.AuthRequest, who browserSignIn) {
	ctx := r.Context()
	prompts := strings.Fields(ar.GetRequestForm().Get("prompt"))
	requestedAt := time.Now().UTC().Truncate(time.Second)
	if pending != nil {
		requestedAt = pending.CreatedAt.UTC().Truncate(time.Second)
	}
	if req, ok := ar.(*fosite.AuthorizeRequest); ok {
		req.RequestedAt = requestedAt
	}

	signin, signedIn := who.SignIn, who.ok
	if who.err != nil {
		p.writeAuthorizeError(w, r, ar, fosite.ErrTemporarilyUnavailable.WithWrap(who.err))
		return
	}
	needLogin := !signedIn
	if signedIn {
		// prompt=login and max_age ask for a sign-in made for this very
		// request: after it was received, not before.
		received := time.Now()
		if pending != nil {
			received = pending.CreatedAt
		}
		if slices.Contains(prompts, "login") && (pending == nil || signin.AuthTime.Before(received)) {
			needLogin = true
		}
		if maxAge, err := strconv.ParseInt(ar.GetRequestForm().Get("max_age"), 10, 64); err == nil && maxAge >= 0 &&
			signin.AuthTime.Add(time.Duration(maxAge)*time.Second).Before(received) {
			needLogin = true
		}
		// acr_values=mfa asks for the one-time-code step even when the
		// server's default skips it.
		if slices.Contains(strings.Fields(ar.GetRequestForm().Get("acr_values")), ACRMFA) && acrFor(signin.AMR) != ACRMFA {
			needLogin = true
		}
	}
	if needLogin {
		if slices.Contains(prompts, "none") {
			p.writeAuthorizeError(w, r, ar, fosite.ErrLoginRequired.WithHint("The user is not signed in."))
			return
		}
		p.sendTo(w, r, ar, pending, LoginPath)
		return
	}

	user := signin.User
	var err error
	if user == nil {
		user, err = p.store.User(ctx, signin.Subject)
	}
	if errors.Is(err, storage.ErrNotFound) {
		// The session outlived its user.
		p.writeAuthorizeError(w, r, ar, fosite.ErrLoginRequired.WithHint("The user is not signed in."))
		return
	} else if err != nil {
		p.writeAuthorizeError(w, r, ar, storageFault(err))
		return
	}
	if user.Disabled {
		p.writeAuthorizeError(w, r, ar, fosite.ErrAccessDenied.WithHint("The account is disabled."))
		return
	}

	client := ar.GetClient().(*storage.Client)
	// What this user may be granted of what the client asked for (and may
	// ask for): consent is asked, and the code granted, for that only.
	scopes := GrantableScopes(user, ar.GetRequestedScopes())
	if !client.SkipConsent {
		consented, err := p.hasConsent(ctx, signin.Subject, client.ID, scopes, prompts, requestedAt)
		if err != nil {
			p.writeAuthorizeError(w, r, ar, storageFault(err))
			return
		}
		if !consented {
			if slices.Contains(prompts, "none") {
				p.writeAuthorizeError(w, r, ar, fosite.ErrConsentRequired.WithHint("The user has not yet allowed this application."))
				return
			}
			p.sendTo(w, r, ar, pending, ConsentPath)
			return
		}
	}

	for _, s := range scopes {
		ar.GrantScope(s)
	}
	for _, a := range ar.GetRequestedAudience() {
		ar.GrantAudience(a)
	}
	sess := p.userSession(client, user, signin.AuthTime, signin.AMR, requestedAt, ar.GetGrantedScopes())
	if signin.IDP != "" {
		sess.Claims.Extra["idp"] = signin.IDP
	}
	// The code, its PKCE challenge, its OpenID Connect session and the end
	// of the pending request commit together: one commit instead of four.
	var resp fosite.AuthorizeResponder
	var fositeErr error
	err = p.store.InTx(ctx, func(ctx context.Context) error {
		if resp, fositeErr = p.oauth2.NewAuthorizeResponse(ctx, ar, sess); fositeErr != nil {
			return fositeErr
		}
		if pending != nil {
			if err := p.store.DeleteAuthRequest(ctx, pending.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if fositeErr != nil {
		p.writeAuthorizeError(w, r, ar, fositeErr)
		return
	}
	if err != nil {
		p.writeAuthorizeError(w, r, ar, storageFault(err))
		return
	}
	resp.AddParameter("iss", p.cfg.Issuer)
	w.Header().Set("Referrer-Policy", "no-referrer")
	p.oauth2.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// hasConsent reports whether subject already allowed client every requested
// scope (and, with prompt=consent, did so for this very request).
func (p *Provider) hasConsent(ctx context.Context, subject, clientID string, scopes []string, prompts []string, requestedAt time.Time) (bool, error) {
	c, err := p.store.Consent(ctx, subject, clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	for _, s := range scopes {
		if !slices.Contains(c.Scopes, s) {
			return false, nil
		}
	}
	if slices.Contains(prompts, "consent") && c.GrantedAt.Truncate(time.Second).Before(requestedAt) {
		return false, nil
	}
	return true, nil
}

// userSession builds the session of a code: the ID token claims, the
// signing algorithm the client chose, and the grant's start.
func (p *Provider) userSession(client *storage.Client, u *storage.User, authTime time.Time, amr []string, requestedAt time.Time, scopes fosite.Arguments) *Session {
	sess := newSession()
	sess.Subject = u.ID
	sess.Username = u.PreferredUsername()
	sess.ClientID = client.ID
	sess.GrantedAt = time.Now().UTC()
	sess.Claims = &jwt.IDTokenClaims{
		Subject:                             u.ID,
		AuthTime:                            authTime.UTC().Truncate(time.Second),
		RequestedAt:                         requestedAt,
		AuthenticationMethodsReferences:     amr,
		AuthenticationContextClassReference: acrFor(amr),
		Extra:                               p.scopeClaims(u, scopes),
	}
	sess.Claims.Extra["azp"] = client.ID
	sess.Headers.Add("alg", client.IDTokenAlg)
	return sess
}

// sendTo stores the pending request (first time only), binds it to this
// browser, and redirects to a login page.
func (p *Provider) sendTo(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, pending *storage.AuthRequest, path string) {
	ctx := r.Context()
	if pending == nil {
		browser := p.browserID(w, r)
		form := url.Values{}
		for k, v := range ar.GetRequestForm() {
			form[k] = v
		}
		pending = &storage.AuthRequest{
			ID:          rand.Text(),
			ClientID:    ar.GetClient().GetID(),
			Form:        form.Encode(),
			BrowserHash: hashID(browser),
			ExpiresAt:   time.Now().Add(p.cfg.LoginLifetime),
		}
		if err := p.store.CreateAuthRequest(ctx, pending); err != nil {
			p.writeAuthorizeError(w, r, ar, storageFault(err))
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, path+"?req="+url.QueryEscape(pending.ID), http.StatusSeeOther)
}

// resume continues a pending authorization request after the login or
// consent page.
func (p *Provider) resume(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.URL.Query().Get("req")
	if id == "" || len(id) > 64 {
		p.errorPage(w, r, http.StatusBadRequest, "Sign-in request not found", "This sign-in request is unknown or has expired. Go back to the application and try again.")
		return
	}
	pending, err := p.store.AuthRequest(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		p.errorPage(w, r, http.StatusBadRequest, "Sign-in request not found", "This sign-in request is unknown or has expired. Go back to the application and try again.")
		return
	} else if err != nil {
		p.log.ErrorContext(ctx, "load auth request", "err", err)
		p.errorPage(w, r, http.StatusServiceUnavailable, "Temporarily unavailable", "The server cannot answer right now. Try again in a moment.")
		return
	}
	// Only the browser that started the request may finish it: a request
	// started by an attacker cannot be completed in a victim's browser.
	c, err := r.Cookie(p.browserCookieName())
	if err != nil || !hashEqual(hashID(c.Value), pending.BrowserHash) {
		p.errorPage(w, r, http.StatusForbidden, "Sign-in request not for this browser", "This sign-in request was started in another browser. Go back to the application and start again.")
		return
	}
	form, err := url.ParseQuery(pending.Form)
	if err != nil {
		p.errorPage(w, r, http.StatusBadRequest, "Sign-in request not found", "This sign-in request is damaged. Go back to the application and try again.")
		return
	}
	orig := r.Clone(ctx)
	orig.Method = http.MethodGet
	orig.URL.RawQuery = form.Encode()
	orig.Form, orig.PostForm = nil, nil
	orig.Body = http.NoBody
	who := p.readSignIn(r, pending.ClientID)
	ar, err := p.newAuthorizeRequest(ctx, orig)
	if err != nil {
		p.writeAuthorizeError(w, r, ar, err)
		return
	}
	if r.URL.Query().Get("deny") != "" {
		if err := p.store.DeleteAuthRequest(ctx, pending.ID); err != nil {
			p.log.WarnContext(ctx, "delete denied auth request", "err", err)
		}
		p.writeAuthorizeError(w, r, ar, fosite.ErrAccessDenied.WithHint("The user denied the request."))
		return
	}
	p.proceed(w, r, ar, pending, who)
}

// browserID returns this browser's flow-binding ID, setting the cookie when
// the browser has none.
func (p *Provider) browserID(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(p.browserCookieName()); err == nil && len(c.Value) >= 32 && len(c.Value) <= 64 {
		return c.Value
	}
	id := rand.Text() + rand.Text()
	http.SetCookie(w, &http.Cookie{
		Name:     p.browserCookieName(),
		Value:    id,
		Path:     "/",
		HttpOnly: true,
		Secure:   p.cookieSecure,
		SameSite: http.SameSiteLaxMode,
	})
	return id
}

func (p *Provider) browserCookieName() string {
	if p.cookieSecure {
		return "__Host-torii_flow"
	}
	return "torii_flow"
}

func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

func hashEqual(a, b string) bool {
	return len(a) == len(b) && subtleEqual(a, b)
}
