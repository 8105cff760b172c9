package login

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/templates"
)

// Limits on the sign-in fields; longer input gets a 400 page.
const (
	maxUsernameBytes = 320
	maxPasswordBytes = 1024
	maxReqLen        = 128
)

// Messages shown next to the sign-in form's fields.
const (
	msgInvalidCredentials = "The username or password is incorrect."
	msgUsernameTooLong    = "The username is too long."
	msgPasswordTooLong    = "The password is too long."
	msgUsernameMissing    = "Enter your email address or username."
	msgPasswordMissing    = "Enter your password."
)

// validReq returns req when it can be a pending request ID (a short token
// of A-Z, a-z, 0-9, '_' and '-'), else "": a malformed req is ignored.
func validReq(req string) string {
	if req == "" || len(req) > maxReqLen {
		return ""
	}
	for i := 0; i < len(req); i++ {
		c := req[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return ""
		}
	}
	return req
}

// resumeURL is where the browser goes back to the provider for request req.
func resumeURL(req string) string {
	return provider.ResumePath + "?req=" + url.QueryEscape(req)
}

// loginURL is the sign-in page for request req ("" for none).
func loginURL(req string) string {
	if req == "" {
		return provider.LoginPath
	}
	return provider.LoginPath + "?req=" + url.QueryEscape(req)
}

// checkPending fails with errExpired unless req names an unexpired pending
// authorization request.
func (h *Handler) checkPending(ctx context.Context, req string) (*storage.AuthRequest, error) {
	ar, err := h.store.AuthRequest(ctx, req)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errExpired
	}
	if err != nil {
		return nil, err
	}
	return ar, nil
}

// loginForm serves GET /login.
func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) error {
	req := validReq(r.URL.Query().Get("req"))
	app, err := h.appOf(r.Context(), req)
	if err != nil {
		return err
	}
	page := templates.LoginPage{CSRF: h.csrfToken(w, r), Req: req, App: app}
	switch r.URL.Query().Get("done") {
	case "verified":
		page.Notice = "Your email address is confirmed. Sign in to continue."
	case "reset":
		page.Notice = "Your password was changed. Sign in with the new one."
	case "signed-out":
		page.Notice = "You are signed out."
	}
	return h.render(w, http.StatusOK, "login.html", page)
}

// appOf is the application of the pending request req as the pages show
// it, or nil for no request; errExpired when req is not pending.
func (h *Handler) appOf(ctx context.Context, req string) (*templates.App, error) {
	if req == "" {
		return nil, nil
	}
	_, c, err := h.pending(ctx, req)
	if err != nil {
		return nil, err
	}
	return appOfClient(c), nil
}

// appIfPending is appOf, but nil (not errExpired) for a request no longer
// pending: the code step goes on, and the provider answers the request.
func (h *Handler) appIfPending(ctx context.Context, req string) (*templates.App, error) {
	app, err := h.appOf(ctx, req)
	if errors.Is(err, errExpired) {
		return nil, nil
	}
	return app, err
}

// withAuditClient names the client of the pending request req in the
// audit events of the actions done with the returned context (the relying
// party a sign-in is for); without a pending request, ctx as it is.
func (h *Handler) withAuditClient(ctx context.Context, req string) context.Context {
	if req == "" {
		return ctx
	}
	ar, err := h.store.AuthRequest(ctx, req)
	if err != nil {
		return ctx
	}
	return storage.WithAuditClient(ctx, ar.ClientID)
}

// appOfClient is how the pages show a registered client.
func appOfClient(c *storage.Client) *templates.App {
	return &templates.App{Name: clientName(c), LogoURI: c.LogoURI}
}

// signIn serves POST /login. Every credential failure (unknown user, wrong
// password, locked or disabled account) gets the same 401 page.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	if err := h.checkCSRF(r); err != nil {
		return err
	}
	var vals [3]string
	for i, name := range []string{"req", "username", "password"} {
		v, err := field(r.PostForm, name)
		if err != nil {
			return err
		}
		vals[i] = v
	}
	req, username, password := validReq(vals[0]), vals[1], vals[2]
	ctx := h.withAuditClient(r.Context(), req)
	app, err := h.appOf(ctx, req)
	if err != nil {
		return err
	}
	page := templates.LoginPage{CSRF: h.csrfToken(w, r), Req: req, App: app, Username: clip(username), Errors: map[string]string{}}
	if len(username) > maxUsernameBytes {
		page.Errors["username"] = msgUsernameTooLong
	} else if strings.TrimSpace(username) == "" {
		page.Errors["username"] = msgUsernameMissing
	}
	if len(password) > maxPasswordBytes {
		page.Errors["password"] = msgPasswordTooLong
	} else if password == "" {
		page.Errors["password"] = msgPasswordMissing
	}
	if len(page.Errors) > 0 {
		return h.render(w, http.StatusBadRequest, "login.html", page)
	}
	// The client IP's failure budget, like the account's, admits the
	// attempt before the password is compared.
	done, wait, ok := h.attempt(r)
	if !ok {
		return h.tooMany(w, wait)
	}
	u, err := h.accounts.AuthenticateOnDevice(ctx, username, password, h.deviceToken(r))
	done(errors.Is(err, account.ErrInvalidCredentials))
	if errors.Is(err, account.ErrInvalidCredentials) {
		var locked *account.LockedError
		h.log.InfoContext(ctx, "login: sign-in failed", "locked", errors.As(err, &locked))
		page.Errors["password"] = msgInvalidCredentials
		if errors.As(err, &locked) {
			h.signInEnded("locked")
		} else {
			h.signInEnded("wrong_credentials")
		}
		if errors.As(err, &locked) {
			// Told for known and unknown names alike: account.Authenticate
			// locks login names without an account the same way.
			delete(page.Errors, "password")
			page.Error = "Too many failed attempts. Try again in " + humanWait(locked.Until.Sub(h.cfg.Now())) +
				", or reset your password."
		}
		return h.render(w, http.StatusUnauthorized, "login.html", page)
	}
	if err != nil {
		return err
	}
	if !u.EmailVerified {
		// An unverified account gets a fresh code and the verification
		// page, never a session.
		h.signInEnded("unverified")
		return h.startVerification(w, r, u.ID, req)
	}
	needCode, mfaAsked := h.cfg.OTP == OTPAlways, false
	if !needCode || h.rememberFor() != "" {
		if mfaAsked, err = h.mfaAsked(ctx, req); err != nil {
			return err
		}
		needCode = needCode || mfaAsked
	}
	if needCode {
		// A remembered device skips the server's code step, never one
		// the relying party asked for.
		skip, err := h.skipsCode(ctx, r, u.ID, mfaAsked)
		if err != nil {
			return err
		}
		if skip {
			h.log.InfoContext(ctx, "login: code step skipped: remembered device", "subject", u.ID)
		}
		needCode = !skip
	}
	if !needCode {
		if err := h.startSession(ctx, w, r, u.ID, []string{"pwd"}); err != nil {
			return err
		}
		h.log.InfoContext(ctx, "login: signed in", "subject", u.ID, "amr", "pwd")
		h.signInEnded("success")
		return h.afterSignIn(w, r, req)
	}
	// Half signed in: a new session (new ID: no fixation) that only
	// reaches the code page, and a code bound to it.
	binding, err := h.newSession(ctx, w, r, u.ID, []string{"pwd"}, storage.SessionOTP, otpSessionLifetime)
	if err != nil {
		return err
	}
	h.log.InfoContext(ctx, "login: password accepted, code step", "subject", u.ID)
	_, err = h.accounts.StartOTP(ctx, u.ID, binding, notify.Email)
	var rl *account.RateLimitError
	var locked *account.LockedError
	if errors.As(err, &locked) {
		h.signInEnded("locked")
		return h.codeLocked(w, r, u.ID, req, locked)
	} else if errors.As(err, &rl) {
		// Over the caps (a first code is not held back by the resend
		// interval): no code for this attempt, and the page says so and
		// when a new one can be asked for (an earlier attempt's code is
		// bound to a session that is gone and does not work here).
		return redirect(w, r, codeURL(req, notify.Email, "wait")+"&retry="+strconv.Itoa(retrySeconds(rl.RetryAfter)))
	} else if err != nil {
		return err
	}
	return redirect(w, r, codeURL(req, notify.Email, ""))
}

// afterSignIn sends a signed-in browser on: back to the provider for
// request req, or to the account page.
func (h *Handler) afterSignIn(w http.ResponseWriter, r *http.Request, req string) error {
	if req == "" {
		return redirect(w, r, AccountPath)
	}
	return redirect(w, r, resumeURL(req))
}

// mfaAsked reports whether the pending request req asks for a second
// factor (acr_values=mfa). The sign-in needs the one-time code in OTP mode
// "always" or when it does.
func (h *Handler) mfaAsked(ctx context.Context, req string) (bool, error) {
	if req == "" {
		return false, nil
	}
	ar, err := h.store.AuthRequest(ctx, req)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	form, err := url.ParseQuery(ar.Form)
	if err != nil {
		return false, nil
	}
	return slices.Contains(strings.Fields(form.Get("acr_values")), provider.ACRMFA), nil
}

// done serves GET /login/done: who is signed in, and a sign-out button.
func (h *Handler) done(w http.ResponseWriter, r *http.Request) error {
	_, u, err := h.current(r)
	if err != nil {
		return err
	}
	if u == nil {
		return redirect(w, r, provider.LoginPath)
	}
	return h.render(w, http.StatusOK, "done.html", templates.DonePage{User: u.Email, CSRF: h.csrfToken(w, r)})
}

// logout serves POST /logout: it ends the session and shows the sign-in
// page.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	if err := h.checkCSRF(r); err != nil {
		return err
	}
	ctx := r.Context()
	ls, _, err := h.current(r)
	if err != nil {
		return err
	}
	if err := h.endSession(ctx, w, r); err != nil {
		return err
	}
	if ls != nil {
		h.log.InfoContext(ctx, "login: signed out", "subject", ls.Subject)
	}
	return redirect(w, r, provider.LoginPath+"?done=signed-out")
}

// logoutForm serves GET /logout: "Sign out?" with a button (the provider's
// end-session endpoint sends browsers here when it cannot tell that the
// application's request is genuine).
func (h *Handler) logoutForm(w http.ResponseWriter, r *http.Request) error {
	_, u, err := h.current(r)
	if err != nil {
		return err
	}
	page := templates.LogoutPage{CSRF: h.csrfToken(w, r), CancelURL: provider.LoginPath}
	if u != nil {
		page.User, page.CancelURL = u.Email, AccountPath
	}
	return h.render(w, http.StatusOK, "logout.html", page)
}
