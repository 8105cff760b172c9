package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/torii-idp/torii/storage"
)

// introspect is the RFC 7662 introspection endpoint. Callers must
// authenticate as a confidential client; an inactive token of any kind
// answers {"active":false} and nothing more.
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := p.checkFormPost(r); err != nil {
		p.writeAccessError(w, r, nil, err)
		return
	}
	// The access token asked about is read with the client
	// (storage.NoteReads).
	if token := r.PostForm.Get("token"); token != "" && r.PostForm.Get("token_type_hint") != "refresh_token" {
		storage.NoteReads(ctx, storage.ReadAhead{AccessSignature: p.tokens.AccessTokenSignature(ctx, token)})
	}
	client, err := p.clients.authenticate(ctx, r, r.PostForm)
	if err == nil && client.IsPublic() {
		err = errClientAuth
	}
	if err != nil {
		p.writeAccessError(w, r, nil, err)
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		p.writeAccessError(w, r, nil, fosite.ErrInvalidRequest.WithHint("The token parameter is missing."))
		return
	}
	hint := fosite.TokenUse(r.PostForm.Get("token_type_hint"))
	use, ar, err := p.oauth2.IntrospectToken(ctx, token, hint, newSession())
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if err != nil {
		if unavailable(err) {
			p.writeAccessError(w, r, nil, fosite.ErrTemporarilyUnavailable.WithWrap(err))
			return
		}
		w.Write([]byte(`{"active":false}` + "\n"))
		return
	}
	resp := map[string]any{
		"active":    true,
		"client_id": ar.GetClient().GetID(),
		"iss":       p.cfg.Issuer,
		"iat":       ar.GetRequestedAt().Unix(),
	}
	if s := ar.GetGrantedScopes(); len(s) > 0 {
		resp["scope"] = strings.Join(s, " ")
	}
	if sub := ar.GetSession().GetSubject(); sub != "" {
		resp["sub"] = sub
	}
	if u := ar.GetSession().GetUsername(); u != "" {
		resp["username"] = u
	}
	if a := ar.GetGrantedAudience(); len(a) > 0 {
		resp["aud"] = a
	}
	if sess, ok := ar.GetSession().(*Session); ok && ar.GetGrantedScopes().Has(ScopeRoles) {
		if roles, ok := rolesClaim(sess); ok {
			resp["roles"] = roles
		}
	}
	switch use {
	case fosite.AccessToken:
		resp["token_type"] = "Bearer"
		resp["token_use"] = "access_token"
		if exp := ar.GetSession().GetExpiresAt(fosite.AccessToken); !exp.IsZero() {
			resp["exp"] = exp.Unix()
		}
	case fosite.RefreshToken:
		resp["token_use"] = "refresh_token"
		if exp := ar.GetSession().GetExpiresAt(fosite.RefreshToken); !exp.IsZero() {
			resp["exp"] = exp.Unix()
		}
	}
	json.NewEncoder(w).Encode(resp)
}

// revoke is the RFC 7009 revocation endpoint. Unknown, malformed and already
// revoked tokens answer 200; a client may not revoke another client's
// tokens; a storage failure answers 503, never a false 200.
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := p.checkFormPost(r); err != nil {
		p.writeAccessError(w, r, nil, err)
		return
	}
	if r.PostForm.Get("token") == "" {
		p.writeAccessError(w, r, nil, fosite.ErrInvalidRequest.WithHint("The token parameter is missing."))
		return
	}
	err := p.oauth2.NewRevocationRequest(ctx, r)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	switch {
	case err == nil:
		w.WriteHeader(http.StatusOK)
	case errors.Is(err, fosite.ErrInvalidClient), errors.Is(err, fosite.ErrInvalidRequest),
		errors.Is(err, fosite.ErrUnauthorizedClient):
		p.writeAccessError(w, r, nil, err)
	default:
		p.writeAccessError(w, r, nil, fosite.ErrTemporarilyUnavailable.WithWrap(err))
	}
}

// checkFormPost checks the shape of an introspection or revocation request.
func (p *Provider) checkFormPost(r *http.Request) error {
	return parseFormPost(r, []string{"token", "client_secret"}, []string{"token", "token_type_hint", "client_id", "client_secret"})
}

// userinfo is the OpenID Connect UserInfo endpoint: GET or POST with the
// access token in the Authorization header (or, for POST, the form body),
// never in the URL. Claims follow the token's scopes.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Has("access_token") {
		p.bearerError(w, http.StatusBadRequest, "invalid_request", "The access token must not be sent in the URL.")
		return
	}
	token := fosite.AccessTokenFromRequest(r)
	if token == "" && r.Method == http.MethodPost {
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
			if err := r.ParseForm(); err == nil && len(r.PostForm["access_token"]) == 1 {
				token = r.PostForm.Get("access_token")
			}
		}
	}
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="torii"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	use, ar, err := p.oauth2.IntrospectToken(ctx, token, fosite.AccessToken, newSession())
	if err != nil || use != fosite.AccessToken {
		if err != nil && unavailable(err) {
			p.log.ErrorContext(ctx, "userinfo: introspect", "err", err)
			p.bearerError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "Try again later.")
			return
		}
		p.bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.")
		return
	}
	if !ar.GetGrantedScopes().Has("openid") {
		p.bearerError(w, http.StatusForbidden, "insufficient_scope", "The access token lacks the openid scope.")
		return
	}
	u, err := p.store.User(ctx, ar.GetSession().GetSubject())
	if errors.Is(err, storage.ErrNotFound) {
		p.bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token does not belong to a user.")
		return
	} else if err != nil {
		p.log.ErrorContext(ctx, "userinfo: load user", "err", err)
		p.bearerError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "Try again later.")
		return
	}
	if u.Disabled {
		p.bearerError(w, http.StatusUnauthorized, "invalid_token", "The user's account is disabled.")
		return
	}
	claims := p.scopeClaims(u, ar.GetGrantedScopes())
	claims["sub"] = u.ID
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	json.NewEncoder(w).Encode(claims)
}

func (p *Provider) bearerError(w http.ResponseWriter, status int, code, description string) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="torii", error=%q, error_description=%q`, code, description))
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}

// scopeClaims returns the claims the granted scopes release: the standard
// ones, and "roles" (always, [] for none) with scope roles. The ID token
// omits empty values; userinfo does too. Stored with a code's or token's
// session, they are also what a JWT access token and introspection tell
// of the roles: the user's as the token was issued.
func (p *Provider) scopeClaims(u *storage.User, scopes fosite.Arguments) map[string]any {
	c := map[string]any{}
	if scopes.Has("profile") {
		if u.Name != "" {
			c["name"] = u.Name
		}
		if un := u.PreferredUsername(); un != "" {
			c["preferred_username"] = un
		}
		if u.AvatarETag != "" {
			c["picture"] = p.cfg.Issuer + "/avatars/" + url.PathEscape(u.ID) + "?v=" + url.QueryEscape(strings.Trim(u.AvatarETag, `"`))
		}
		c["updated_at"] = u.UpdatedAt.Unix()
	}
	if scopes.Has("email") {
		c["email"] = u.Email
		c["email_verified"] = u.EmailVerified
	}
	if scopes.Has("phone") && u.Phone != "" {
		c["phone_number"] = u.Phone
		c["phone_number_verified"] = u.PhoneVerified
	}
	if scopes.Has(ScopeRoles) {
		roles := slices.Clone(u.Roles)
		if roles == nil {
			roles = []string{}
		}
		c["roles"] = roles
	}
	return c
}

// discoveryDocument renders the OpenID Provider metadata once: it lists
// exactly what this server supports.
func (p *Provider) discoveryDocument() ([]byte, error) {
	iss := p.cfg.Issuer
	doc := map[string]any{
		"issuer":                                        iss,
		"authorization_endpoint":                        iss + "/oauth2/auth",
		"token_endpoint":                                iss + "/oauth2/token",
		"userinfo_endpoint":                             iss + "/userinfo",
		"jwks_uri":                                      iss + "/.well-known/jwks.json",
		"introspection_endpoint":                        iss + "/oauth2/introspect",
		"revocation_endpoint":                           iss + "/oauth2/revoke",
		"end_session_endpoint":                          iss + EndSessionPath,
		"acr_values_supported":                          []string{ACRPassword, ACRMFA},
		"scopes_supported":                              Scopes,
		"response_types_supported":                      []string{"code"},
		"response_modes_supported":                      []string{"query"},
		"grant_types_supported":                         grantTypesSupported,
		"subject_types_supported":                       []string{"public"},
		"id_token_signing_alg_values_supported":         Algorithms,
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "none"},
		"code_challenge_methods_supported":              []string{"S256"},
		"claims_supported": []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "amr", "acr",
			"name", "preferred_username", "picture", "updated_at", "email", "email_verified", "phone_number", "phone_number_verified", "roles"},
		"prompt_values_supported":                        []string{"none", "login", "consent", "select_account"},
		"claims_parameter_supported":                     false,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
		"authorization_response_iss_parameter_supported": true,
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("provider: encode discovery: %w", err)
	}
	return b, nil
}

func (p *Provider) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = cacheDiscovery
	h["Access-Control-Allow-Origin"] = corsAny
	h["Etag"] = p.discoveryETag
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(p.discovery))
}

func (p *Provider) serveJWKS(w http.ResponseWriter, r *http.Request) {
	doc, etag, err := p.keys.JWKS(r.Context())
	if err != nil {
		p.log.ErrorContext(r.Context(), "jwks", "err", err)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"temporarily_unavailable","error_description":"The signing keys could not be read; try again in a moment."}` + "\n"))
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	// A rotated key signs only once every copy cached without it expired.
	w.Header()["Cache-Control"] = p.jwksCacheControl
	w.Header().Set("ETag", etag)
	w.Header().Set("Access-Control-Allow-Origin", "*")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(doc))
}

// unavailable reports whether err comes from a database fault rather than
// from a bad token: such a token check must answer 503, not "invalid".
func unavailable(err error) bool {
	return storage.IsUnavailable(err) || errors.Is(err, storage.ErrConflict) ||
		(rfcError(err).CodeField >= 500 && !errors.Is(err, fosite.ErrNotFound))
}

// Header values of the static documents, built once.
var (
	contentTypeJSON = []string{"application/json"}
	cacheDiscovery  = []string{"public, max-age=3600"}
	corsAny         = []string{"*"}
)
