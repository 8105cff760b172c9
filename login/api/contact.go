package api

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/storage"
)

// PicturePath is the picture route; the server's 1 MiB body limit leaves it
// to the handler, which allows a 1 MiB picture plus a multipart envelope.
const PicturePath = Prefix + "/account/picture"

// maxPictureUpload bounds a picture upload's body.
const maxPictureUpload = account.MaxAvatarBytes + 64<<10

// putPicture sets the picture from the body: the image itself (image/png,
// image/jpeg or image/webp) or a multipart form with one field "file". The
// image is checked and re-encoded by login/account, as on the page.
func (h *Handler) putPicture(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := h.setPicture(w, r, c.user.ID); err != nil {
		return err
	}
	u, err := h.accounts.Get(r.Context(), c.user.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.accountOf(u))
	return nil
}

// setPicture reads a picture upload (see putPicture) and makes it userID's.
func (h *Handler) setPicture(w http.ResponseWriter, r *http.Request, userID string) error {
	tooBig := problem(http.StatusRequestEntityTooLarge, "too-large", "The picture must be at most 1 MiB.")
	r.Body = http.MaxBytesReader(w, r.Body, maxPictureUpload)
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var data []byte
	switch {
	case err != nil:
		return problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Send the image (image/png, image/jpeg or image/webp) or a multipart form with a field file.")
	case ct == "multipart/form-data":
		if err := r.ParseMultipartForm(maxPictureUpload); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return tooBig
			}
			return problem(http.StatusBadRequest, "malformed", "The multipart form could not be read.")
		}
		files := r.MultipartForm.File["file"]
		if len(files) != 1 {
			return invalid(FieldError{Field: "file", Message: "send exactly one picture"})
		}
		if files[0].Size > account.MaxAvatarBytes {
			return tooBig
		}
		f, err := files[0].Open()
		if err != nil {
			return problem(http.StatusBadRequest, "malformed", "The picture could not be read.")
		}
		defer f.Close()
		if data, err = io.ReadAll(io.LimitReader(f, account.MaxAvatarBytes+1)); err != nil {
			return problem(http.StatusBadRequest, "malformed", "The picture could not be read.")
		}
	case ct == "image/png" || ct == "image/jpeg" || ct == "image/webp":
		if data, err = io.ReadAll(r.Body); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return tooBig
			}
			return problem(http.StatusBadRequest, "malformed", "The picture could not be read.")
		}
	default:
		return problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Send the image (image/png, image/jpeg or image/webp) or a multipart form with a field file.")
	}
	if len(data) > account.MaxAvatarBytes {
		return tooBig
	}
	if err := h.accounts.SetAvatar(r.Context(), userID, data); err != nil {
		var ve *account.ValidationError
		if errors.As(err, &ve) {
			return invalid(FieldError{Field: "file", Message: ve.Message})
		}
		return err
	}
	return nil
}

func (h *Handler) deletePicture(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := h.accounts.RemoveAvatar(r.Context(), c.user.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type phoneRequest struct {
	PhoneNumber string `json:"phone_number"`
}

// Sent says where a code went and until when it works.
type Sent struct {
	Destination string    `json:"destination"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// startPhone texts a code to a new number; the number counts only once
// verified (POST /account/phone/verify).
func (h *Handler) startPhone(w http.ResponseWriter, r *http.Request, c *caller) error {
	var in phoneRequest
	if p := decode(w, r, &in); p != nil {
		return p
	}
	var f fields
	f.require("phone_number", in.PhoneNumber, 32, "+ and 8 to 15 digits, as in +14155550100")
	if p := f.problem(); p != nil {
		return p
	}
	sent, err := h.accounts.StartPhoneVerification(r.Context(), c.user.ID, in.PhoneNumber)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, Sent{Destination: sent.Destination, ExpiresAt: sent.ExpiresAt.UTC()})
	return nil
}

type codeRequest struct {
	Code string `json:"code"`
}

// checkCode decodes a {code} body and runs check with it, admitted against
// the client IP's failure budget first (a wrong or dead code is a
// failure); from says where the code came from, for the message.
func (h *Handler) checkCode(w http.ResponseWriter, r *http.Request, from string, check func(code string) error) error {
	var in codeRequest
	if p := decode(w, r, &in); p != nil {
		return p
	}
	var f fields
	f.require("code", in.Code, maxCodeBytes, "the 6-digit code from the "+from)
	if p := f.problem(); p != nil {
		return p
	}
	done, err := h.attempt(r)
	if err != nil {
		return err
	}
	err = check(in.Code)
	done(account.IsCodeFailure(err))
	return err
}

// verifyPhone checks the texted code; the number then becomes the
// account's, verified.
func (h *Handler) verifyPhone(w http.ResponseWriter, r *http.Request, c *caller) error {
	err := h.checkCode(w, r, "text", func(code string) error { return h.accounts.VerifyPhone(r.Context(), c.user.ID, code) })
	if err != nil {
		return err
	}
	u, err := h.accounts.Get(r.Context(), c.user.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.accountOf(u))
	return nil
}

type emailRequest struct {
	Email string `json:"email"`
}

// startEmail mails a code to a new address; the address counts only once
// verified (POST /account/email/verify). A taken address gets the same
// answer (its owner is told instead), as at registration.
func (h *Handler) startEmail(w http.ResponseWriter, r *http.Request, c *caller) error {
	var in emailRequest
	if p := decode(w, r, &in); p != nil {
		return p
	}
	var f fields
	f.require("email", in.Email, maxEmailBytes, "")
	if p := f.problem(); p != nil {
		return p
	}
	sent, err := h.accounts.StartEmailChange(r.Context(), c.user.ID, in.Email)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, Sent{Destination: sent.Destination, ExpiresAt: sent.ExpiresAt.UTC()})
	return nil
}

// verifyEmail checks the mailed code; the new address then becomes the
// account's, verified, and the old one is told.
func (h *Handler) verifyEmail(w http.ResponseWriter, r *http.Request, c *caller) error {
	var u *storage.User
	err := h.checkCode(w, r, "mail", func(code string) (err error) {
		u, err = h.accounts.VerifyEmailChange(r.Context(), c.user.ID, code)
		return err
	})
	if errors.Is(err, account.ErrEmailTaken) {
		return problem(http.StatusConflict, "conflict", "The address was taken meanwhile; choose another.")
	} else if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.accountOf(u))
	return nil
}
