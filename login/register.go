package login

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/templates"
)

// Field limits on the registration and reset forms (bytes); longer input is
// refused with a message, never a 500.
const (
	maxEmailBytes = 320
	maxNameBytes  = 800
)

// registerForm serves GET /register.
func (h *Handler) registerForm(w http.ResponseWriter, r *http.Request) error {
	req := validReq(r.URL.Query().Get("req"))
	return h.render(w, http.StatusOK, "register.html", templates.RegisterPage{CSRF: h.csrfToken(w, r), Req: req})
}

// register serves POST /register. A new address and a taken one get the
// same answer: the verification page (the owner of a taken address gets a
// mail instead of a code).
func (h *Handler) register(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	if err := h.checkCSRF(r); err != nil {
		return err
	}
	vals := map[string]string{}
	for _, name := range []string{"req", "email", "username", "name", "password", "password2"} {
		v, err := field(r.PostForm, name)
		if err != nil {
			return err
		}
		vals[name] = v
	}
	req := validReq(vals["req"])
	page := templates.RegisterPage{CSRF: h.csrfToken(w, r), Req: req, Email: vals["email"], Username: vals["username"],
		Name: vals["name"], Errors: map[string]string{}}
	// Every problem at once: the lengths first (no rule runs on a field
	// that is too long), then account's own rules, then the repeat.
	long := map[string]bool{}
	for _, f := range []struct {
		name string
		max  int
		msg  string
	}{
		{"email", maxEmailBytes, "The email address is too long."},
		{"username", maxEmailBytes, "The username is too long."},
		{"name", maxNameBytes, "The name is too long."},
		{"password", maxPasswordBytes, "The password must have at most 128 characters."},
	} {
		if len(vals[f.name]) > f.max {
			page.Errors[f.name], long[f.name] = f.msg, true
		}
	}
	for _, ve := range h.accounts.CheckRegistration(account.NewUser{
		Email: vals["email"], Username: vals["username"], Name: vals["name"], Password: vals["password"],
	}) {
		if !long[ve.Field] {
			page.Errors[ve.Field] = ve.Message
		}
	}
	switch {
	case vals["password2"] == "" && vals["password"] != "":
		page.Errors["password2"] = "Enter the password again."
	case vals["password"] != vals["password2"]:
		page.Errors["password2"] = "The two passwords differ."
	}
	if len(page.Errors) > 0 {
		page.Email, page.Username, page.Name = clip(page.Email), clip(page.Username), clip(page.Name)
		return h.render(w, http.StatusBadRequest, "register.html", page)
	}
	ticket, err := h.accounts.Register(r.Context(), account.NewUser{
		Email: vals["email"], Username: vals["username"], Name: vals["name"], Password: vals["password"],
	})
	var ve *account.ValidationError
	if errors.As(err, &ve) {
		page.Errors[ve.Field] = ve.Message
		if _, known := map[string]bool{"email": true, "username": true, "name": true, "password": true}[ve.Field]; !known {
			page.Errors["form"] = ve.Message
		}
		return h.render(w, http.StatusBadRequest, "register.html", page)
	} else if err != nil {
		return err
	}
	h.setVerifyTicket(w, ticket)
	return redirect(w, r, verifyURL(req, ""))
}

// clip shortens a refilled form value.
func clip(s string) string {
	if len(s) > 320 {
		return ""
	}
	return s
}

func verifyURL(req, state string) string {
	u := VerifyPath
	sep := "?"
	if req != "" {
		u += sep + "req=" + req
		sep = "&"
	}
	if state != "" {
		u += sep + "state=" + state
	}
	return u
}

// setVerifyTicket keeps the verification ticket in a short-lived cookie, not
// in the URL.
func (h *Handler) setVerifyTicket(w http.ResponseWriter, ticket string) {
	http.SetCookie(w, h.cookie(h.verifyCookie, ticket, int((30*time.Minute).Seconds())))
}

func (h *Handler) verifyTicket(r *http.Request) string {
	c, err := r.Cookie(h.verifyCookie)
	if err != nil || len(c.Value) < 40 || len(c.Value) > 64 {
		return ""
	}
	return c.Value
}

// startVerification sends an unverified user a fresh code and shows the
// verification page.
func (h *Handler) startVerification(w http.ResponseWriter, r *http.Request, userID, req string) error {
	ticket, err := h.accounts.StartEmailVerification(r.Context(), userID)
	var rl *account.RateLimitError
	if errors.As(err, &rl) {
		if h.verifyTicket(r) != "" {
			return redirect(w, r, verifyURL(req, "wait"))
		}
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(rl.RetryAfter)))
		return h.render(w, http.StatusTooManyRequests, "message.html", templates.MessagePage{
			Title:   "Confirm your email address first",
			Message: "We sent you a confirmation mail a moment ago. Use its code or link, or sign in again in " + humanWait(rl.RetryAfter) + " for a new one.",
		})
	} else if err != nil {
		return err
	}
	h.setVerifyTicket(w, ticket)
	return redirect(w, r, verifyURL(req, "unverified"))
}

// verifyForm serves GET /verify: the code page, or, with ?token=, the link
// from the mail.
func (h *Handler) verifyForm(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	req := validReq(q.Get("req"))
	ctx := r.Context()
	if token := q.Get("token"); token != "" {
		_, err := h.accounts.VerifyEmailLink(ctx, token)
		if errors.Is(err, account.ErrLinkInvalid) {
			h.failed(r)
			return h.render(w, http.StatusBadRequest, "message.html", templates.MessagePage{
				Title:   "This link no longer works",
				Message: "The confirmation link was already used, was replaced by a newer one, or expired. Sign in to get a new one.",
				LinkURL: LoginPath, LinkText: "Sign in",
			})
		} else if err != nil {
			return err
		}
		return h.render(w, http.StatusOK, "message.html", templates.MessagePage{
			Title: "Email address confirmed", Message: "Thank you: your email address is confirmed. You can now sign in.",
			LinkURL: LoginPath, LinkText: "Sign in",
		})
	}
	ticket := h.verifyTicket(r)
	dest := ""
	if ticket != "" {
		d, err := h.accounts.TicketEmail(ctx, ticket)
		if err != nil && !errors.Is(err, account.ErrCodeDead) {
			return err
		}
		dest = d
	}
	if dest == "" {
		return h.render(w, http.StatusBadRequest, "message.html", templates.MessagePage{
			Title:   "Confirmation expired",
			Message: "This confirmation has expired. Sign in to get a new code.",
			LinkURL: loginURL(req), LinkText: "Sign in",
		})
	}
	page := templates.VerifyPage{CSRF: h.csrfToken(w, r), Req: req, Destination: dest}
	switch q.Get("state") {
	case "sent":
		page.Notice = "We sent you a new code and link."
	case "unverified":
		page.Notice = "Your email address is not confirmed yet: we sent you a new code."
	case "wait":
		page.Notice = "A code was sent a moment ago: use the newest one you received."
	}
	return h.render(w, http.StatusOK, "verify.html", page)
}

// verify serves POST /verify: the code confirms the address; the person
// then signs in (no automatic sign-in).
func (h *Handler) verify(w http.ResponseWriter, r *http.Request) error {
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
	ctx := r.Context()
	ticket := h.verifyTicket(r)
	if ticket == "" {
		return redirect(w, r, verifyURL(req, ""))
	}
	if _, ok := account.NormalizeCode(code); !ok {
		dest, _ := h.accounts.TicketEmail(ctx, ticket)
		return h.render(w, http.StatusBadRequest, "verify.html", templates.VerifyPage{CSRF: h.csrfToken(w, r), Req: req,
			Destination: dest, Error: msgCodeShape, Code: clip(code)})
	}
	done, wait, ok := h.attempt(r)
	if !ok {
		return h.tooMany(w, wait)
	}
	_, err = h.accounts.VerifyEmailCode(ctx, ticket, code)
	done(account.IsCodeFailure(err))
	switch {
	case err == nil:
		http.SetCookie(w, h.cookie(h.verifyCookie, "", -1))
		target := LoginPath + "?done=verified"
		if req != "" {
			target += "&req=" + req
		}
		return redirect(w, r, target)
	case account.IsCodeFailure(err):
		dest, _ := h.accounts.TicketEmail(ctx, ticket)
		page := templates.VerifyPage{CSRF: h.csrfToken(w, r), Req: req, Destination: dest, Code: clip(code),
			Error: "That code is not right. Check it and try again."}
		if errors.Is(err, account.ErrCodeDead) {
			page.Error = "This code no longer works: it expired or was entered wrongly too often. Send a new code."
		}
		return h.render(w, http.StatusUnauthorized, "verify.html", page)
	default:
		return err
	}
}

// resendVerification serves POST /verify/resend.
func (h *Handler) resendVerification(w http.ResponseWriter, r *http.Request) error {
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
	req := validReq(rawReq)
	ctx := r.Context()
	ticket := h.verifyTicket(r)
	if ticket == "" {
		return redirect(w, r, verifyURL(req, ""))
	}
	next, err := h.accounts.ResendVerification(ctx, ticket)
	var rl *account.RateLimitError
	switch {
	case err == nil:
		h.setVerifyTicket(w, next)
		return redirect(w, r, verifyURL(req, "sent"))
	case errors.As(err, &rl):
		dest, _ := h.accounts.TicketEmail(ctx, ticket)
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(rl.RetryAfter)))
		page := templates.VerifyPage{CSRF: h.csrfToken(w, r), Req: req, Destination: dest}
		page.Wait, page.WaitSeconds, page.WaitUntil = h.waitFor(rl.RetryAfter)
		page.ReloadURL = verifyURL(req, "")
		return h.render(w, http.StatusTooManyRequests, "verify.html", page)
	case errors.Is(err, account.ErrCodeDead):
		return redirect(w, r, verifyURL(req, ""))
	default:
		return err
	}
}
