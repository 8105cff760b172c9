package provider

import (
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/ory/fosite/token/jwt"

	"github.com/torii-idp/torii/storage"
)

// endSession is the OpenID Connect RP-initiated logout endpoint
// (end_session_endpoint). With a genuine id_token_hint for the signed-in
// user it signs the browser out at once and sends it to the client's
// registered post_logout_redirect_uri (with state). Without one — no hint,
// a forged or foreign hint — it never redirects anywhere: it asks the user
// on the login pages' sign-out confirmation page.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		p.errorPage(w, r, http.StatusBadRequest, "Sign-out request rejected", "The request could not be read.")
		return
	}
	for _, k := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state"} {
		if len(r.Form[k]) > 1 || len(r.Form.Get(k)) > maxParamLen {
			p.errorPage(w, r, http.StatusBadRequest, "Sign-out request rejected", "The request repeats or overflows the parameter "+k+".")
			return
		}
	}
	hintSub, hintClients, hintOK := p.logoutHint(r)
	clientID := r.Form.Get("client_id")
	if hintOK && clientID != "" && !slices.Contains(hintClients, clientID) {
		p.errorPage(w, r, http.StatusBadRequest, "Sign-out request rejected", "The client_id does not match the ID token hint.")
		return
	}
	if clientID == "" && hintOK && len(hintClients) == 1 {
		clientID = hintClients[0]
	}

	// Where to go afterwards: only a URI registered for the client.
	var next *url.URL
	if raw := r.Form.Get("post_logout_redirect_uri"); raw != "" {
		client, err := p.store.Client(ctx, clientID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			p.errorPage(w, r, http.StatusServiceUnavailable, "Temporarily unavailable", "The server cannot answer right now. Try again in a moment.")
			return
		}
		switch {
		case client == nil && !hintOK:
			// Without a genuine hint there is no telling which client
			// asks; the address is ignored and the user is asked.
		case client == nil || !slices.Contains(client.PostLogoutRedirectURIs, raw):
			p.errorPage(w, r, http.StatusBadRequest, "Sign-out request rejected",
				"The application's return address after sign-out (post_logout_redirect_uri) is not registered.")
			return
		default:
			next, _ = url.Parse(raw)
			if state := r.Form.Get("state"); state != "" {
				q := next.Query()
				q.Set("state", state)
				next.RawQuery = q.Encode()
			}
		}
	}

	signin, signedIn, err := p.browser.SignedIn(r)
	if err != nil {
		p.log.ErrorContext(ctx, "end session: look up the session", "err", err)
		p.errorPage(w, r, http.StatusServiceUnavailable, "Temporarily unavailable", "The server cannot answer right now. Try again in a moment.")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if signedIn && (!hintOK || hintSub != signin.Subject) {
		// Not provably asked by an application this user signed in to:
		// let the user decide, and do not follow the redirect.
		http.Redirect(w, r, LogoutPath, http.StatusSeeOther)
		return
	}
	if signedIn {
		if err := p.browser.SignOut(w, r); err != nil {
			p.log.ErrorContext(ctx, "end session: sign out", "err", err)
			p.errorPage(w, r, http.StatusServiceUnavailable, "Temporarily unavailable", "The server cannot sign you out right now. Try again in a moment.")
			return
		}
		p.log.InfoContext(ctx, "signed out by relying party", "subject", signin.Subject, "client_id", clientID)
	}
	if next != nil {
		http.Redirect(w, r, next.String(), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, LoginPath, http.StatusSeeOther)
}

// logoutHint checks the id_token_hint: one of Torii's own ID tokens
// (expired is fine), naming its subject and audience.
func (p *Provider) logoutHint(r *http.Request) (sub string, clients []string, ok bool) {
	raw := r.Form.Get("id_token_hint")
	if raw == "" {
		return "", nil, false
	}
	tok, err := p.signer.Decode(r.Context(), raw)
	var ve *jwt.ValidationError
	if err != nil && !(errors.As(err, &ve) && ve.Has(jwt.ValidationErrorExpired) && tok != nil) {
		return "", nil, false
	}
	if iss, _ := tok.Claims["iss"].(string); iss != p.cfg.Issuer {
		return "", nil, false
	}
	sub, _ = tok.Claims["sub"].(string)
	switch aud := tok.Claims["aud"].(type) {
	case string:
		clients = []string{aud}
	case []any:
		for _, a := range aud {
			if s, ok := a.(string); ok {
				clients = append(clients, s)
			}
		}
	}
	if sub == "" || len(clients) == 0 {
		return "", nil, false
	}
	return sub, clients, true
}
