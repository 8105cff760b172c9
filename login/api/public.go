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
	var errs []FieldError
	if in.Email == "" {
		errs = append(errs, FieldError{Field: "email", Message: "is required"})
	}
	if in.Password == "" {
		errs = append(errs, FieldError{Field: "password", Message: "is required"})
	}
	errs = checkString(errs, "email", in.Email, maxEmailBytes)
	errs = checkString(errs, "password", in.Password, maxPasswordBytes)
	errs = checkString(errs, "username", in.Username, maxEmailBytes)
	errs = checkString(errs, "name", in.Name, maxNameBytes)
	if len(errs) > 0 {
		return invalid(errs...)
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
	if p := requireTicket(in.Ticket); p != nil {
		return p
	}
	if in.Code == "" || len(in.Code) > 64 {
		return invalid(FieldError{Field: "code", Message: "is required: the 6-digit code from the mail"})
	}
	done, err := h.attempt(r)
	if err != nil {
		return err
	}
	_, err = h.accounts.VerifyEmailCode(r.Context(), in.Ticket, in.Code)
	done(errors.Is(err, account.ErrCodeInvalid) || errors.Is(err, account.ErrCodeDead))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"email_verified": true})
	return nil
}

func requireTicket(t string) *Problem {
	if t == "" || len(t) > maxTokenBytes {
		return invalid(FieldError{Field: "ticket", Message: "is required: the ticket the registration answered"})
	}
	return nil
}

type resendRequest struct {
	Ticket string `json:"ticket"`
}

// resendVerification mails a new code for a registration ticket.
func (h *Handler) resendVerification(w http.ResponseWriter, r *http.Request) error {
	var in resendRequest
	if p := decode(w, r, &in); p != nil {
		return p
	}
	if p := requireTicket(in.Ticket); p != nil {
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
	errs := checkString(nil, "email", in.Email, maxEmailBytes)
	if in.Email == "" {
		errs = append(errs, FieldError{Field: "email", Message: "is required"})
	}
	if len(errs) > 0 {
		return invalid(errs...)
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
	var errs []FieldError
	if in.Token == "" || len(in.Token) > maxTokenBytes {
		errs = append(errs, FieldError{Field: "token", Message: "is required: the token of the mailed link"})
	}
	if in.NewPassword == "" {
		errs = append(errs, FieldError{Field: "new_password", Message: "is required"})
	}
	errs = checkString(errs, "new_password", in.NewPassword, maxPasswordBytes)
	if len(errs) > 0 {
		return invalid(errs...)
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
