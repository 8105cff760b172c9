package login

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
)

// tokenBytes is the entropy of session IDs and CSRF cookies.
const tokenBytes = 32

// newToken returns 32 random bytes, base64url without padding (43 chars).
func newToken() string {
	b := make([]byte, tokenBytes)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// validToken reports whether s has the form newToken makes, so that
// garbage cookies never reach the database.
func validToken(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil
}

// hashToken is what the database keeps of a session ID: SHA-256, in hex.
func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// SignedIn implements provider.Browser: it returns who is signed in on r's
// session cookie. No cookie, a malformed or unknown one, an expired session,
// a deleted or disabled user, or a session older than the user's last
// password change all mean nobody (false, nil). An error means the database
// could not answer.
func (h *Handler) SignedIn(r *http.Request) (provider.SignIn, bool, error) {
	ls, u, err := h.current(r)
	if err != nil || ls == nil {
		return provider.SignIn{}, false, err
	}
	return provider.SignIn{Subject: ls.Subject, AuthTime: ls.AuthTime, AMR: slices.Clone(ls.AMR), IDP: ls.IDP, User: u}, true, nil
}

// current returns r's live session and its user, or nils when there is none.
func (h *Handler) current(r *http.Request) (*storage.LoginSession, *storage.User, error) {
	c, err := r.Cookie(h.sessionCookie)
	if err != nil || !validToken(c.Value) {
		return nil, nil, nil
	}
	// A session whose user is gone is not found either.
	ls, u, err := h.store.LoginSessionUser(r.Context(), hashToken(c.Value))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("login: read session: %w", err)
	}
	if !h.cfg.Now().Before(ls.ExpiresAt) || ls.Stage != storage.SessionComplete {
		return nil, nil, nil
	}
	if u.Disabled || (u.PasswordChangedAt.Valid && u.PasswordChangedAt.Time.After(ls.AuthTime)) {
		return nil, nil, nil
	}
	return ls, u, nil
}

// SignOut implements provider.Browser: the end-session endpoint signs the
// browser out through it.
func (h *Handler) SignOut(w http.ResponseWriter, r *http.Request) error {
	return h.endSession(r.Context(), w, r)
}

// halfSignedIn returns r's session waiting for its one-time code, and its
// user, or nils when there is none.
func (h *Handler) halfSignedIn(r *http.Request) (*storage.LoginSession, *storage.User, string, error) {
	c, err := r.Cookie(h.sessionCookie)
	if err != nil || !validToken(c.Value) {
		return nil, nil, "", nil
	}
	ls, u, err := h.store.LoginSessionUser(r.Context(), hashToken(c.Value))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, "", nil
	} else if err != nil {
		return nil, nil, "", fmt.Errorf("login: read session: %w", err)
	}
	if ls.Stage != storage.SessionOTP || !h.cfg.Now().Before(ls.ExpiresAt) || u.Disabled {
		return nil, nil, "", nil
	}
	return ls, u, ls.IDHash, nil
}

// startSession signs subject in on this browser with a new random session
// ID. The session the browser had, if any, is deleted: a session ID is never
// carried across a sign-in (no fixation).
//
// Every caller has just checked the user's password in this browser, so the
// browser becomes (or stays) a device trusted for the account: it gets or
// keeps its device cookie (see account.RememberDevice).
func (h *Handler) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, subject string, amr []string) error {
	if _, err := h.newSession(ctx, w, r, subject, amr, storage.SessionComplete, h.cfg.SessionLifetime); err != nil {
		return err
	}
	tok, err := h.accounts.RememberDevice(ctx, subject, h.deviceToken(r), cleanUserAgent(r.UserAgent()))
	if err != nil {
		return err
	}
	http.SetCookie(w, h.cookie(h.deviceCookie, tok, int(h.accounts.DeviceLifetime().Seconds())))
	return nil
}

// deviceToken returns the browser's device token ("" for none).
func (h *Handler) deviceToken(r *http.Request) string {
	c, err := r.Cookie(h.deviceCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// otpSessionLifetime bounds a session that waits for its one-time code.
const otpSessionLifetime = 15 * time.Minute

// newSession replaces the browser's session by a new one of stage and
// returns its ID hash.
func (h *Handler) newSession(ctx context.Context, w http.ResponseWriter, r *http.Request, subject string, amr []string, stage string, life time.Duration) (string, error) {
	if err := h.dropSession(ctx, r); err != nil {
		return "", err
	}
	tok := newToken()
	now := h.cfg.Now()
	ls := &storage.LoginSession{
		IDHash:    hashToken(tok),
		Subject:   subject,
		AuthTime:  now,
		AMR:       amr,
		UserAgent: cleanUserAgent(r.UserAgent()),
		Stage:     stage,
		ExpiresAt: now.Add(life),
	}
	if err := h.store.CreateLoginSession(ctx, ls); err != nil {
		return "", fmt.Errorf("login: start session: %w", err)
	}
	maxAge := int(life.Seconds())
	if stage != storage.SessionComplete {
		maxAge = 0
	}
	http.SetCookie(w, h.cookie(h.sessionCookie, tok, maxAge))
	return ls.IDHash, nil
}

// endSession deletes the browser's session and clears its cookie.
func (h *Handler) endSession(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if err := h.dropSession(ctx, r); err != nil {
		return err
	}
	http.SetCookie(w, h.cookie(h.sessionCookie, "", -1))
	return nil
}

// dropSession deletes the session named by r's cookie, if any.
func (h *Handler) dropSession(ctx context.Context, r *http.Request) error {
	c, err := r.Cookie(h.sessionCookie)
	if err != nil || !validToken(c.Value) {
		return nil
	}
	if err := h.store.DeleteLoginSession(ctx, hashToken(c.Value)); err != nil {
		return fmt.Errorf("login: end session: %w", err)
	}
	return nil
}

// cookie builds one of our cookies: host-only, Path=/, HttpOnly,
// SameSite=Lax, Secure on https. maxAge 0 makes a browser-session cookie,
// a negative one deletes the cookie.
func (h *Handler) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   h.secure,
		SameSite: http.SameSiteLaxMode,
	}
}

const maxUserAgent = 512

// cleanUserAgent keeps a user agent fit to store: valid UTF-8, no control
// characters (PostgreSQL refuses NUL), at most 512 bytes.
func cleanUserAgent(ua string) string {
	ua = strings.ToValidUTF8(ua, "")
	ua = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, ua)
	for len(ua) > maxUserAgent {
		_, size := utf8.DecodeLastRuneInString(ua)
		ua = ua[:len(ua)-size]
	}
	return ua
}
