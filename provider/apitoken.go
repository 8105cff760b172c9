package provider

import (
	"context"
	"errors"
	"slices"

	"github.com/ory/fosite"

	"github.com/torii-idp/torii/storage"
)

// AccessToken is what an API of Torii's learns from an access token it
// accepts: whose it is, for which client, with which scopes, and which
// grant (the refresh family) it belongs to.
type AccessToken struct {
	Subject  string
	ClientID string
	Scopes   []string
	// GrantID names the grant: every token issued from one sign-in (a
	// refresh family) shares it.
	GrantID string
	// ClientCredentials is true for a client's own token (no user).
	ClientCredentials bool
}

// HasScope reports whether the token carries scope.
func (t *AccessToken) HasScope(scope string) bool { return slices.Contains(t.Scopes, scope) }

// ErrInvalidToken means a token that is not an active access token issued
// by this Torii: unknown, expired, revoked, or of another kind.
var ErrInvalidToken = errors.New("provider: invalid access token")

// VerifyAccessToken checks an access token as the resource server inside
// Torii (the account and admin APIs): ErrInvalidToken unless it is active;
// other errors are faults (storage.ErrUnavailable among them).
func (p *Provider) VerifyAccessToken(ctx context.Context, token string) (*AccessToken, error) {
	if token == "" {
		return nil, ErrInvalidToken
	}
	ctx = storage.WithRequestCache(ctx)
	use, ar, err := p.oauth2.IntrospectToken(ctx, token, fosite.AccessToken, newSession())
	if err != nil {
		if unavailable(err) {
			return nil, err
		}
		return nil, ErrInvalidToken
	}
	if use != fosite.AccessToken {
		return nil, ErrInvalidToken
	}
	return &AccessToken{
		Subject:           ar.GetSession().GetSubject(),
		ClientID:          ar.GetClient().GetID(),
		Scopes:            slices.Clone(ar.GetGrantedScopes()),
		GrantID:           ar.GetID(),
		ClientCredentials: ar.GetRequestForm().Get("grant_type") == "client_credentials",
	}, nil
}

// RevokeGrantOf revokes the grant of a refresh token of subject's: every
// token of its family. ErrInvalidToken when token is no active refresh
// token of subject's.
func (p *Provider) RevokeGrantOf(ctx context.Context, subject, refreshToken string) error {
	use, ar, err := p.oauth2.IntrospectToken(ctx, refreshToken, fosite.RefreshToken, newSession())
	if err != nil {
		if unavailable(err) {
			return err
		}
		return ErrInvalidToken
	}
	if use != fosite.RefreshToken || ar.GetSession().GetSubject() != subject {
		return ErrInvalidToken
	}
	return p.RevokeGrant(ctx, ar.GetID())
}

// RevokeGrant revokes every access and refresh token of a grant.
func (p *Provider) RevokeGrant(ctx context.Context, grantID string) error {
	return p.store.InTx(ctx, func(ctx context.Context) error {
		if err := p.store.RevokeRefreshToken(ctx, grantID); err != nil {
			return err
		}
		return p.store.RevokeAccessToken(ctx, grantID)
	})
}
