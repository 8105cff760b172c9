package api

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/mux"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
)

// Account is the JSON of a user's account (OpenID Connect's claim names
// where there is one).
type Account struct {
	ID                  string     `json:"id"`
	Email               string     `json:"email"`
	EmailVerified       bool       `json:"email_verified"`
	Username            *string    `json:"username"`
	Name                string     `json:"name"`
	Bio                 string     `json:"bio"`
	Picture             *string    `json:"picture"`
	PhoneNumber         *string    `json:"phone_number"`
	PhoneNumberVerified bool       `json:"phone_number_verified"`
	Roles               []string   `json:"roles"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
	PasswordChangedAt   *time.Time `json:"password_changed_at"`
}

// accountOf renders u.
func (h *Handler) accountOf(u *storage.User) Account {
	a := Account{
		ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Username: u.Username, Name: u.Name, Bio: u.Bio,
		PhoneNumberVerified: u.PhoneVerified, Roles: slices.Clone(u.Roles),
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
	}
	if u.AvatarETag != "" {
		pic := h.cfg.Issuer + "/avatars/" + u.ID
		a.Picture = &pic
	}
	if u.Phone != "" {
		a.PhoneNumber = &u.Phone
	}
	if a.Roles == nil {
		a.Roles = []string{}
	}
	if u.PasswordChangedAt.Valid {
		t := u.PasswordChangedAt.Time.UTC()
		a.PasswordChangedAt = &t
	}
	return a
}

func (h *Handler) getAccount(w http.ResponseWriter, r *http.Request, c *caller) error {
	writeJSON(w, http.StatusOK, h.accountOf(c.user))
	return nil
}

// patchRequest holds the members PATCH may set; any other member is
// refused by decode (400 naming it): email_verified, roles, password_hash…
type patchRequest struct {
	Name     *string `json:"name"`
	Username *string `json:"username"`
	Bio      *string `json:"bio"`
}

// patchAccount changes the profile members given; the others stay.
func (h *Handler) patchAccount(w http.ResponseWriter, r *http.Request, c *caller) error {
	var in patchRequest
	if p := decode(w, r, &in); p != nil {
		return p
	}
	p := account.Profile{Name: c.user.Name, Username: c.user.PreferredUsername(), Bio: c.user.Bio}
	var f fields
	for _, m := range []struct {
		name string
		in   *string
		out  *string
	}{{"name", in.Name, &p.Name}, {"username", in.Username, &p.Username}, {"bio", in.Bio, &p.Bio}} {
		if m.in != nil {
			f.check(m.name, *m.in, maxStringBytes)
			*m.out = *m.in
		}
	}
	if prob := f.problem(); prob != nil {
		return prob
	}
	u, err := h.accounts.UpdateProfile(r.Context(), c.user.ID, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.accountOf(u))
	return nil
}

type passwordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// changePassword: the caller's own grant stays valid; every other token
// and every browser session ends, and the owner is mailed.
func (h *Handler) changePassword(w http.ResponseWriter, r *http.Request, c *caller) error {
	var in passwordRequest
	if p := decode(w, r, &in); p != nil {
		return p
	}
	var f fields
	f.require("current_password", in.CurrentPassword, maxPasswordBytes, "")
	f.require("new_password", in.NewPassword, maxPasswordBytes, "")
	if p := f.problem(); p != nil {
		return p
	}
	done, err := h.attempt(r)
	if err != nil {
		return err
	}
	err = h.accounts.ChangePassword(r.Context(), c.user.ID, account.PasswordChange{
		Old: in.CurrentPassword, New: in.NewPassword, KeepGrant: c.token.GrantID})
	done(errors.Is(err, account.ErrInvalidCredentials))
	var ve *account.ValidationError
	switch {
	case errors.Is(err, account.ErrInvalidCredentials):
		// Counted toward the lockout by account (SECURITY 50).
		return problem(http.StatusForbidden, "invalid-credentials", "The current password is not right.")
	case errors.As(err, &ve) && ve.Field == "password":
		return invalid(FieldError{Field: "new_password", Message: ve.Message})
	case err != nil:
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Session is a signed-in browser of the user's.
type Session struct {
	ID        string    `json:"id"`
	UserAgent string    `json:"user_agent"`
	AMR       []string  `json:"amr"`
	SignedIn  time.Time `json:"signed_in_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (h *Handler) listSessions(w http.ResponseWriter, r *http.Request, c *caller) error {
	ls, err := h.accounts.Sessions(r.Context(), c.user.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": sessionsOf(ls)})
	return nil
}

// sessionsOf renders sessions.
func sessionsOf(ls []*storage.LoginSession) []Session {
	out := make([]Session, 0, len(ls))
	for _, s := range ls {
		out = append(out, Session{ID: s.IDHash, UserAgent: s.UserAgent, AMR: s.AMR, SignedIn: s.AuthTime.UTC(), ExpiresAt: s.ExpiresAt.UTC()})
	}
	return out
}

// endSession signs one of the caller's browsers out; another user's
// session is not found (404), as an unknown one.
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := h.accounts.EndSession(r.Context(), c.user.ID, mux.Vars(r)["id"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Device is a remembered device: a browser on which the user chose not to
// be asked for a one-time code for a while.
type Device struct {
	ID         string    `json:"id"`
	UserAgent  string    `json:"user_agent"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

func (h *Handler) listDevices(w http.ResponseWriter, r *http.Request, c *caller) error {
	ds, err := h.accounts.RememberedDevices(r.Context(), c.user.ID)
	if err != nil {
		return err
	}
	out := make([]Device, 0, len(ds))
	for _, d := range ds {
		out = append(out, Device{ID: d.ID, UserAgent: d.UserAgent, CreatedAt: d.CreatedAt.UTC(),
			LastUsedAt: d.LastUsedAt.UTC(), ExpiresAt: d.ExpiresAt.UTC()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}

// forgetDevice forgets one of the caller's remembered devices; another
// user's device is not found (404), as an unknown one.
func (h *Handler) forgetDevice(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := h.accounts.ForgetDevice(r.Context(), c.user.ID, mux.Vars(r)["id"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Application is an application the user allowed.
type Application struct {
	ClientID   string    `json:"client_id"`
	ClientName string    `json:"client_name"`
	Scopes     []string  `json:"scopes"`
	GrantedAt  time.Time `json:"granted_at"`
}

func (h *Handler) listApplications(w http.ResponseWriter, r *http.Request, c *caller) error {
	apps, err := h.accounts.Apps(r.Context(), c.user.ID)
	if err != nil {
		return err
	}
	out := make([]Application, 0, len(apps))
	for _, a := range apps {
		out = append(out, Application{ClientID: a.ClientID, ClientName: a.ClientName, Scopes: a.Scopes, GrantedAt: a.GrantedAt.UTC()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}

// revokeApplication withdraws the consent given to a client and revokes
// its tokens of the user's; a client the user never allowed is 404.
func (h *Handler) revokeApplication(w http.ResponseWriter, r *http.Request, c *caller) error {
	clientID := mux.Vars(r)["client_id"]
	apps, err := h.accounts.Apps(r.Context(), c.user.ID)
	if err != nil {
		return err
	}
	found := false
	for _, a := range apps {
		found = found || a.ClientID == clientID
	}
	if !found {
		return problem(http.StatusNotFound, "not-found", "You have not allowed this application.")
	}
	if err := h.accounts.RevokeApp(r.Context(), c.user.ID, clientID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type logoutRequest struct {
	RefreshToken string `json:"refresh_token"`
	All          bool   `json:"all"`
}

// logout revokes the grant of the given refresh token (one of the
// caller's), or of the presented access token when none is given; with
// all, every session and token of the user ends.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request, c *caller) error {
	var in logoutRequest
	if p := decode(w, r, &in); p != nil {
		return p
	}
	ctx := r.Context()
	switch {
	case in.All && in.RefreshToken != "":
		return invalid(FieldError{Field: "all", Message: "cannot be combined with refresh_token"})
	case in.All:
		if err := h.accounts.SignOutEverywhere(ctx, c.user.ID); err != nil {
			return err
		}
	case in.RefreshToken != "":
		if len(in.RefreshToken) > maxTokenBytes {
			return invalid(FieldError{Field: "refresh_token", Message: "is not a refresh token"})
		}
		err := h.tokens.RevokeGrantOf(ctx, c.user.ID, in.RefreshToken)
		if errors.Is(err, provider.ErrInvalidToken) {
			return invalid(FieldError{Field: "refresh_token", Message: "is not an active refresh token of yours"})
		} else if err != nil {
			return err
		}
	default:
		if err := h.tokens.RevokeGrant(ctx, c.token.GrantID); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type deleteRequest struct {
	Password string `json:"password"`
}

// deleteAccount deactivates the caller's account after checking the
// password: every session ends and every token is revoked.
func (h *Handler) deleteAccount(w http.ResponseWriter, r *http.Request, c *caller) error {
	var in deleteRequest
	if p := decode(w, r, &in); p != nil {
		return p
	}
	var f fields
	f.require("password", in.Password, maxPasswordBytes, "your current password")
	if p := f.problem(); p != nil {
		return p
	}
	done, err := h.attempt(r)
	if err != nil {
		return err
	}
	err = h.accounts.Deactivate(r.Context(), c.user.ID, in.Password, "")
	done(errors.Is(err, account.ErrInvalidCredentials))
	if errors.Is(err, account.ErrInvalidCredentials) {
		return problem(http.StatusForbidden, "invalid-credentials", "The password is not right.")
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
