package api

import (
	"net/http"
	"slices"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/storage"
)

// userRoles is u's set of roles.
func userRoles(u *storage.User) []string { return u.Roles }

// setNewUserRoles gives a new user roles.
func setNewUserRoles(nu *account.NewUser, roles []string) { nu.Roles = roles }

// replaceRoles makes roles u's whole set: the roles u lacks are added and
// those it has beyond them removed, in one step of account.SetRoles.
func (h *Handler) replaceRoles(r *http.Request, u *storage.User, roles []string) (*storage.User, error) {
	var remove []string
	for _, have := range u.Roles {
		if !slices.Contains(roles, have) {
			remove = append(remove, have)
		}
	}
	return h.accounts.SetRoles(r.Context(), u.ID, roles, remove)
}
