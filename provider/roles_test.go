package provider

import (
	"slices"
	"testing"

	"github.com/torii-idp/torii/storage"
)

func TestGrantableScopes(t *testing.T) {
	admin := &storage.User{Roles: []string{"admin", "billing"}}
	plain := &storage.User{Roles: []string{"billing", "administrator"}}
	none := &storage.User{Roles: []string{}}
	asked := []string{"openid", ScopeAdmin, ScopeRoles}
	tests := []struct {
		name   string
		u      *storage.User
		scopes []string
		want   []string
	}{
		{"admin", admin, asked, asked},
		{"other roles", plain, asked, []string{"openid", ScopeRoles}},
		{"no roles", none, asked, []string{"openid", ScopeRoles}},
		{"nil user", nil, asked, []string{"openid", ScopeRoles}},
		{"only torii:admin", plain, []string{ScopeAdmin}, []string{}},
		{"not asked", none, []string{"openid", "email"}, []string{"openid", "email"}},
		{"nothing asked", none, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.scopes)
			if got := GrantableScopes(tc.u, in); !slices.Equal(got, tc.want) {
				t.Errorf("GrantableScopes(%v, %q) = %q, want %q", tc.u, tc.scopes, got, tc.want)
			}
			if !slices.Equal(in, tc.scopes) {
				t.Errorf("GrantableScopes changed its argument to %q", in)
			}
		})
	}
}
