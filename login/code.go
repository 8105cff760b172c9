package login

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/templates"
)

// codeURL is the code page for request req, with the channel the code went
// by and an optional state ("sent": a new code was sent; "wait": none could
// be sent yet).
func codeURL(req string, ch notify.Channel, state string) string {
	q := url.Values{"via": {string(ch)}}
	if req != "" {
		q.Set("req", req)
	}
	if state != "" {
		q.Set("state", state)
	}
	return CodePath + "?" + q.Encode()
}

func channelOf(s string) notify.Channel {
	if s == string(notify.SMS) {
		return notify.SMS
	}
	return notify.Email
}

// codePage fills the code page for u.
func (h *Handler) codePage(w http.ResponseWriter, r *http.Request, u *storage.User, req string, ch notify.Channel) (templates.CodePage, error) {
	if ch == notify.SMS && !account.CanUseSMS(u) {
		ch = notify.Email
	}
	dest := u.Email
	if ch == notify.SMS {
		dest = u.Phone
	}
	app, err := h.appIfPending(r.Context(), req)
	if err != nil {
		return templates.CodePage{}, err
	}
	return templates.CodePage{
		CSRF: h.csrfToken(w, r), Req: req, Channel: string(ch), CanSMS: account.CanUseSMS(u),
		Destination: account.Mask(dest, ch), Minutes: h.accounts.CodeMinutes(), App: app,
		RememberFor: h.rememberFor(), Remember: r.PostForm.Get("remember") == "1",
	}, nil
}

// setWait tells the code page that no code can be sent for d: the resend
// buttons are disabled, the script counts down, and the text says when the
// wait ends.
func (h *Handler) setWait(page *templates.CodePage, d time.Duration) {
	page.Wait, page.WaitSeconds, page.WaitUntil = h.waitFor(d)
	page.ReloadURL = codeURL(page.Req, channelOf(page.Channel), "")
}

// waitFor describes a wait of d: in words ("45 seconds"), in whole seconds
// (for the script's countdown), and when it ends ("14:32:05 UTC").
func (h *Handler) waitFor(d time.Duration) (words string, secs int, until string) {
	secs = retrySeconds(d)
	return humanWait(d), secs, h.cfg.Now().Add(time.Duration(secs) * time.Second).UTC().Format("15:04:05 UTC")
}

// codeForm serves GET /login/code: the second sign-in step, for a browser
// whose password was accepted.
func (h *Handler) codeForm(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	req := validReq(q.Get("req"))
	_, u, _, err := h.halfSignedIn(r)
	if err != nil {
		return err
	}
	if u == nil {
		return redirect(w, r, loginURL(req))
	}
	page, err := h.codePage(w, r, u, req, channelOf(q.Get("via")))
	if err != nil {
		return err
	}
	switch q.Get("state") {
	case "sent":
		page.Notice = "We sent you a new code."
	case "wait":
		page.Notice = "We could not send you a code: too many were sent to you in the last minutes. Ask for a new code below once the wait is over."
		if secs, err := strconv.Atoi(q.Get("retry")); err == nil && secs > 0 && secs <= 3600 {
			h.setWait(&page, time.Duration(secs)*time.Second)
		}
	}
	return h.render(w, http.StatusOK, "code.html", page)
}

// checkCode serves POST /login/code: the right code completes the sign-in
// with a new session (new ID again) whose methods are pwd and otp.
func (h *Handler) checkCode(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	if err := h.checkCSRF(r); err != nil {
		return err
	}
	rawReq, err := field(r.PostForm, "req")
	if err != nil {
		return err
	}
	code, err := field(r.PostForm, "code")
	if err != nil {
		return err
	}
	req := validReq(rawReq)
	ctx := h.withAuditClient(r.Context(), req)
	ls, u, binding, err := h.halfSignedIn(r)
	if err != nil {
		return err
	}
	if u == nil {
		return redirect(w, r, loginURL(req))
	}
	if _, ok := account.NormalizeCode(code); !ok {
		// Not a guess: told apart, and not counted.
		page, err := h.codePage(w, r, u, req, channelOf(r.PostForm.Get("via")))
		if err != nil {
			return err
		}
		page.Error, page.Code = msgCodeShape, clip(code)
		return h.render(w, http.StatusBadRequest, "code.html", page)
	}
	done, wait, ok := h.attempt(r)
	if !ok {
		return h.tooMany(w, wait)
	}
	err = h.accounts.CheckOTP(ctx, u.ID, binding, code)
	var locked *account.LockedError
	done(errors.As(err, &locked) || account.IsCodeFailure(err))
	switch {
	case err == nil:
		if err := h.completeCodeStep(ctx, w, r, ls); err != nil {
			return err
		}
		if err := h.rememberBrowser(ctx, w, r, u.ID); err != nil {
			return err
		}
		h.log.InfoContext(ctx, "login: signed in", "subject", u.ID, "amr", strings.Join(append(ls.AMR, "otp"), " "))
		h.codeStepEnded(ls, "success")
		return h.afterSignIn(w, r, req)
	case errors.As(err, &locked):
		h.codeStepEnded(ls, "locked")
		return h.codeLocked(w, r, u.ID, req, locked)
	case account.IsCodeFailure(err):
		h.codeStepEnded(ls, "wrong_code")
		page, perr := h.codePage(w, r, u, req, channelOf(r.PostForm.Get("via")))
		if perr != nil {
			return perr
		}
		page.Error, page.Code = "That code is not right. Check it and try again.", clip(code)
		if errors.Is(err, account.ErrCodeDead) {
			page.Error = "This code no longer works: it expired or was entered wrongly too often. Send a new code."
		}
		return h.render(w, http.StatusUnauthorized, "code.html", page)
	default:
		return err
	}
}

// msgCodeShape answers a code that is not six digits (spaces and dashes
// aside).
const msgCodeShape = "Enter the 6-digit code from the message (spaces and dashes are fine)."

// codeLocked ends the half-signed-in session of a user whose code step is
// locked by wrong codes and shows the sign-in page saying how long to wait.
func (h *Handler) codeLocked(w http.ResponseWriter, r *http.Request, userID, req string, locked *account.LockedError) error {
	ctx := r.Context()
	if err := h.endSession(ctx, w, r); err != nil {
		return err
	}
	h.log.InfoContext(ctx, "login: code step locked", "subject", userID)
	app, err := h.appIfPending(ctx, req)
	if err != nil {
		return err
	}
	return h.render(w, http.StatusUnauthorized, "login.html", templates.LoginPage{
		CSRF: h.csrfToken(w, r), Req: req, App: app,
		Error: "Too many wrong codes. Wait " + humanWait(locked.Until.Sub(h.cfg.Now())) + " before signing in again, or reset your password.",
	})
}

// resendCode serves POST /login/code/resend: a new code, by email or SMS.
func (h *Handler) resendCode(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	if err := h.checkCSRF(r); err != nil {
		return err
	}
	rawReq, err := field(r.PostForm, "req")
	if err != nil {
		return err
	}
	rawCh, err := field(r.PostForm, "channel")
	if err != nil {
		return err
	}
	req := validReq(rawReq)
	_, u, binding, err := h.halfSignedIn(r)
	if err != nil {
		return err
	}
	if u == nil {
		return redirect(w, r, loginURL(req))
	}
	ch := channelOf(rawCh)
	_, err = h.accounts.StartOTP(h.withAuditClient(r.Context(), req), u.ID, binding, ch)
	var rl *account.RateLimitError
	var ve *account.ValidationError
	var locked *account.LockedError
	switch {
	case err == nil:
		return redirect(w, r, codeURL(req, ch, "sent"))
	case errors.As(err, &locked):
		return h.codeLocked(w, r, u.ID, req, locked)
	case errors.As(err, &rl):
		page, err := h.codePage(w, r, u, req, ch)
		if err != nil {
			return err
		}
		h.setWait(&page, rl.RetryAfter)
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(rl.RetryAfter)))
		return h.render(w, http.StatusTooManyRequests, "code.html", page)
	case errors.As(err, &ve):
		page, err := h.codePage(w, r, u, req, notify.Email)
		if err != nil {
			return err
		}
		page.Error = ve.Message
		return h.render(w, http.StatusBadRequest, "code.html", page)
	default:
		return err
	}
}

// retrySeconds is a wait in whole seconds, at least 1, for Retry-After.
func retrySeconds(d time.Duration) int {
	return max(int(math.Ceil(d.Seconds())), 1)
}
