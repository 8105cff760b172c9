package api

import (
	"errors"
	"net/http"

	"github.com/torii-idp/torii/login/account"
)

// Field limits of the public routes (bytes).
const (
	maxEmailBytes    = 320
	maxPasswordBytes = 1024
	maxNameBytes     = 800
	maxTokenBytes    = 256
	maxCodeBytes     = 64
)

type registerRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Username string `json:"username"`
	Name     string `json:"name"`
}

// register creates an unverified account and mails a code, exactly as the
// page does: a taken (or look-alike) address gets the same answer, and its
// owner is mailed instead.
func (h *Handler) register(w http.ResponseWriter, r *http.Request) error {
	var in registerRequest
	if p := decode(w, r, &in); p != nil {
		return p
	}
	var f fields
	f.require("email", in.Email, maxEmailBytes, "")
	f.require("password", in.Password, maxPasswordBytes, "")
	f.check("username", in.Username, maxEmailBytes)
	f.check("name", in.Name, maxNameBytes)
	if p := f.problem(); p != nil {
		return p
	}
	ticket, err := h.accounts.Register(r.Context(), account.NewUser{Email: in.Email, Password: in.Password, Username: in.Username, Name: in.Name})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"ticket": ticket})
	return nil
}

// verifyRegistration checks the mailed code of a registration ticket.
func (h *Handler) verifyRegistration(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Ticket string `json:"ticket"`
		Code   string `json:"code"`
	}
	if p := decode(w, r, &in); p != nil {
		return p
	}
	var f fields
	f.require("ticket", in.Ticket, maxTokenBytes, ticketWhat)
	f.require("code", in.Code, maxCodeBytes, "the 6-digit code from the mail")
	if p := f.problem(); p != nil {
		return p
	}
	done, err := h.attempt(r)
	if err != nil {
		return err
	}
	_, err = h.accounts.VerifyEmailCode(r.Context(), in.Ticket, in.Code)
	done(account.IsCodeFailure(err))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"email_verified": true})
	return nil
}

// ticketWhat says what a ticket is, for a missing one.
const ticketWhat = "the ticket the registration answered"

type resendRequest struct {
	Ticket string `json:"ticket"`
}

// resendVerification mails a new code for a registration ticket.
func (h *Handler) resendVerification(w http.ResponseWriter, r *http.Request) error {
	var in resendRequest
	if p := decode(w, r, &in); p != nil {
		return p
	}
	var f fields
	f.require("ticket", in.Ticket, maxTokenBytes, ticketWhat)
	if p := f.problem(); p != nil {
		return p
	}
	ticket, err := h.accounts.ResendVerification(r.Context(), in.Ticket)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"ticket": ticket})
	return nil
}

type forgotRequest struct {
	Email string `json:"email"`
}

// forgotPassword mails a reset link when the address has an account;
// the answer is 202 either way.
func (h *Handler) forgotPassword(w http.ResponseWriter, r *http.Request) error {
	var in forgotRequest
	if p := decode(w, r, &in); p != nil {
		return p
	}
	var f fields
	f.require("email", in.Email, maxEmailBytes, "")
	if p := f.problem(); p != nil {
		return p
	}
	if err := h.accounts.RequestPasswordReset(r.Context(), in.Email); err != nil {
		var ve *account.ValidationError
		if !errors.As(err, &ve) {
			return err
		}
		// A malformed address has no account: the same answer.
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "If the address has an account, a link is on its way."})
	return nil
}

type resetRequest struct {
	Token       string `json:"token"`
	NewPassword string `json:"new_password"`
}

// resetPassword sets a new password with the token of a mailed link.
func (h *Handler) resetPassword(w http.ResponseWriter, r *http.Request) error {
	var in resetRequest
	if p := decode(w, r, &in); p != nil {
		return p
	}
	var f fields
	f.require("token", in.Token, maxTokenBytes, "the token of the mailed link")
	f.require("new_password", in.NewPassword, maxPasswordBytes, "")
	if p := f.problem(); p != nil {
		return p
	}
	done, err := h.attempt(r)
	if err != nil {
		return err
	}
	err = h.accounts.ResetPassword(r.Context(), in.Token, in.NewPassword)
	done(errors.Is(err, account.ErrLinkInvalid))
	var ve *account.ValidationError
	if errors.As(err, &ve) && ve.Field == "password" {
		return invalid(FieldError{Field: "new_password", Message: ve.Message})
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
