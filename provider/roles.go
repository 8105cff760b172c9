package provider

import (
	"slices"

	"github.com/ory/fosite"

	"github.com/torii-idp/torii/storage"
)

// Scopes of roles: ScopeRoles releases the user's roles as the claim
// "roles" (ID token, userinfo, JWT access tokens, introspection);
// ScopeAdmin is Torii's administrator scope, which the admin API asks for.
const (
	ScopeRoles = "roles"
	ScopeAdmin = "torii:admin"
)

// roleAdmin is account.RoleAdmin, the role a user needs to be granted
// ScopeAdmin (the provider does not import login/account).
const roleAdmin = "admin"

// GrantableScopes returns those of scopes that may be granted for u: every
// one but ScopeAdmin when u lacks the role admin (or is nil). It is the one
// rule of user scopes: the authorization endpoint, the consent page (which
// neither shows nor records the others), the password grant and its code
// step, and every refresh apply it, so a user without the role never gets
// ScopeAdmin (it is left out of the grant silently, as RFC 6749 §3.3
// allows), and a user who lost it stops getting it at the next refresh.
// Whether the client may ask for a scope at all is fosite's check, made
// before. A client's own token (client credentials) has no user: the
// client's registration alone decides. scopes is not modified.
func GrantableScopes(u *storage.User, scopes []string) []string {
	if !slices.Contains(scopes, ScopeAdmin) || (u != nil && slices.Contains(u.Roles, roleAdmin)) {
		return scopes
	}
	return slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return s == ScopeAdmin })
}

// grantForUser narrows what the token request ar grants to what u may be
// granted (GrantableScopes).
func grantForUser(ar fosite.AccessRequester, u *storage.User) error {
	granted := ar.GetGrantedScopes()
	keep := GrantableScopes(u, granted)
	if len(keep) == len(granted) {
		return nil
	}
	req, ok := ar.(*fosite.AccessRequest)
	if !ok {
		return fosite.ErrServerError.WithDebug("unexpected access request type")
	}
	req.GrantedScope = fosite.Arguments(keep)
	return nil
}

// rolesClaim returns the roles a session's claims hold (the user's roles
// when the token was issued, with scope roles), and false when they hold
// none. Claims read back from storage hold them as []any.
func rolesClaim(sess *Session) ([]string, bool) {
	if sess == nil || sess.Claims == nil {
		return nil, false
	}
	switch v := sess.Claims.Extra["roles"].(type) {
	case []string:
		return v, true
	case []any:
		roles := make([]string, 0, len(v))
		for _, r := range v {
			if s, ok := r.(string); ok {
				roles = append(roles, s)
			}
		}
		return roles, true
	}
	return nil, false
}
