package login

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/templates"
)

// LoginPath is the sign-in page.
const LoginPath = provider.LoginPath

// accountNotices are the messages shown after an account action.
var accountNotices = map[string]string{
	"profile":           "Your profile was saved.",
	"avatar":            "Your picture was updated.",
	"avatar-remove":     "Your picture was removed.",
	"password":          "Your password was changed. Your other devices are signed out.",
	"phone":             "We sent a code by SMS to the new number. Enter it to confirm the number.",
	"phone-verify":      "Your phone number is confirmed.",
	"phone-remove":      "Your phone number was removed.",
	"session-end":       "That device is signed out.",
	"device-forget":     "That device is forgotten: it will be asked for a code at its next sign-in.",
	"app-revoke":        "The application no longer has access to your account.",
	"verify-email":      "We sent you a confirmation mail.",
	"already-recent":    "A code was sent a moment ago; wait a little before asking again.",
	"password-link":     "We mailed you a link to set a password. Follow it from this device or another.",
	"identity-linked":   "The provider is linked: you can sign in with it from now on.",
	"identity-unlinked": "The provider is unlinked: it no longer signs you in.",
	"identity-taken":    "That provider account is already linked to another account, so it was not linked to this one.",
}

// accountPage serves GET /account.
func (h *Handler) accountPage(w http.ResponseWriter, r *http.Request) error {
	ls, u, err := h.current(r)
	if err != nil {
		return err
	}
	if u == nil {
		return redirect(w, r, LoginPath)
	}
	page, err := h.accountData(w, r, ls, u)
	if err != nil {
		return err
	}
	page.Notice = accountNotices[r.URL.Query().Get("done")]
	return h.render(w, http.StatusOK, "account.html", page)
}

func (h *Handler) accountData(w http.ResponseWriter, r *http.Request, ls *storage.LoginSession, u *storage.User) (templates.AccountPage, error) {
	ctx := r.Context()
	page := templates.AccountPage{
		CSRF: h.csrfToken(w, r), UserID: u.ID, Email: u.Email, Username: u.PreferredUsername(), Name: u.Name, Bio: u.Bio,
		EmailVerified: u.EmailVerified, Phone: u.Phone, PhoneVerified: u.PhoneVerified, PendingPhone: u.PendingPhone,
		Errors: map[string]string{}, HasPassword: u.PasswordHash != "",
	}
	var err error
	if page.Identities, page.LinkProviders, err = h.identityLabels(ctx, u.ID); err != nil {
		return page, err
	}
	if u.AvatarETag != "" {
		page.AvatarURL = AvatarPrefix + url.PathEscape(u.ID) + "?v=" + url.QueryEscape(strings.Trim(u.AvatarETag, `"`))
	}
	now := h.cfg.Now()
	sessions, err := h.accounts.Sessions(ctx, u.ID)
	if err != nil {
		return page, err
	}
	for _, s := range sessions {
		page.Sessions = append(page.Sessions, templates.AccountSession{ID: s.IDHash, Name: deviceName(s.UserAgent),
			UserAgent: s.UserAgent, Since: relativeTime(now, s.CreatedAt), SinceAt: rfc3339(s.CreatedAt),
			SinceDate: dateWords(s.CreatedAt), Current: s.IDHash == ls.IDHash})
	}
	devices, err := h.accounts.RememberedDevices(ctx, u.ID)
	if err != nil {
		return page, err
	}
	thisDevice := account.RememberedDeviceID(h.rememberToken(r))
	for _, d := range devices {
		page.Devices = append(page.Devices, templates.AccountDevice{ID: d.ID, Name: deviceName(d.UserAgent), UserAgent: d.UserAgent,
			LastUsed: relativeTime(now, d.LastUsedAt), LastUsedAt: rfc3339(d.LastUsedAt), LastUsedDate: dateWords(d.LastUsedAt),
			Until: relativeTime(now, d.ExpiresAt), UntilAt: rfc3339(d.ExpiresAt), UntilDate: dateWords(d.ExpiresAt),
			Current: d.ID == thisDevice})
	}
	apps, err := h.accounts.Apps(ctx, u.ID)
	if err != nil {
		return page, err
	}
	for _, a := range apps {
		page.Apps = append(page.Apps, templates.AccountApp{ClientID: a.ClientID, Name: a.ClientName, Scopes: a.Scopes,
			Since: relativeTime(now, a.GrantedAt), SinceAt: rfc3339(a.GrantedAt), SinceDate: dateWords(a.GrantedAt)})
	}
	return page, nil
}

// maxAvatarUpload bounds the avatar form's body: the picture (at most
// account.MaxAvatarBytes) plus the form's own overhead.
const maxAvatarUpload = account.MaxAvatarBytes + 64<<10

// accountAction serves POST /account/ACTION. Every action needs a
// signed-in session and a CSRF token; each answers with 303 back to the
// account page, or with the page and the error next to its field. A wrong
// current password answers 403. The actions count failures (wrong
// password or code) against the client IP, and are behind the per-IP
// limits like the sign-in pages.
func (h *Handler) accountAction(w http.ResponseWriter, r *http.Request) error {
	action := mux.Vars(r)["action"]
	ls, u, err := h.current(r)
	if err != nil {
		return err
	}
	if u == nil {
		return redirect(w, r, LoginPath)
	}
	var avatar []byte
	if action == "avatar" {
		if avatar, err = readAvatar(w, r); err != nil {
			var ve *account.ValidationError
			if errors.As(err, &ve) {
				return h.accountError(w, r, ls, u, http.StatusRequestEntityTooLarge, "avatar", ve.Message)
			}
			return err
		}
	} else if err := parseForm(w, r); err != nil {
		return err
	}
	if err := h.checkCSRF(r); err != nil {
		return err
	}
	get := func(name string) (string, error) { return field(r.PostForm, name) }
	ctx := r.Context()
	var ve *account.ValidationError
	var rl *account.RateLimitError
	fieldErr := func(err error, fieldName string) error {
		switch {
		case errors.As(err, &ve):
			name := ve.Field
			if fieldName != "" {
				name = fieldName
			}
			return h.accountError(w, r, ls, u, http.StatusBadRequest, name, ve.Message)
		case errors.As(err, &rl):
			return redirect(w, r, AccountPath+"?done=already-recent")
		}
		return err
	}
	switch action {
	case "profile":
		name, err1 := get("name")
		username, err2 := get("username")
		bio, err3 := get("bio")
		if err := errors.Join(err1, err2, err3); err != nil {
			return errBadRequest
		}
		if _, err := h.accounts.UpdateProfile(ctx, u.ID, account.Profile{Name: name, Username: username, Bio: bio}); err != nil {
			return fieldErr(err, "")
		}
	case "avatar":
		if err := h.accounts.SetAvatar(ctx, u.ID, avatar); err != nil {
			return fieldErr(err, "avatar")
		}
	case "avatar-remove":
		if err := h.accounts.RemoveAvatar(ctx, u.ID); err != nil {
			return err
		}
	case "password":
		old, err1 := get("old_password")
		pw, err2 := get("password")
		pw2, err3 := get("password2")
		if err := errors.Join(err1, err2, err3); err != nil {
			return errBadRequest
		}
		switch {
		case old == "":
			return h.accountError(w, r, ls, u, http.StatusBadRequest, "old-password", "Enter your current password.")
		case len(old) > maxPasswordBytes || len(pw) > maxPasswordBytes:
			return h.accountError(w, r, ls, u, http.StatusBadRequest, "password", "The password must have at most 128 characters.")
		case pw != pw2:
			return h.accountError(w, r, ls, u, http.StatusBadRequest, "password2", "The two passwords differ.")
		}
		done, wait, ok := h.attempt(r)
		if !ok {
			return h.tooMany(w, wait)
		}
		err := h.accounts.ChangePassword(ctx, u.ID, account.PasswordChange{Old: old, New: pw, KeepSession: ls.IDHash, Device: h.deviceToken(r)})
		done(errors.Is(err, account.ErrInvalidCredentials))
		if errors.Is(err, account.ErrInvalidCredentials) {
			// 403, not 401: the person is signed in, the proof is wrong
			// (SECURITY 50); counted toward the lockout by account.
			return h.accountError(w, r, ls, u, http.StatusForbidden, "old-password", "The current password is not right.")
		} else if err != nil {
			return fieldErr(err, "")
		}
		// The password change makes sessions older than it invalid: sign
		// this browser in again, with a new session.
		if err := h.startSession(ctx, w, r, u.ID, ls.AMR); err != nil {
			return err
		}
		h.forgetRememberCookie(w)
	case "phone":
		phone, err := get("phone")
		if err != nil {
			return err
		}
		if _, err := h.accounts.StartPhoneVerification(ctx, u.ID, phone); err != nil {
			return fieldErr(err, "phone")
		}
	case "phone-verify":
		code, err := get("code")
		if err != nil {
			return err
		}
		done, wait, ok := h.attempt(r)
		if !ok {
			return h.tooMany(w, wait)
		}
		err = h.accounts.VerifyPhone(ctx, u.ID, code)
		done(account.IsCodeFailure(err))
		if account.IsCodeFailure(err) {
			return h.accountError(w, r, ls, u, http.StatusBadRequest, "phone-code", "That code is not right, or no longer works.")
		} else if err != nil {
			return err
		}
	case "phone-remove":
		if err := h.accounts.RemovePhone(ctx, u.ID); err != nil {
			return err
		}
	case "session-end":
		id, err := get("id")
		if err != nil {
			return err
		}
		if err := h.accounts.EndSession(ctx, u.ID, id); errors.Is(err, account.ErrNotFound) {
			return errBadRequest
		} else if err != nil {
			return err
		}
		if id == ls.IDHash {
			return h.logoutDone(w, r)
		}
	case "device-forget":
		id, err := get("id")
		if err != nil {
			return err
		}
		if err := h.accounts.ForgetDevice(ctx, u.ID, id); errors.Is(err, account.ErrNotFound) {
			return errBadRequest
		} else if err != nil {
			return err
		}
		if id == account.RememberedDeviceID(h.rememberToken(r)) {
			h.forgetRememberCookie(w)
		}
	case "signout-everywhere":
		// Every session, this one too, and every application's tokens.
		if err := h.accounts.SignOutEverywhere(ctx, u.ID); err != nil {
			return err
		}
		h.log.InfoContext(ctx, "login: signed out everywhere", "subject", u.ID)
		h.forgetRememberCookie(w)
		return h.logoutDone(w, r)
	case "app-revoke":
		clientID, err := get("client_id")
		if err != nil {
			return err
		}
		if err := h.accounts.RevokeApp(ctx, u.ID, clientID); err != nil {
			return err
		}
	case "verify-email":
		if u.EmailVerified {
			break
		}
		return h.startVerification(w, r, u.ID, "")
	case "password-link":
		// An account without a password (made through a provider) gets
		// the forgotten-password mail, at its own address.
		err := h.accounts.RequestPasswordReset(ctx, u.Email)
		if err != nil {
			return fieldErr(err, "")
		}
		return redirect(w, r, AccountPath+"?done=password-link")
	case "deactivate":
		pw, err := get("password")
		if err != nil {
			return err
		}
		done, wait, ok := h.attempt(r)
		if !ok {
			return h.tooMany(w, wait)
		}
		err = h.accounts.Deactivate(ctx, u.ID, pw, h.deviceToken(r))
		done(errors.Is(err, account.ErrInvalidCredentials))
		if errors.Is(err, account.ErrInvalidCredentials) {
			return h.accountError(w, r, ls, u, http.StatusForbidden, "deactivate", "The password is not right.")
		} else if err != nil {
			return err
		}
		http.SetCookie(w, h.cookie(h.sessionCookie, "", -1))
		h.forgetRememberCookie(w)
		return h.render(w, http.StatusOK, "message.html", templates.MessagePage{
			Title: "Account deactivated", Message: "Your account is deactivated and you are signed out everywhere.",
		})
	default:
		return errNotFoundPage
	}
	h.log.InfoContext(ctx, "login: account changed", "subject", u.ID, "action", action)
	return redirect(w, r, AccountPath+"?done="+action)
}

func (h *Handler) logoutDone(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, h.cookie(h.sessionCookie, "", -1))
	return redirect(w, r, LoginPath+"?done=signed-out")
}

// accountError shows the account page with message next to field.
func (h *Handler) accountError(w http.ResponseWriter, r *http.Request, ls *storage.LoginSession, u *storage.User, status int, fieldName, message string) error {
	fresh, err := h.store.User(r.Context(), u.ID)
	if err == nil {
		u = fresh
	}
	page, err := h.accountData(w, r, ls, u)
	if err != nil {
		return err
	}
	page.Errors[fieldName] = message
	page.ErrorList = errorList(page.Errors)
	return h.render(w, status, "account.html", page)
}

// accountFields lists the account page's error keys in page order with
// the ID of the field each message is about (the summary links there).
var accountFields = []struct{ key, id string }{
	{"form", ""},
	{"name", "name"}, {"username", "username"}, {"bio", "bio"}, {"avatar", "avatar"},
	{"phone-code", "phone-code"}, {"phone", "phone"},
	{"old-password", "old-password"}, {"password", "new-password"}, {"password2", "new-password2"},
	{"deactivate", "deactivate-password"},
}

// errorList is the error summary of errs, in page order.
func errorList(errs map[string]string) []templates.AccountError {
	var out []templates.AccountError
	for _, f := range accountFields {
		if msg, ok := errs[f.key]; ok {
			out = append(out, templates.AccountError{Field: f.id, Message: msg})
		}
	}
	return out
}

// rfc3339 is t for a <time datetime>.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// dateWords is t as a date and time in words, shown on hover.
func dateWords(t time.Time) string { return t.UTC().Format(templates.EnglishDateTime) }

// readAvatar reads the avatar upload: a multipart form with "csrf" and the
// file "avatar" of at most account.MaxAvatarBytes.
func readAvatar(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	tooBig := &account.ValidationError{Field: "avatar", Message: "The picture must be at most 1 MiB."}
	r.Body = http.MaxBytesReader(w, r.Body, maxAvatarUpload)
	if err := r.ParseMultipartForm(maxAvatarUpload); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooBig
		}
		return nil, errBadRequest
	}
	r.PostForm = r.MultipartForm.Value
	files := r.MultipartForm.File["avatar"]
	if len(files) != 1 {
		return nil, &account.ValidationError{Field: "avatar", Message: "Choose one picture to upload."}
	}
	if files[0].Size > account.MaxAvatarBytes {
		return nil, tooBig
	}
	f, err := files[0].Open()
	if err != nil {
		return nil, errBadRequest
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, account.MaxAvatarBytes+1))
}

// serveAvatar serves GET /avatars/{id}: a PNG Torii encoded itself, with
// headers that keep any browser from treating it as anything else.
func (h *Handler) serveAvatar(w http.ResponseWriter, r *http.Request) {
	data, etag, err := h.accounts.Avatar(r.Context(), mux.Vars(r)["id"])
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	hdr.Set("Cross-Origin-Resource-Policy", "cross-origin")
	if errors.Is(err, account.ErrNotFound) {
		http.NotFound(w, r)
		return
	} else if err != nil {
		h.log.ErrorContext(r.Context(), "login: serve avatar", "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	hdr.Set("Content-Type", "image/png")
	hdr.Set("Content-Disposition", "inline")
	hdr.Set("ETag", etag)
	hdr.Set("Cache-Control", "public, max-age=86400")
	if match := r.Header.Get("If-None-Match"); match != "" && match == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(data)
}
