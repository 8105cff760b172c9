package api

// The admin API, served on its own listener (TORII_ADMIN_ADDR) only:
//
//	GET    /api/v1/admin/users                      ?limit=&cursor=&q=&role=&active=&verified=&sort=
//	POST   /api/v1/admin/users                      {email, password | send_invite, …} → 201
//	GET    /api/v1/admin/users/{id}
//	PATCH  /api/v1/admin/users/{id}                 {name?, username?, bio?, email?, email_verified?, phone_number?, phone_number_verified?, roles?}
//	DELETE /api/v1/admin/users/{id}                 a deactivated user only, else 409 → 204
//	POST   /api/v1/admin/users/{id}/deactivate      ends sessions, revokes tokens
//	POST   /api/v1/admin/users/{id}/activate
//	POST   /api/v1/admin/users/{id}/unlock
//	POST   /api/v1/admin/users/{id}/password-reset  mails a reset link → 202
//	PUT    /api/v1/admin/users/{id}/picture         as the account API's
//	DELETE /api/v1/admin/users/{id}/picture         → 204
//	GET    /api/v1/admin/users/{id}/sessions
//	DELETE /api/v1/admin/users/{id}/sessions        signs the user out everywhere → 204
//	GET    /api/v1/admin/clients
//	POST   /api/v1/admin/clients                    RFC 7591 metadata → 201 (with client_secret, once)
//	GET    /api/v1/admin/clients/{id}
//	PATCH  /api/v1/admin/clients/{id}
//	DELETE /api/v1/admin/clients/{id}               → 204
//	POST   /api/v1/admin/clients/{id}/secret        a new secret, shown once
//	GET    /api/v1/admin/keys
//	POST   /api/v1/admin/keys/rotate
//	GET    /api/v1/admin/audit                      ?limit=&cursor=&user=&type=&since=
//
// Every route needs a bearer access token with scope torii:admin: a
// client's (client credentials), or a user's who has role admin now.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/gorilla/mux"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
)

// AdminPrefix is where the admin API lives, on the admin listener.
const AdminPrefix = Prefix + "/admin"

// AdminPicturePath is the admin picture route's template; like
// PicturePath, its body limit is the handler's.
const AdminPicturePath = AdminPrefix + "/users/{id}/picture"

// ScopeAdmin is the scope an access token needs for the admin API.
const ScopeAdmin = provider.ScopeAdmin

// Admin is what the admin API needs of the provider besides Tokens.
type Admin interface {
	Clients() *provider.Clients
	Keys() *provider.Keys
}

// adminFunc serves an admin route for a verified caller.
type adminFunc func(w http.ResponseWriter, r *http.Request, a *adminCaller) error

// adminCaller is who calls the admin API: a client, or an admin user.
type adminCaller struct {
	token *provider.AccessToken
	// user is the admin user; nil for a client's own token.
	user *storage.User
}

// AdminRoutes mounts the admin API on r, which should be the admin
// listener's router, never the public one's. It answers no CORS: the admin
// API is for back offices and scripts on the operator's network. It
// mounts nothing when the handler was built without Deps.Admin.
func (h *Handler) AdminRoutes(r *mux.Router) {
	if h.adminDeps == nil {
		return
	}
	route := func(path, method string, fn adminFunc) {
		r.Handle(AdminPrefix+path, h.handle(h.withAdmin(fn))).Methods(method)
	}
	route("/users", http.MethodGet, h.adminListUsers)
	route("/users", http.MethodPost, h.adminCreateUser)
	route("/users/{id}", http.MethodGet, h.adminGetUser)
	route("/users/{id}", http.MethodPatch, h.adminPatchUser)
	route("/users/{id}", http.MethodDelete, h.adminDeleteUser)
	route("/users/{id}/deactivate", http.MethodPost, h.adminSetActive(false))
	route("/users/{id}/activate", http.MethodPost, h.adminSetActive(true))
	route("/users/{id}/unlock", http.MethodPost, h.adminUnlock)
	route("/users/{id}/password-reset", http.MethodPost, h.adminPasswordReset)
	route("/users/{id}/picture", http.MethodPut, h.adminPutPicture)
	route("/users/{id}/picture", http.MethodDelete, h.adminDeletePicture)
	route("/users/{id}/sessions", http.MethodGet, h.adminListSessions)
	route("/users/{id}/sessions", http.MethodDelete, h.adminEndSessions)
	route("/clients", http.MethodGet, h.adminListClients)
	route("/clients", http.MethodPost, h.adminCreateClient)
	route("/clients/{id}", http.MethodGet, h.adminGetClient)
	route("/clients/{id}", http.MethodPatch, h.adminPatchClient)
	route("/clients/{id}", http.MethodDelete, h.adminDeleteClient)
	route("/clients/{id}/secret", http.MethodPost, h.adminRotateSecret)
	route("/keys", http.MethodGet, h.adminListKeys)
	route("/keys/rotate", http.MethodPost, h.adminRotateKeys)
	route("/audit", http.MethodGet, h.adminListAudit)
}

// withAdmin requires a bearer access token with scope torii:admin: none or
// an invalid one is 401; one without the scope, or a user's who no longer
// has role admin or is deactivated, 403.
func (h *Handler) withAdmin(fn adminFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tok, err := h.bearer(r)
		if err != nil {
			return err
		}
		forbidden := func(detail string) error {
			p := problem(http.StatusForbidden, "insufficient-scope", detail)
			p.bearer = `Bearer realm="torii", error="insufficient_scope", scope="` + ScopeAdmin + `"`
			return p
		}
		if !tok.HasScope(ScopeAdmin) {
			return forbidden("The access token must carry scope " + ScopeAdmin + ".")
		}
		c := &adminCaller{token: tok}
		if !tok.ClientCredentials {
			u, err := h.tokenUser(r.Context(), tok)
			if err != nil {
				return err
			}
			if !slices.Contains(userRoles(u), account.RoleAdmin) {
				return forbidden("The access token's user no longer has role " + account.RoleAdmin + ".")
			}
			c.user = u
		}
		actor := "client:" + tok.ClientID
		if c.user != nil {
			actor = "user:" + c.user.ID
		}
		r = r.WithContext(storage.WithAuditActor(r.Context(), actor))
		return fn(w, r, c)
	}
}

// bearer verifies the request's bearer access token: a missing, invalid,
// expired or revoked one is a 401 problem; a token in the URL a 400.
func (h *Handler) bearer(r *http.Request) (*provider.AccessToken, error) {
	if r.URL.Query().Has("access_token") {
		p := problem(http.StatusBadRequest, "malformed", "Send the access token in the Authorization header, never in the URL.")
		p.bearer = `Bearer realm="torii", error="invalid_request"`
		return nil, p
	}
	raw, ok := bearerToken(r)
	if !ok {
		p := problem(http.StatusUnauthorized, "unauthorized", "Send an access token: Authorization: Bearer <token>.")
		p.bearer = `Bearer realm="torii"`
		return nil, p
	}
	tok, err := h.tokens.VerifyAccessToken(r.Context(), raw)
	if errors.Is(err, provider.ErrInvalidToken) {
		p := problem(http.StatusUnauthorized, "unauthorized", "The access token is invalid, expired or revoked.")
		p.bearer = `Bearer realm="torii", error="invalid_token"`
		return nil, p
	} else if err != nil {
		return nil, fmt.Errorf("api: verify access token: %w", err)
	}
	return tok, nil
}

// tokenUser reads the user a token was issued to: a 401 problem when the
// user is gone or deactivated.
func (h *Handler) tokenUser(ctx context.Context, tok *provider.AccessToken) (*storage.User, error) {
	u, err := h.accounts.Get(ctx, tok.Subject)
	if errors.Is(err, account.ErrNotFound) || (err == nil && u.Disabled) {
		p := problem(http.StatusUnauthorized, "unauthorized", "The access token's user no longer exists or is deactivated.")
		p.bearer = `Bearer realm="torii", error="invalid_token"`
		return nil, p
	}
	return u, err
}

// adminUser loads the route's user: 404 for an unknown ID.
func (h *Handler) adminUser(ctx context.Context, r *http.Request) (*storage.User, error) {
	u, err := h.accounts.Get(ctx, mux.Vars(r)["id"])
	if errors.Is(err, account.ErrNotFound) {
		return nil, problem(http.StatusNotFound, "not-found", "There is no user with this ID.")
	}
	return u, err
}
