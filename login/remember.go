package login

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// Remembered devices (account.RememberBrowser): the code page offers "Don't
// ask for a code on this device for …" when Torii asks for a code on every
// sign-in (TORII_OTP=always) and TORII_REMEMBER_DEVICE is not 0. A browser
// whose cookie names a live remembered device of the user who just typed
// the right password skips the code step, unless the relying party asked
// for a second factor (acr_values=mfa): never the password.

// rememberFor is the code page's "for 30 days", or "" when the choice is
// not offered.
func (h *Handler) rememberFor() string {
	d := h.accounts.RememberLifetime()
	if d <= 0 || h.cfg.OTP != OTPAlways {
		return ""
	}
	return lifetimeWords(d)
}

// lifetimeWords says d in whole days when it is whole days, else in hours
// (rounded up).
func lifetimeWords(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day && d%day == 0 {
		if n := int(d / day); n != 1 {
			return strconv.Itoa(n) + " days"
		}
		return "1 day"
	}
	n := int((d + time.Hour - 1) / time.Hour)
	if n == 1 {
		return "1 hour"
	}
	return strconv.Itoa(n) + " hours"
}

// rememberToken returns the browser's remembered-device token ("" for
// none).
func (h *Handler) rememberToken(r *http.Request) string {
	c, err := r.Cookie(h.rememberCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// rememberBrowser honours the code page's choice after a right code: a
// new remembered device and its cookie, living as long as the device. It
// does nothing when the choice is off (a posted choice is then ignored).
func (h *Handler) rememberBrowser(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string) error {
	if r.PostForm.Get("remember") != "1" || h.rememberFor() == "" {
		return nil
	}
	tok, err := h.accounts.RememberBrowser(ctx, userID, cleanUserAgent(r.UserAgent()))
	if err != nil {
		return err
	}
	http.SetCookie(w, h.cookie(h.rememberCookie, tok, int(h.accounts.RememberLifetime().Seconds())))
	h.log.InfoContext(ctx, "login: device remembered", "subject", userID)
	return nil
}

// skipsCode reports whether this browser may skip the code step for
// userID, who just typed the right password: the code step is the
// server's rule (TORII_OTP=always), not the relying party's (mfaAsked is
// false), and the browser carries a live remembered device of userID's.
func (h *Handler) skipsCode(ctx context.Context, r *http.Request, userID string, mfaAsked bool) (bool, error) {
	if mfaAsked || h.rememberFor() == "" {
		return false, nil
	}
	return h.accounts.Remembered(ctx, userID, h.rememberToken(r))
}

// forgetRememberCookie deletes the browser's remembered-device cookie,
// once its device is forgotten (the cookie alone would do nothing).
func (h *Handler) forgetRememberCookie(w http.ResponseWriter) {
	http.SetCookie(w, h.cookie(h.rememberCookie, "", -1))
}
