package provider

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/torii-idp/torii/storage"
)

// The password grant's code step. When the code step applies
// (Config.SecondFactor, or acr_values=mfa on the request), a right password
// answers 403 mfa_required with an mfa_token and sends a one-time code; the
// client then redeems the token and the code with GrantTypeMFAOTP, and may
// ask for another code at MFAChallengePath.
const (
	// GrantTypeMFAOTP is the grant type of the second step.
	GrantTypeMFAOTP = "urn:torii:params:oauth:grant-type:mfa-otp"
	// MFAChallengePath sends a new code for a pending second step.
	MFAChallengePath = "/oauth2/mfa/challenge"
	// mfaTokenPrefix marks mfa tokens, like the other tokens' prefixes.
	mfaTokenPrefix = "torii_mfa_"
)

// CodeStep sends and checks the one-time codes of the password grant's
// second step, with the same rules as the sign-in page's (code lifetime,
// tries per code, resend interval and limits, the code lockout).
// login/account implements it through an adapter wired by cmd/torii.
type CodeStep interface {
	// Channels lists the channels u can receive codes on: "email", and
	// "sms" when u has a verified phone number.
	Channels(u *storage.User) []string
	// SendCode sends userID a new code on channel, bound to binding (one
	// sign-in attempt), and returns the masked destination. The first
	// code of a binding on a channel goes at once; another on the same
	// channel waits for the resend interval. Errors: *RetryAfterError
	// (too many codes), ErrChannel (no such channel for this user),
	// ErrCodeGone (the code step is locked), or a fault.
	SendCode(ctx context.Context, userID, binding, channel string) (destination string, err error)
	// CheckCode checks code against the live code of binding and uses it
	// up when right. Errors: ErrCodeWrong (wrong; the code still works),
	// ErrCodeGone (no usable code: expired, used, too many wrong entries,
	// or the code step locked), or a fault.
	CheckCode(ctx context.Context, userID, binding, code string) error
}

// Errors a CodeStep returns; test them with errors.Is.
var (
	// ErrCodeWrong means a wrong code; its code stays usable.
	ErrCodeWrong = errors.New("provider: wrong one-time code")
	// ErrCodeGone means no usable code is left for the attempt.
	ErrCodeGone = errors.New("provider: no usable one-time code")
	// ErrChannel means the user cannot receive codes on that channel.
	ErrChannel = errors.New("provider: no such channel for this user")
)

// RetryAfterError means too many codes were sent: the next may be asked
// for After.
type RetryAfterError struct{ After time.Duration }

func (e *RetryAfterError) Error() string { return "provider: too many codes sent" }

// codeStepNeeded is what the password grant's credential check returns for
// a right password when the code step applies; the token endpoint turns it
// into mfa_required.
type codeStepNeeded struct{ user *storage.User }

func (*codeStepNeeded) Error() string {
	return "provider: the password was right; the code step applies"
}

// newMFAToken returns a new mfa token (256 random bits) and what is stored
// of it.
func newMFAToken() (token, hash string) {
	b := make([]byte, 32)
	rand.Read(b)
	token = mfaTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, mfaTokenHash(token)
}

// mfaTokenHash is the SHA-256 of an mfa token, in hex.
func mfaTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// codeBinding binds the codes of a challenge to it: a code sent for one
// password-grant sign-in never works for another, nor on the pages.
func codeBinding(tokenHash string) string { return "mfa:" + tokenHash }

// startCodeStep answers a right password when the code step applies: it
// stores a challenge bound to the client, sends the first code by mail, and
// writes 403 mfa_required with the challenge's token.
func (p *Provider) startCodeStep(w http.ResponseWriter, r *http.Request, ar fosite.AccessRequester, u *storage.User) {
	ctx := r.Context()
	token, hash := newMFAToken()
	c := &storage.MFAChallenge{
		TokenHash: hash, UserID: u.ID, ClientID: ar.GetClient().GetID(),
		Scope:     strings.Join(ar.GetRequestedScopes(), " "),
		Audience:  strings.Join(ar.GetRequestedAudience(), " "),
		ExpiresAt: time.Now().Add(p.cfg.CodeStepLifetime),
	}
	if err := p.store.CreateMFAChallenge(ctx, c); err != nil {
		p.writeAccessError(w, r, ar, storageFault(err))
		return
	}
	if _, err := p.codes.SendCode(ctx, u.ID, codeBinding(hash), "email"); err != nil {
		var ra *RetryAfterError
		switch {
		case errors.As(err, &ra):
			p.writeTooMany(w, r, ra.After, "Too many codes were sent to this account.")
		case errors.Is(err, ErrCodeGone):
			// The code step is locked by wrong codes: the same answer as
			// a locked account.
			p.tokenFailures.Failed(r)
			p.writeAccessError(w, r, ar, errPasswordGrantFailed)
		default:
			p.writeAccessError(w, r, ar, fosite.ErrServerError.WithWrap(err))
		}
		return
	}
	p.log.InfoContext(ctx, "password grant: code step", "subject", u.ID, "client_id", c.ClientID)
	writeJSON(w, http.StatusForbidden, map[string]any{
		"error":             "mfa_required",
		"error_description": "The password is right; enter the one-time code sent to the user (grant type " + GrantTypeMFAOTP + ").",
		"mfa_token":         token,
		"channels":          p.codes.Channels(u),
		"expires_in":        int(p.cfg.CodeStepLifetime / time.Second),
	})
}

// errPasswordGrantFailed is the password grant's one answer to every
// credential failure.
var errPasswordGrantFailed = fosite.ErrInvalidGrant.WithHint("Unable to authenticate the provided username and password credentials.")

// writeJSON writes v as a JSON answer that no cache keeps.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// mfaChallenge serves POST /oauth2/mfa/challenge: another code, on the
// channel asked for, for a pending second step of the client's.
func (p *Provider) mfaChallenge(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if wait := p.tokenFailures.Wait(r); wait > 0 {
		p.writeTooMany(w, r, wait, errTooManyFailures)
		return
	}
	if err := parseFormPost(r, []string{"client_secret", "mfa_token"}, []string{"mfa_token", "channel", "client_id", "client_secret"}); err != nil {
		p.writeAccessError(w, r, nil, err)
		return
	}
	client, err := p.clients.authenticate(ctx, r, r.PostForm)
	if err != nil {
		p.writeAccessError(w, r, nil, err)
		return
	}
	if !client.GetGrantTypes().Has("password") {
		p.writeAccessError(w, r, nil, fosite.ErrUnauthorizedClient.WithHint("The client is not allowed to use the password grant."))
		return
	}
	channel := r.PostForm.Get("channel")
	if channel != "email" && channel != "sms" {
		p.writeAccessError(w, r, nil, fosite.ErrInvalidRequest.WithHint("The channel must be email or sms."))
		return
	}
	c, err := p.liveChallenge(ctx, r.PostForm.Get("mfa_token"), client.GetID())
	if err != nil {
		if errors.Is(err, fosite.ErrInvalidGrant) {
			p.tokenFailures.Failed(r)
		}
		p.writeAccessError(w, r, nil, err)
		return
	}
	dest, err := p.codes.SendCode(ctx, c.UserID, codeBinding(c.TokenHash), channel)
	var ra *RetryAfterError
	switch {
	case errors.As(err, &ra):
		p.writeTooMany(w, r, ra.After, "A code was sent a moment ago, or too many were sent.")
		return
	case errors.Is(err, ErrChannel):
		p.writeAccessError(w, r, nil, fosite.ErrInvalidRequest.WithHint("The user cannot receive codes on this channel."))
		return
	case errors.Is(err, ErrCodeGone):
		p.writeAccessError(w, r, nil, errMFATokenInvalid)
		return
	case err != nil:
		p.writeAccessError(w, r, nil, fosite.ErrServerError.WithWrap(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"channel":     channel,
		"destination": dest,
		"expires_in":  int(time.Until(c.ExpiresAt) / time.Second),
	})
}

// errMFATokenInvalid answers an mfa_token that is unknown, used, expired,
// another client's, or whose code died.
var errMFATokenInvalid = fosite.ErrInvalidGrant.WithHint("The mfa_token is invalid, expired or used.")

// liveChallenge returns the live challenge of token for clientID: an
// unknown, used or expired token, or another client's, is invalid_grant.
func (p *Provider) liveChallenge(ctx context.Context, token, clientID string) (*storage.MFAChallenge, error) {
	if !strings.HasPrefix(token, mfaTokenPrefix) || len(token) > 128 {
		return nil, errMFATokenInvalid
	}
	c, err := p.store.LiveMFAChallenge(ctx, mfaTokenHash(token))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errMFATokenInvalid
	} else if err != nil {
		return nil, storageFault(err)
	}
	if c.ClientID != clientID {
		return nil, errMFATokenInvalid
	}
	return c, nil
}

// mfaGrant is the token endpoint's handler of GrantTypeMFAOTP: a right code
// for a live challenge of the client issues the tokens the password grant
// would have (access, refresh with offline_access, and an ID token with
// openid), with amr pwd otp and acr mfa.
type mfaGrant struct {
	p        *Provider
	helper   *oauth2.HandleHelper
	refresh  oauth2.RefreshTokenStrategy
	store    oauth2.ResourceOwnerPasswordCredentialsGrantStorage
	idTokens openid.OpenIDConnectTokenStrategy
	scopes   fosite.ScopeStrategy
}

func (h *mfaGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (h *mfaGrant) CanHandleTokenEndpointRequest(_ context.Context, ar fosite.AccessRequester) bool {
	return ar.GetGrantTypes().ExactOne(GrantTypeMFAOTP)
}

// HandleTokenEndpointRequest checks the code. The challenge dies when it is
// used, and with its code (too many wrong entries, or the code step
// locked); a wrong code leaves it for another try.
func (h *mfaGrant) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	client := ar.GetClient()
	if !client.GetGrantTypes().Has("password") {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not allowed to use the password grant.")
	}
	form := ar.GetRequestForm()
	token, code := form.Get("mfa_token"), form.Get("otp")
	if token == "" || code == "" {
		return fosite.ErrInvalidRequest.WithHint("The mfa_token and otp parameters are required.")
	}
	c, err := h.p.liveChallenge(ctx, token, client.GetID())
	if err != nil {
		return err
	}
	// The code is checked and the challenge used (or killed) in one
	// transaction, so that a redemption racing a right one, which finds
	// the code used, cannot kill the challenge before the winner uses it.
	// The transaction commits whatever the code was: a wrong entry stays
	// counted.
	var outcome error
	err = h.p.store.InTx(ctx, func(ctx context.Context) error {
		switch err := h.p.codes.CheckCode(ctx, c.UserID, codeBinding(c.TokenHash), code); {
		case errors.Is(err, ErrCodeWrong):
			outcome = fosite.ErrInvalidGrant.WithHint("The one-time code is wrong.")
			return nil
		case errors.Is(err, ErrCodeGone):
			// The challenge dies with its code.
			if err := h.p.store.UseMFAChallenge(ctx, c.TokenHash); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			outcome = fosite.ErrInvalidGrant.WithHint("The one-time code no longer works: sign in again.")
			return nil
		case err != nil:
			return err
		}
		// Single use: of two redemptions with the right code, one wins.
		if err := h.p.store.UseMFAChallenge(ctx, c.TokenHash); errors.Is(err, storage.ErrNotFound) {
			outcome = errMFATokenInvalid
			return nil
		} else if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return storageFault(err)
	}
	if outcome != nil {
		return outcome
	}
	for _, s := range strings.Fields(c.Scope) {
		if !h.scopes(client.GetScopes(), s) {
			return fosite.ErrInvalidScope.WithHintf("The client is no longer allowed scope '%s'.", s)
		}
		ar.GrantScope(s)
	}
	for _, a := range strings.Fields(c.Audience) {
		ar.GrantAudience(a)
	}
	sess := ar.GetSession().(*Session)
	sess.Subject = c.UserID
	sess.IDTokenClaims().Subject = c.UserID
	now := time.Now().UTC()
	sess.SetExpiresAt(fosite.AccessToken, now.Add(h.p.cfg.AccessTokenLifetime).Round(time.Second))
	sess.SetExpiresAt(fosite.RefreshToken, now.Add(h.p.cfg.RefreshTokenLifetime).Round(time.Second))
	sess.SetExpiresAt(fosite.IDToken, now.Add(h.p.cfg.IDTokenLifetime).Round(time.Second))
	return nil
}

// PopulateTokenEndpointResponse issues the tokens.
func (h *mfaGrant) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	atSignature, err := h.helper.IssueAccessToken(ctx, h.p.cfg.AccessTokenLifetime, ar, resp)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	if ar.GetGrantedScopes().Has("offline_access") {
		rt, rtSignature, err := h.refresh.GenerateRefreshToken(ctx, ar)
		if err != nil {
			return fosite.ErrServerError.WithWrap(err)
		}
		if err := h.store.CreateRefreshTokenSession(ctx, rtSignature, atSignature, ar.Sanitize(nil)); err != nil {
			return storageFault(err)
		}
		resp.SetExtra("refresh_token", rt)
	}
	if ar.GetGrantedScopes().Has("openid") {
		idToken, err := h.idTokens.GenerateIDToken(ctx, h.p.cfg.IDTokenLifetime, ar)
		if err != nil {
			return fosite.ErrServerError.WithWrap(err)
		}
		resp.SetExtra("id_token", idToken)
	}
	return nil
}

var _ fosite.TokenEndpointHandler = (*mfaGrant)(nil)
