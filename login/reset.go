package login

import (
	"errors"
	"net/http"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/templates"
)

// forgotForm serves GET /forgot.
func (h *Handler) forgotForm(w http.ResponseWriter, r *http.Request) error {
	return h.render(w, http.StatusOK, "forgot.html", templates.ForgotPage{CSRF: h.csrfToken(w, r)})
}

// forgot serves POST /forgot: the same answer whether or not the address
// has an account.
func (h *Handler) forgot(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	if err := h.checkCSRF(r); err != nil {
		return err
	}
	email, err := field(r.PostForm, "email")
	if err != nil {
		return err
	}
	if len(email) > maxEmailBytes {
		return h.render(w, http.StatusBadRequest, "forgot.html", templates.ForgotPage{CSRF: h.csrfToken(w, r), Error: "The email address is too long."})
	}
	err = h.accounts.RequestPasswordReset(r.Context(), email)
	var ve *account.ValidationError
	if errors.As(err, &ve) {
		return h.render(w, http.StatusBadRequest, "forgot.html", templates.ForgotPage{CSRF: h.csrfToken(w, r), Error: ve.Message, Email: clip(email)})
	} else if err != nil {
		return err
	}
	return h.render(w, http.StatusOK, "message.html", templates.MessagePage{
		Title:   "Check your mail",
		Message: "If an account uses this address, we sent it a link to choose a new password. The link works once, for 30 minutes.",
		LinkURL: LoginPath, LinkText: "Back to sign-in",
	})
}

var linkInvalidPage = templates.MessagePage{
	Title:   "This link no longer works",
	Message: "The link was already used, was replaced by a newer one, or expired. Ask for a new one.",
	LinkURL: ForgotPath, LinkText: "Ask for a new link",
}

// resetForm serves GET /reset?token=.
func (h *Handler) resetForm(w http.ResponseWriter, r *http.Request) error {
	token := r.URL.Query().Get("token")
	if len(token) > 128 {
		h.failed(r)
		return h.render(w, http.StatusBadRequest, "message.html", linkInvalidPage)
	}
	email, err := h.accounts.ResetAccount(r.Context(), token)
	if errors.Is(err, account.ErrLinkInvalid) {
		h.failed(r)
		return h.render(w, http.StatusBadRequest, "message.html", linkInvalidPage)
	} else if err != nil {
		return err
	}
	return h.render(w, http.StatusOK, "reset.html", templates.ResetPage{CSRF: h.csrfToken(w, r), Token: token, Email: email})
}

// reset serves POST /reset: the new password, then the sign-in page (no
// automatic sign-in; every session and refresh token of the account ends).
func (h *Handler) reset(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	if err := h.checkCSRF(r); err != nil {
		return err
	}
	vals := map[string]string{}
	for _, name := range []string{"token", "password", "password2"} {
		v, err := field(r.PostForm, name)
		if err != nil {
			return err
		}
		vals[name] = v
	}
	if len(vals["token"]) > 128 {
		return h.render(w, http.StatusBadRequest, "message.html", linkInvalidPage)
	}
	page := templates.ResetPage{CSRF: h.csrfToken(w, r), Token: vals["token"], Errors: map[string]string{}}
	email, err := h.accounts.ResetAccount(r.Context(), vals["token"])
	if errors.Is(err, account.ErrLinkInvalid) {
		h.failed(r)
		return h.render(w, http.StatusBadRequest, "message.html", linkInvalidPage)
	} else if err != nil {
		return err
	}
	page.Email = email
	// Every problem at once: the policy's and the repeat's.
	if len(vals["password"]) > maxPasswordBytes {
		page.Errors["password"] = "The password must have at most 128 characters."
	} else if err := h.accounts.CheckPassword(vals["password"]); err != nil {
		var ve *account.ValidationError
		if !errors.As(err, &ve) {
			return err
		}
		page.Errors["password"] = ve.Message
	}
	switch {
	case vals["password2"] == "" && vals["password"] != "":
		page.Errors["password2"] = "Enter the password again."
	case vals["password"] != vals["password2"]:
		page.Errors["password2"] = "The two passwords differ."
	}
	if len(page.Errors) > 0 {
		return h.render(w, http.StatusBadRequest, "reset.html", page)
	}
	err = h.accounts.ResetPassword(r.Context(), vals["token"], vals["password"])
	var ve *account.ValidationError
	switch {
	case err == nil:
		return redirect(w, r, LoginPath+"?done=reset")
	case errors.Is(err, account.ErrLinkInvalid):
		h.failed(r)
		return h.render(w, http.StatusBadRequest, "message.html", linkInvalidPage)
	case errors.As(err, &ve):
		page.Errors["password"] = ve.Message
		return h.render(w, http.StatusBadRequest, "reset.html", page)
	default:
		return err
	}
}
