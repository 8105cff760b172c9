package account

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

func TestValidRoleName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"admin", true},
		{"a", true},
		{"billing.read", true},
		{"team:eu-1", true},
		{"a_b", true},
		{"x" + strings.Repeat("9", 63), true}, // 64 characters
		{"", false},
		{"x" + strings.Repeat("9", 64), false}, // 65 characters
		{"Admin", false},
		{"1x", false},
		{"-x", false},
		{"_x", false},
		{"a b", false},
		{`a"b`, false},
		{`a\b`, false},
		{"a%", false},
		{"é", false},
		{"adminé", false},
		{"x';--", false},
		{"x' OR '1'='1", false},
		{"admin\n", false},
		{"admin\x00", false},
	}
	for _, tc := range tests {
		if got := ValidRoleName(tc.name); got != tc.want {
			t.Errorf("ValidRoleName(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSetRoles(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		t.Parallel()
		s := New(open(t), Config{})
		ctx := t.Context()
		u := mustCreate(t, s, NewUser{Email: "alice@example.com", Password: "correct horse"})
		steps := []struct {
			name        string
			add, remove []string
			want        []string
		}{
			{"add", []string{RoleAdmin, "billing.read"}, nil, []string{RoleAdmin, "billing.read"}},
			{"add again", []string{RoleAdmin}, nil, []string{RoleAdmin, "billing.read"}},
			{"add and remove", []string{"team:eu-1"}, []string{RoleAdmin}, []string{"billing.read", "team:eu-1"}},
			{"remove absent", nil, []string{RoleAdmin}, []string{"billing.read", "team:eu-1"}},
		}
		for _, st := range steps {
			got, err := s.SetRoles(ctx, u.ID, st.add, st.remove)
			if err != nil || got.ID != u.ID || !slices.Equal(got.Roles, st.want) {
				t.Errorf("%s: SetRoles(%q, %q) = %+v, %v; want roles %q", st.name, st.add, st.remove, got, err, st.want)
			}
		}
		for _, tc := range []struct {
			name        string
			add, remove []string
		}{
			{"bad add", []string{"ok", "Bad Name"}, nil},
			{"bad remove", nil, []string{"x';--"}},
			{"empty", []string{""}, nil},
		} {
			_, err := s.SetRoles(ctx, u.ID, tc.add, tc.remove)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != "roles" {
				t.Errorf("%s: SetRoles = %v, want *ValidationError for roles", tc.name, err)
			} else if bad := append(tc.add, tc.remove...)[len(append(tc.add, tc.remove...))-1]; bad != "" && strings.Contains(err.Error(), bad) {
				t.Errorf("%s: error %q repeats the input", tc.name, err)
			}
		}
		if got, err := s.Get(ctx, u.ID); err != nil || !slices.Equal(got.Roles, []string{"billing.read", "team:eu-1"}) {
			t.Errorf("after refused changes, roles = %q, %v; want them unchanged", got.Roles, err)
		}
		for _, id := range []string{"no-such-user", "", "a\x00b"} {
			if _, err := s.SetRoles(ctx, id, []string{RoleAdmin}, nil); !errors.Is(err, ErrNotFound) {
				t.Errorf("SetRoles(%q) = %v, want ErrNotFound", id, err)
			}
		}
	})
}
