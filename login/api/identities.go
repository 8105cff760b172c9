package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/torii-idp/torii/login/account"
)

// Identity is an upstream identity (Google, GitHub, Facebook, the generic
// OpenID Connect provider) linked to the account.
type Identity struct {
	Provider   string    `json:"provider"`
	Subject    string    `json:"subject"`
	Email      string    `json:"email"`
	LinkedAt   time.Time `json:"linked_at"`
	LastUsedAt time.Time `json:"last_used_at"`
}

// listIdentities serves GET /api/v1/account/identities.
func (h *Handler) listIdentities(w http.ResponseWriter, r *http.Request, c *caller) error {
	ids, err := h.accounts.Identities(r.Context(), c.user.ID)
	if err != nil {
		return err
	}
	out := make([]Identity, 0, len(ids))
	for _, id := range ids {
		out = append(out, Identity{Provider: id.Provider, Subject: id.Subject, Email: id.Email,
			LinkedAt: id.CreatedAt.UTC(), LastUsedAt: id.LastUsedAt.UTC()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}

// unlinkIdentity serves DELETE /api/v1/account/identities/{provider}/{subject}:
// 404 for an identity the user has not linked, 409 when it is the
// account's last way to sign in.
func (h *Handler) unlinkIdentity(w http.ResponseWriter, r *http.Request, c *caller) error {
	v := mux.Vars(r)
	err := h.accounts.Unlink(r.Context(), c.user.ID, v["provider"], v["subject"])
	switch {
	case errors.Is(err, account.ErrNotFound):
		return problem(http.StatusNotFound, "not-found", "No such identity is linked to your account.")
	case errors.Is(err, account.ErrLastSignInMethod):
		return problem(http.StatusConflict, "conflict", "This is the only way to sign in to your account: set a password first.")
	case err != nil:
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
