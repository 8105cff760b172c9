package api

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/storage"
)

// AdminUser is how the admin API shows a user: the account as its owner
// sees it, and what only an administrator sees.
type AdminUser struct {
	Account
	// Active is false for a deactivated user.
	Active bool `json:"active"`
	// HasPassword is false for an invited user who has not chosen one.
	HasPassword bool `json:"has_password"`
	// LockedUntil and CodeLockedUntil are the ends of a password lock and
	// of a code-step lock in force; null for none.
	LockedUntil     *time.Time `json:"locked_until"`
	CodeLockedUntil *time.Time `json:"code_locked_until"`
}

func (h *Handler) adminUserOf(u *storage.User) AdminUser {
	now := time.Now()
	until := func(t time.Time, valid bool) *time.Time {
		if !valid || !t.After(now) {
			return nil
		}
		t = t.UTC()
		return &t
	}
	return AdminUser{
		Account: h.accountOf(u), Active: !u.Disabled, HasPassword: u.PasswordHash != "",
		LockedUntil:     until(u.LockedUntil.Time, u.LockedUntil.Valid),
		CodeLockedUntil: until(u.OTPLockedUntil.Time, u.OTPLockedUntil.Valid),
	}
}

// The user listing's page sizes.
const (
	defaultPageSize = 50
	maxPageSize     = 200
	maxSearchBytes  = 200
)

// rolePattern is what a role name looks like.
var rolePattern = regexp.MustCompile(`^[a-z][a-z0-9_.:-]{0,63}$`)

// listParams are the user listing's query parameters.
var listParams = []string{"limit", "cursor", "q", "role", "active", "verified", "sort"}

// adminListUsers answers a page of users and, when more follow, the
// cursor of the next page. Every parameter is checked: an unknown or
// repeated one, or a value out of its range, is 400 naming it.
func (h *Handler) adminListUsers(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	q, cursor, err := parseListQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	if cursor != "" {
		after, ok := h.decodeCursor(q, cursor)
		if !ok {
			return invalid(errBadCursor)
		}
		q.After = after
	}
	limit := q.Limit
	q.Limit++ // one more tells whether a next page exists
	us, err := h.accounts.Find(r.Context(), q)
	if err != nil {
		return err
	}
	var next *string
	if len(us) > limit {
		us = us[:limit]
		c := h.encodeCursor(q, storage.KeyOf(us[limit-1]))
		next = &c
	}
	items := make([]AdminUser, 0, len(us))
	for _, u := range us {
		items = append(items, h.adminUserOf(u))
	}
	writeJSON(w, http.StatusOK, struct {
		Items      []AdminUser `json:"items"`
		NextCursor *string     `json:"next_cursor"`
	}{items, next})
	return nil
}

// parseListQuery reads the listing's parameters from a raw query.
func parseListQuery(raw string) (storage.UserQuery, string, error) {
	values, limit, f := listQuery(raw, listParams)
	if values == nil {
		return storage.UserQuery{}, "", f.problem()
	}
	q := storage.UserQuery{Limit: limit, Sort: storage.SortCreated}
	get := values.Get
	if s := get("sort"); s != "" {
		if !slices.Contains(storage.UserSorts, s) {
			f = append(f, FieldError{Field: "sort", Message: "must be one of " + strings.Join(storage.UserSorts, ", ")})
		} else {
			q.Sort = s
		}
	}
	if s := get("q"); s != "" {
		if len(s) > maxSearchBytes || !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
			f = append(f, FieldError{Field: "q", Message: "must be text of at most " + strconv.Itoa(maxSearchBytes) + " bytes"})
		} else {
			q.Search = s
		}
	}
	if s := get("role"); s != "" {
		if !rolePattern.MatchString(s) {
			f = append(f, FieldError{Field: "role", Message: "is not a role name"})
		} else {
			q.Role = s
		}
	}
	for _, b := range []struct {
		name string
		to   **bool
	}{{"active", &q.Active}, {"verified", &q.Verified}} {
		switch s := get(b.name); s {
		case "":
		case "true", "false":
			v := s == "true"
			*b.to = &v
		default:
			f = append(f, FieldError{Field: b.name, Message: "must be true or false"})
		}
	}
	if p := f.problem(); p != nil {
		return q, "", p
	}
	return q, get("cursor"), nil
}

// adminCreateRequest is a new user. Exactly one of password and
// send_invite (a set-password link mailed instead).
type adminCreateRequest struct {
	Email               string   `json:"email"`
	Password            string   `json:"password"`
	SendInvite          bool     `json:"send_invite"`
	Username            string   `json:"username"`
	Name                string   `json:"name"`
	PhoneNumber         string   `json:"phone_number"`
	EmailVerified       bool     `json:"email_verified"`
	PhoneNumberVerified bool     `json:"phone_number_verified"`
	Roles               []string `json:"roles"`
}

func (h *Handler) adminCreateUser(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	var in adminCreateRequest
	if p := decode(w, r, &in); p != nil {
		return p
	}
	var f fields
	f.require("email", in.Email, maxStringBytes, "")
	f.check("username", in.Username, maxStringBytes)
	f.check("name", in.Name, maxStringBytes)
	f.check("phone_number", in.PhoneNumber, 32)
	switch {
	case in.SendInvite && in.Password != "":
		f = append(f, FieldError{Field: "password", Message: "cannot be combined with send_invite: the invited user chooses it"})
	case !in.SendInvite:
		f.require("password", in.Password, maxPasswordBytes, "or send_invite: true to mail a set-password link")
	}
	f.checkRoles("roles", in.Roles)
	if p := f.problem(); p != nil {
		return p
	}
	nu := account.NewUser{Email: in.Email, Password: in.Password, Username: in.Username, Name: in.Name,
		Phone: in.PhoneNumber, EmailVerified: in.EmailVerified, PhoneVerified: in.PhoneNumberVerified}
	setNewUserRoles(&nu, in.Roles)
	var (
		u   *storage.User
		err error
	)
	if in.SendInvite {
		u, err = h.accounts.Invite(r.Context(), nu)
	} else {
		u, err = h.accounts.Create(r.Context(), nu)
	}
	if err != nil {
		return adminUserError(err)
	}
	w.Header().Set("Location", AdminPrefix+"/users/"+u.ID)
	writeJSON(w, http.StatusCreated, h.adminUserOf(u))
	return nil
}

// adminUserError maps what account says of a user's new data.
func adminUserError(err error) error {
	switch {
	case errors.Is(err, account.ErrEmailTaken):
		p := problem(http.StatusConflict, "conflict", "Another user has this email address, or one that looks the same.")
		p.Errors = []FieldError{{Field: "email", Message: "is taken"}}
		return p
	case errors.Is(err, account.ErrUsernameTaken):
		p := problem(http.StatusConflict, "conflict", "Another user has this username.")
		p.Errors = []FieldError{{Field: "username", Message: "is taken"}}
		return p
	}
	return err
}

// checkRoles adds an error when a role name is not one.
func (f *fields) checkRoles(name string, roles []string) {
	if len(roles) > 64 {
		*f = append(*f, FieldError{Field: name, Message: "has too many roles (at most 64)"})
		return
	}
	for _, r := range roles {
		if !rolePattern.MatchString(r) {
			*f = append(*f, FieldError{Field: name, Message: "holds a name that is not a role name: a lower-case letter, then up to 63 of a-z 0-9 _ . : -"})
			return
		}
	}
}

func (h *Handler) adminGetUser(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	u, err := h.adminUser(r.Context(), r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.adminUserOf(u))
	return nil
}

// adminPatchRequest holds what an administrator may change; any other
// member (password, active, id…) is refused by decode, naming it.
type adminPatchRequest struct {
	Name                *string   `json:"name"`
	Username            *string   `json:"username"`
	Bio                 *string   `json:"bio"`
	Email               *string   `json:"email"`
	EmailVerified       *bool     `json:"email_verified"`
	PhoneNumber         *string   `json:"phone_number"`
	PhoneNumberVerified *bool     `json:"phone_number_verified"`
	Roles               *[]string `json:"roles"`
}

// adminPatchUser changes the members given; roles replaces the whole set.
func (h *Handler) adminPatchUser(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	var in adminPatchRequest
	if p := decode(w, r, &in); p != nil {
		return p
	}
	var f fields
	for _, m := range []struct {
		name string
		v    *string
		max  int
	}{{"name", in.Name, maxStringBytes}, {"username", in.Username, maxStringBytes}, {"bio", in.Bio, maxStringBytes},
		{"email", in.Email, maxStringBytes}, {"phone_number", in.PhoneNumber, 32}} {
		if m.v != nil {
			f.check(m.name, *m.v, m.max)
		}
	}
	if in.Roles != nil {
		f.checkRoles("roles", *in.Roles)
	}
	if p := f.problem(); p != nil {
		return p
	}
	// account reads the user once, and says ErrNotFound (404) for an
	// unknown ID.
	u, err := h.accounts.AdminUpdate(r.Context(), mux.Vars(r)["id"], account.AdminChanges{Name: in.Name, Username: in.Username, Bio: in.Bio,
		Email: in.Email, EmailVerified: in.EmailVerified, Phone: in.PhoneNumber, PhoneVerified: in.PhoneNumberVerified})
	if err != nil {
		return adminUserError(err)
	}
	if in.Roles != nil {
		if u, err = h.replaceRoles(r, u, *in.Roles); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, h.adminUserOf(u))
	return nil
}

// adminDeleteUser deletes a deactivated user; an active one is 409.
func (h *Handler) adminDeleteUser(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	err := h.accounts.DeleteDeactivated(r.Context(), mux.Vars(r)["id"])
	switch {
	case errors.Is(err, account.ErrNotFound):
		return problem(http.StatusNotFound, "not-found", "There is no user with this ID.")
	case errors.Is(err, account.ErrActive):
		return problem(http.StatusConflict, "conflict", "The user is active: deactivate them first (POST …/deactivate), then delete.")
	case err != nil:
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// adminSetActive deactivates a user (ending every session and revoking
// every token) or activates one again.
func (h *Handler) adminSetActive(active bool) adminFunc {
	return func(w http.ResponseWriter, r *http.Request, a *adminCaller) error {
		id := mux.Vars(r)["id"]
		if !active && a.user != nil && a.user.ID == id {
			return problem(http.StatusConflict, "conflict", "An administrator cannot deactivate their own account here.")
		}
		u, err := h.accounts.SetActive(r.Context(), id, active)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, h.adminUserOf(u))
		return nil
	}
}

func (h *Handler) adminUnlock(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	u, err := h.accounts.Unlock(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.adminUserOf(u))
	return nil
}

// adminPasswordReset mails the user a reset link: the administrator never
// chooses or sees a password.
func (h *Handler) adminPasswordReset(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	err := h.accounts.SendPasswordReset(r.Context(), mux.Vars(r)["id"])
	var (
		ve *account.ValidationError
		rl *account.RateLimitError
	)
	switch {
	case errors.As(err, &ve) && ve.Field == "active":
		return problem(http.StatusConflict, "conflict", ve.Message)
	case errors.As(err, &rl):
		return tooMany(rl.RetryAfter, "Too many reset links were mailed to this user; wait before sending another.")
	case err != nil:
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (h *Handler) adminPutPicture(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	ctx := r.Context()
	u, err := h.adminUser(ctx, r)
	if err != nil {
		return err
	}
	if err := h.setPicture(w, r, u.ID); err != nil {
		return err
	}
	if u, err = h.accounts.Get(ctx, u.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h.adminUserOf(u))
	return nil
}

func (h *Handler) adminDeletePicture(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	ctx := r.Context()
	u, err := h.adminUser(ctx, r)
	if err != nil {
		return err
	}
	if err := h.accounts.RemoveAvatar(ctx, u.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) adminListSessions(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	ctx := r.Context()
	u, err := h.adminUser(ctx, r)
	if err != nil {
		return err
	}
	ls, err := h.accounts.Sessions(ctx, u.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": sessionsOf(ls)})
	return nil
}

// adminEndSessions signs the user out everywhere: every browser session
// ends and every token is revoked.
func (h *Handler) adminEndSessions(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	ctx := r.Context()
	u, err := h.adminUser(ctx, r)
	if err != nil {
		return err
	}
	if err := h.accounts.SignOutEverywhere(ctx, u.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
