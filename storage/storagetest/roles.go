package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/torii-idp/torii/storage"
)

// testRoles: a user's roles are stored sorted and without duplicates, and
// every read gives a non-nil set.
func testRoles(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	for _, tc := range []struct {
		id    string
		roles []string
		want  []string
	}{
		{"none", nil, []string{}},
		{"empty", []string{}, []string{}},
		{"one", []string{"admin"}, []string{"admin"}},
		{"many", []string{"team:eu-1", "admin", "billing.read", "admin"}, []string{"admin", "billing.read", "team:eu-1"}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			u := newUser(tc.id, tc.id+"@example.com")
			u.Roles = tc.roles
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			reads := map[string]func() (*storage.User, error){
				"User":        func() (*storage.User, error) { return s.User(ctx, tc.id) },
				"UserByLogin": func() (*storage.User, error) { return s.UserByLogin(ctx, tc.id+"@example.com") },
				"Users": func() (*storage.User, error) {
					us, err := s.Users(ctx, 0, 100)
					for _, u := range us {
						if u.ID == tc.id {
							return u, err
						}
					}
					return nil, errors.Join(err, storage.ErrNotFound)
				},
			}
			for name, read := range reads {
				got, err := read()
				if err != nil || got.Roles == nil || !slices.Equal(got.Roles, tc.want) {
					t.Errorf("%s(%s).Roles = %#v (%v), want %#v", name, tc.id, rolesOf(got), err, tc.want)
				}
			}
		})
	}
}

func rolesOf(u *storage.User) []string {
	if u == nil {
		return nil
	}
	return u.Roles
}

// testSetUserRoles: adds and removals give the sorted set, repeat without
// error, bump updated_at; an unknown user is ErrNotFound.
func testSetUserRoles(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	u := newUser("u1", "u1@example.com")
	u.Roles = []string{"admin"}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name        string
		add, remove []string
		want        []string
	}{
		{"add", []string{"billing", "a_b"}, nil, []string{"a_b", "admin", "billing"}},
		{"add present", []string{"admin", "billing"}, nil, []string{"a_b", "admin", "billing"}},
		{"remove", nil, []string{"admin"}, []string{"a_b", "billing"}},
		{"remove absent", nil, []string{"admin", "nobody"}, []string{"a_b", "billing"}},
		{"add and remove", []string{"x", "x"}, []string{"billing"}, []string{"a_b", "x"}},
		{"both ways removes", []string{"y"}, []string{"y"}, []string{"a_b", "x"}},
		{"nothing", nil, nil, []string{"a_b", "x"}},
		{"remove all", nil, []string{"a_b", "x"}, []string{}},
	}
	before := u.UpdatedAt
	for _, st := range steps {
		got, err := s.SetUserRoles(ctx, "u1", st.add, st.remove)
		if err != nil || got == nil || !slices.Equal(got, st.want) {
			t.Errorf("%s: SetUserRoles(u1, %q, %q) = %#v, %v; want %#v", st.name, st.add, st.remove, got, err, st.want)
		}
		read, err := s.User(ctx, "u1")
		if err != nil || !slices.Equal(read.Roles, st.want) {
			t.Errorf("%s: User(u1).Roles = %#v, %v; want %#v", st.name, rolesOf(read), err, st.want)
		}
	}
	if read, err := s.User(ctx, "u1"); err != nil || !read.UpdatedAt.After(before) {
		t.Errorf("updated_at after SetUserRoles = %v (%v), want after %v", read.UpdatedAt, err, before)
	}
	if got, err := s.SetUserRoles(ctx, "nobody", []string{"admin"}, nil); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("SetUserRoles(unknown user) = %v, %v; want ErrNotFound", got, err)
	}
}

// testSetUserRolesRace: concurrent changes of one user's roles lose none.
func testSetUserRolesRace(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	if err := s.CreateUser(ctx, newUser("u1", "u1@example.com")); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var want []string
	var wg sync.WaitGroup
	for i := range n {
		role := fmt.Sprintf("r%02d", i)
		want = append(want, role)
		wg.Go(func() {
			if _, err := s.SetUserRoles(ctx, "u1", []string{role}, nil); err != nil {
				t.Errorf("SetUserRoles(u1, %s) = %v", role, err)
			}
		})
	}
	wg.Wait()
	u, err := s.User(ctx, "u1")
	if err != nil || !slices.Equal(u.Roles, want) {
		t.Errorf("after %d concurrent adds, User(u1).Roles = %q (%v), want %q", n, rolesOf(u), err, want)
	}
}

// testRolesContainPattern: roles LIKE RolesContainPattern(r) ESCAPE '\'
// finds exactly the users who have r; _ in a name is no wildcard.
func testRolesContainPattern(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	users := map[string][]string{
		"u_ab":   {"a_b"},
		"u_axb":  {"axb"},
		"u_both": {"a_b", "admin"},
		"u_adm":  {"admin", "administrator"},
		"u_pre":  {"xa_b", "a_bx"},
		"u_none": {},
	}
	for id, roles := range users {
		u := newUser(id, id+"@example.com")
		u.Roles = roles
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		role string
		want []string
	}{
		{"a_b", []string{"u_ab", "u_both"}},
		{"axb", []string{"u_axb"}},
		{"admin", []string{"u_adm", "u_both"}},
		{"administrator", []string{"u_adm"}},
		{"a", nil},
		{"nobody", nil},
	} {
		var got []string
		err := s.DB().NewSelect().Model((*storage.User)(nil)).Column("id").
			Where(`roles LIKE ? ESCAPE '\'`, storage.RolesContainPattern(tc.role)).Order("id").Scan(ctx, &got)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("users with role %q = %q, %v; want %q", tc.role, got, err, tc.want)
		}
	}
}
