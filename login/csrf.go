package login

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
)

// CSRF protection: each browser gets a random cookie (torii_csrf, HttpOnly,
// SameSite=Lax, __Host- on https), and every form carries
// base64url(HMAC-SHA256(key, cookie value)). A POST whose token does not
// match its own cookie is refused before anything changes. A site that
// cannot read our cookies cannot make the token, and a token taken from one
// browser does not work with another browser's cookie.

// csrfMAC returns the token for a CSRF cookie value.
func (h *Handler) csrfMAC(cookieValue string) []byte {
	m := hmac.New(sha256.New, h.csrfKey)
	m.Write([]byte(cookieValue))
	return m.Sum(nil)
}

// csrfToken returns the form token for this browser, setting the CSRF
// cookie first when the browser has none (or a malformed one).
func (h *Handler) csrfToken(w http.ResponseWriter, r *http.Request) string {
	var value string
	if c, err := r.Cookie(h.csrfCookie); err == nil && validToken(c.Value) {
		value = c.Value
	} else {
		value = newToken()
		http.SetCookie(w, h.cookie(h.csrfCookie, value, 0))
	}
	return base64.RawURLEncoding.EncodeToString(h.csrfMAC(value))
}

// checkCSRF checks the "csrf" field of a parsed POST form against the
// browser's CSRF cookie; a missing or wrong token is errFormExpired (403).
func (h *Handler) checkCSRF(r *http.Request) error {
	c, err := r.Cookie(h.csrfCookie)
	if err != nil || !validToken(c.Value) {
		return errFormExpired
	}
	vals := r.PostForm["csrf"]
	if len(vals) != 1 {
		return errFormExpired
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(vals[0])
	if err != nil || !hmac.Equal(got, h.csrfMAC(c.Value)) {
		return errFormExpired
	}
	return nil
}

// maxFormBytes bounds the body of our forms (the router's own limit is
// larger).
const maxFormBytes = 64 << 10

// parseForm reads a POST body into r.PostForm: a body over maxFormBytes is
// errTooLarge (413), a malformed one errBadRequest.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errTooLarge
		}
		return errBadRequest
	}
	return nil
}

// field returns the single value of a form field ("" when absent); a field
// sent twice is errBadRequest, so no value can be smuggled past a check.
func field(form url.Values, name string) (string, error) {
	switch vals := form[name]; len(vals) {
	case 0:
		return "", nil
	case 1:
		return vals[0], nil
	default:
		return "", errBadRequest
	}
}
