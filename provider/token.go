package provider

import (
	"context"
	"crypto/subtle"
	"errors"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/torii-idp/torii/storage"
)

// tokenParams must appear at most once in a token request.
var tokenParams = []string{"grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope",
	"username", "password", "client_id", "client_secret", "audience", "mfa_token", "otp"}

// token is the token endpoint.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	// A client whose codes, refresh tokens or passwords failed too often
	// is refused before any work; the check is cheap and spends nothing.
	if wait := p.tokenFailures.Wait(r); wait > 0 {
		p.writeTooMany(w, r, wait, errTooManyFailures)
		return
	}
	ctx := context.WithValue(r.Context(), issuedKey{}, &issued{})
	if err := p.checkTokenRequest(r); err != nil {
		p.writeAccessError(w, r, nil, err)
		return
	}
	// What the request redeems is read with its client (storage.NoteReads).
	switch form := r.PostForm; form.Get("grant_type") {
	case "authorization_code":
		if code := form.Get("code"); code != "" {
			storage.NoteReads(ctx, storage.ReadAhead{Code: code, CodeSignature: p.tokens.AuthorizeCodeSignature(ctx, code)})
		}
	case "refresh_token":
		if rt := form.Get("refresh_token"); rt != "" {
			storage.NoteReads(ctx, storage.ReadAhead{RefreshSignature: p.tokens.RefreshTokenSignature(ctx, rt)})
		}
	case "password":
		// The password grant's credential check must know whether the
		// client asked for the code step.
		if slices.Contains(strings.Fields(strings.Join(form["acr_values"], " ")), ACRMFA) {
			ctx = context.WithValue(ctx, codeStepAskedKey{}, true)
		}
	}
	ar, resp, err := p.exchange(ctx, r)
	// A code whose redemption failed once its PKCE challenge was read
	// loses the challenge now, before the answer: it can never be redeemed.
	// (A redemption that succeeded consumed it in its own transaction.)
	if endErr := p.store.EndRequest(ctx); endErr != nil {
		p.log.ErrorContext(ctx, "consume PKCE challenge", "err", endErr)
	}
	corsForClient(w, r, ar)
	if err != nil {
		var need *codeStepNeeded
		if errors.As(err, &need) {
			p.startCodeStep(w, r, ar, need.user)
			return
		}
		if errors.Is(err, fosite.ErrInvalidGrant) {
			p.tokenFailures.Failed(r)
		}
		p.writeAccessError(w, r, ar, err)
		return
	}
	p.oauth2.WriteAccessResponse(ctx, w, ar, resp)
	format := FormatOpaque
	if c, ok := ar.GetClient().(*storage.Client); ok && c.TokenFormat != "" {
		format = c.TokenFormat
	}
	p.observer.TokenIssued(r.PostForm.Get("grant_type"), format)
}

// writeTooMany answers 429 with Retry-After and RFC 6749's JSON error: a
// token request of a client out of its failure budget, or a code asked for
// too soon or too often. The code is invalid_request, the one of RFC 6749
// §5.2 that fits best (nothing in the request is honoured);
// temporarily_unavailable is registered for the authorization endpoint
// only, and slow_down for the device flow. The description says why (why)
// and when to retry.
func (p *Provider) writeTooMany(w http.ResponseWriter, r *http.Request, wait time.Duration, why string) {
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	e := fosite.ErrInvalidRequest.WithHintf("Try again in %d seconds.", secs)
	e.DescriptionField = why
	e.CodeField = http.StatusTooManyRequests
	p.writeAccessError(w, r, nil, e)
}

// errTooManyFailures says why writeTooMany refuses a token request.
const errTooManyFailures = "Too many failed token requests from this address."

// exchange runs a token request through fosite and Torii's own checks.
func (p *Provider) exchange(ctx context.Context, r *http.Request) (fosite.AccessRequester, fosite.AccessResponder, error) {
	ar, err := p.oauth2.NewAccessRequest(ctx, r, newSession())
	if err != nil {
		if r.PostForm.Get("grant_type") == "refresh_token" && errors.Is(err, fosite.ErrInactiveToken) {
			// fosite found the token rotated already and revoked its
			// family (reuse detection).
			p.observer.RefreshReuse()
			p.auditReuse(ctx, ar)
		}
		return ar, nil, err
	}
	if err := p.prepareGrant(ctx, ar); err != nil {
		return ar, nil, err
	}
	resp, err := p.oauth2.NewAccessResponse(ctx, ar)
	if err != nil {
		return ar, nil, raceToInvalidGrant(err)
	}
	return ar, resp, nil
}

// checkTokenRequest refuses what fosite would accept but RFC 6749 does not:
// a body that is not a form, repeated parameters, credentials in the URL, a
// grant type Torii does not know.
func (p *Provider) checkTokenRequest(r *http.Request) error {
	if err := parseFormPost(r, []string{"client_secret", "code", "refresh_token", "password", "mfa_token", "otp"}, tokenParams); err != nil {
		return err
	}
	switch gt := r.PostForm.Get("grant_type"); {
	case gt == "":
		return fosite.ErrInvalidRequest.WithHint("The grant_type parameter is missing.")
	case !slices.Contains(grantTypesSupported, gt):
		return fosite.ErrUnsupportedGrantType.WithHint("Supported grant types: " + strings.Join(grantTypesSupported, ", ") + ".")
	}
	return nil
}

// parseFormPost parses a form-encoded POST body for the token,
// introspection and revocation endpoints. None of secretParams may appear
// in the URL, none of single may be repeated, and no value may be longer
// than maxParamLen.
func parseFormPost(r *http.Request, secretParams, single []string) error {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		return fosite.ErrInvalidRequest.WithHint("The request body must be application/x-www-form-urlencoded.")
	}
	if err := r.ParseForm(); err != nil {
		return fosite.ErrInvalidRequest.WithHint("The request body could not be parsed as a form.")
	}
	q := r.URL.Query()
	for _, k := range secretParams {
		if q.Has(k) {
			return fosite.ErrInvalidRequest.WithHint("Tokens and credentials must not be sent in the URL.")
		}
	}
	for _, k := range single {
		if len(r.PostForm[k]) > 1 {
			return fosite.ErrInvalidRequest.WithHintf("The parameter '%s' must not be repeated.", k)
		}
	}
	for k, vs := range r.PostForm {
		for _, v := range vs {
			if len(v) > maxParamLen || len(k) > 256 {
				return fosite.ErrInvalidRequest.WithHint("A request parameter is too long.")
			}
		}
	}
	return nil
}

// grantRequested grants what a client asked for in a grant without a user's
// consent (client credentials, password); fosite has already checked that
// the client may have it.
func grantRequested(ar fosite.AccessRequester) {
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	for _, a := range ar.GetRequestedAudience() {
		ar.GrantAudience(a)
	}
}

// prepareGrant completes what fosite leaves to the server between parsing a
// token request and issuing tokens.
func (p *Provider) prepareGrant(ctx context.Context, ar fosite.AccessRequester) error {
	sess, ok := ar.GetSession().(*Session)
	if !ok {
		return fosite.ErrServerError.WithDebug("unexpected session type")
	}
	client := ar.GetClient().(*storage.Client)
	now := time.Now().UTC()
	switch {
	case ar.GetGrantTypes().ExactOne("client_credentials"):
		grantRequested(ar)
		sess.Subject = client.ID
		sess.ClientID = client.ID
		sess.GrantedAt = now

	case ar.GetGrantTypes().ExactOne("password"), ar.GetGrantTypes().ExactOne(GrantTypeMFAOTP):
		amr, acr := []string{"pwd"}, ACRPassword
		if ar.GetGrantTypes().ExactOne(GrantTypeMFAOTP) {
			// The mfa-otp grant granted its challenge's scopes itself.
			amr, acr = []string{"pwd", "otp"}, ACRMFA
		} else {
			grantRequested(ar)
		}
		sess.ClientID = client.ID
		sess.GrantedAt = now
		sess.IDTokenClaims().AuthTime = now.Truncate(time.Second)
		sess.IDTokenClaims().AuthenticationMethodsReferences = amr
		sess.IDTokenClaims().AuthenticationContextClassReference = acr
		// No ID token now (fosite's password grant issues none), but a
		// refresh with the openid scope will make one: prepare its claims.
		sess.IDTokenHeaders().Add("alg", client.IDTokenAlg)
		u, err := p.store.User(ctx, sess.Subject)
		if err != nil {
			return storageFault(err)
		}
		if err := grantForUser(ar, u); err != nil {
			return err
		}
		sess.Username = u.PreferredUsername()
		sess.IDTokenClaims().Extra = p.scopeClaims(u, ar.GetGrantedScopes())
		sess.IDTokenClaims().Extra["azp"] = client.ID

	case ar.GetGrantTypes().ExactOne("refresh_token"):
		// A refresh may narrow the scope, never widen it (RFC 6749 §6).
		if raw := ar.GetRequestForm().Get("scope"); raw != "" {
			want := fosite.Arguments(strings.Fields(raw))
			for _, s := range want {
				if !ar.GetGrantedScopes().Has(s) {
					return fosite.ErrInvalidScope.WithHintf("The scope '%s' was not granted originally.", s)
				}
			}
			if req, ok := ar.(*fosite.AccessRequest); ok {
				req.GrantedScope = want
				req.RequestedScope = want
			}
		}
		// The family's absolute lifetime: rotation does not extend it.
		if !sess.GrantedAt.IsZero() {
			sess.SetExpiresAt(fosite.RefreshToken, sess.GrantedAt.Add(p.cfg.RefreshTokenLifetime).Round(time.Second))
			if !sess.GrantedAt.Add(p.cfg.RefreshTokenLifetime).After(now) {
				return fosite.ErrInvalidGrant.WithHint("The refresh token expired.")
			}
		}
		// A deleted or disabled user's grants end with them; refreshed ID
		// tokens carry the user's current claims, and the grant the scopes
		// the user may still have.
		{
			u, err := p.store.User(ctx, sess.Subject)
			if errors.Is(err, storage.ErrNotFound) {
				return fosite.ErrInvalidGrant.WithHint("The user of this grant no longer exists.")
			} else if err != nil {
				return storageFault(err)
			}
			if u.Disabled {
				return fosite.ErrInvalidGrant.WithHint("The user's account is disabled.")
			}
			if u.PasswordChangedAt.Valid && u.PasswordChangedAt.Time.After(sess.GrantedAt) && ar.GetID() != u.KeptGrant {
				return fosite.ErrInvalidGrant.WithHint("The password changed since this grant was made; sign in again.")
			}
			// A user who lost a role loses its scope (torii:admin) for
			// good: the rotated refresh token no longer carries it.
			if err := grantForUser(ar, u); err != nil {
				return err
			}
			claims := sess.IDTokenClaims()
			azp := claims.Extra["azp"]
			claims.Extra = p.scopeClaims(u, ar.GetGrantedScopes())
			if azp != nil {
				claims.Extra["azp"] = azp
			}
			claims.Nonce = ""
			sess.Username = u.PreferredUsername()
		}
	}
	return nil
}

// raceToInvalidGrant reports a lost race for a code or refresh token (a
// concurrent request used it first) as the replay it is: invalid_grant.
func raceToInvalidGrant(err error) error {
	switch {
	case errors.Is(err, storage.ErrCodeAlreadyUsed), errors.Is(err, fosite.ErrInvalidatedAuthorizeCode):
		// The second: fosite re-reads the code after its checks, and a
		// concurrent redemption may have used it in between.
		return fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
	case errors.Is(err, storage.ErrRefreshTokenUsed):
		return fosite.ErrInvalidGrant.WithHint("The refresh token has already been used.")
	case errors.Is(err, storage.ErrConflict):
		return fosite.ErrInvalidGrant.WithHint("The grant was used by a concurrent request.")
	}
	return err
}

func subtleEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// auditReuse records a refresh token presented again after rotation (its
// family is revoked by then). The event is kept even though the request
// fails; a failure to record it is only logged, as the answer is the same.
func (p *Provider) auditReuse(ctx context.Context, ar fosite.AccessRequester) {
	ev := &storage.AuditEvent{Type: "token.reuse_detected"}
	if ar != nil {
		if c := ar.GetClient(); c != nil {
			ev.ClientID = c.GetID()
		}
		if s := ar.GetSession(); s != nil {
			ev.Subject = s.GetSubject()
		}
	}
	if err := p.store.RecordAudit(context.WithoutCancel(ctx), ev); err != nil {
		p.log.WarnContext(ctx, "audit: record token reuse", "err", err)
	}
}
