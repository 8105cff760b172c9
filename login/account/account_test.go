package account

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

func newClock() *storagetest.Clock {
	return storagetest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
}

func mustCreate(t *testing.T, s *Service, nu NewUser) *storage.User {
	t.Helper()
	u, err := s.Create(t.Context(), nu)
	if err != nil {
		t.Fatalf("Create(%q) = %v", nu.Email, err)
	}
	return u
}

func TestCreateGetListDelete(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		t.Parallel()
		s := New(open(t), Config{})
		ctx := t.Context()
		u := mustCreate(t, s, NewUser{
			Email: " Alice@Example.COM ", Password: "correct horse", Username: "Alice",
			Phone: "+14155550100", PhoneVerified: true, Name: " Alice Liddell ", EmailVerified: true,
		})
		if _, err := uuid.Parse(u.ID); err != nil || strings.Contains(u.ID, "alice") {
			t.Errorf("ID = %q, want an opaque UUID", u.ID)
		}
		if u.Email != "alice@example.com" || u.PreferredUsername() != "alice" || u.Name != "Alice Liddell" ||
			u.Roles == nil || len(u.Roles) != 0 || !u.EmailVerified || !u.PhoneVerified || u.Phone != "+14155550100" {
			t.Errorf("Create stored %+v", u)
		}
		if !phcPattern.MatchString(u.PasswordHash) {
			t.Errorf("PasswordHash = %q, want argon2id PHC", u.PasswordHash)
		}

		got, err := s.Get(ctx, u.ID)
		if err != nil || got.Email != u.Email || got.PasswordHash != u.PasswordHash {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		bob := mustCreate(t, s, NewUser{Email: "bob@example.com", Password: "another password", Roles: []string{"billing", RoleAdmin, "billing"}})
		if bob.Username != nil || !slices.Equal(bob.Roles, []string{RoleAdmin, "billing"}) {
			t.Errorf("bob = %+v, want no username and roles [admin billing]", bob)
		}
		if got, err := s.Get(ctx, bob.ID); err != nil || !slices.Equal(got.Roles, []string{RoleAdmin, "billing"}) {
			t.Errorf("Get(bob).Roles = %q, %v; want [admin billing]", got.Roles, err)
		}

		list, err := s.List(ctx, 0, 10)
		if err != nil || len(list) != 2 || list[0].Email != "alice@example.com" || list[1].Email != "bob@example.com" {
			t.Fatalf("List(0, 10) = %v, %v", list, err)
		}
		if list, err := s.List(ctx, 1, 10); err != nil || len(list) != 1 || list[0].ID != bob.ID {
			t.Fatalf("List(1, 10) = %v, %v", list, err)
		}

		if err := s.Delete(ctx, u.ID); err != nil {
			t.Fatalf("Delete = %v", err)
		}
		if _, err := s.Get(ctx, u.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after Delete = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, u.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Delete = %v, want ErrNotFound", err)
		}
		// The email is free again.
		mustCreate(t, s, NewUser{Email: "alice@example.com", Password: "correct horse"})
	})
}

func TestGetDeleteOddIDs(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		t.Parallel()
		s := New(open(t), Config{})
		for _, id := range []string{"", "nope", "a\x00b", "\xff\xfe", strings.Repeat("x", 10_000), "' OR 1=1--"} {
			if _, err := s.Get(t.Context(), id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%.20q) = %v, want ErrNotFound", id, err)
			}
			if err := s.Delete(t.Context(), id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Delete(%.20q) = %v, want ErrNotFound", id, err)
			}
		}
	})
}

func TestListBounds(t *testing.T) {
	s := New(nil, Config{}) // the arguments are checked before the store is used
	tests := []struct {
		offset, limit int
		field         string
	}{
		{-1, 10, "offset"},
		{0, 0, "limit"},
		{0, -5, "limit"},
		{0, MaxListLimit + 1, "limit"},
	}
	for _, tc := range tests {
		_, err := s.List(t.Context(), tc.offset, tc.limit)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("List(%d, %d) = %v, want *ValidationError for %s", tc.offset, tc.limit, err, tc.field)
		}
	}
}

func TestCreateDuplicates(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		t.Parallel()
		s := New(open(t), Config{})
		mustCreate(t, s, NewUser{Email: "alice@example.com", Username: "alice", Password: "correct horse"})
		tests := []struct {
			name string
			nu   NewUser
			want error
		}{
			{"same email", NewUser{Email: "alice@example.com", Password: "correct horse"}, ErrEmailTaken},
			{"email in another case", NewUser{Email: "ALICE@example.COM", Password: "correct horse"}, ErrEmailTaken},
			{"full-width email", NewUser{Email: "ａｌｉｃｅ@example.com", Password: "correct horse"}, ErrEmailTaken},
			{"username in another case", NewUser{Email: "a2@example.com", Username: "ALICE", Password: "correct horse"}, ErrUsernameTaken},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if u, err := s.Create(t.Context(), tc.nu); !errors.Is(err, tc.want) {
					t.Errorf("Create = %+v, %v; want %v", u, err, tc.want)
				}
			})
		}
		if list, err := s.List(t.Context(), 0, 10); err != nil || len(list) != 1 {
			t.Errorf("List = %d users, %v; want 1", len(list), err)
		}
	})
}

func TestCreateSQLMetacharactersAreData(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		t.Parallel()
		s := New(open(t), Config{})
		ctx := t.Context()
		u := mustCreate(t, s, NewUser{
			Email:    "o'brien--+1=1%_@example.com",
			Password: `pass'word"); DROP TABLE users;--`,
			Name:     `Robert'); DROP TABLE users;-- "%_\`,
		})
		got, err := s.Get(ctx, u.ID)
		if err != nil || got.Email != "o'brien--+1=1%_@example.com" || got.Name != `Robert'); DROP TABLE users;-- "%_\` {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		if _, err := s.Authenticate(ctx, "O'Brien--+1=1%_@example.com", `pass'word"); DROP TABLE users;--`); err != nil {
			t.Errorf("Authenticate with metacharacters = %v", err)
		}
		for _, login := range []string{"' OR 1=1--", "' OR '1'='1", "%", "_", "*", "alice' --"} {
			if _, err := s.Authenticate(ctx, login, "x' OR '1'='1"); !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("Authenticate(%q) = %v, want ErrInvalidCredentials", login, err)
			}
		}
		if list, err := s.List(ctx, 0, 10); err != nil || len(list) != 1 {
			t.Errorf("List = %d users, %v; want 1", len(list), err)
		}
	})
}

func TestCreateValidation(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		t.Parallel()
		s := New(open(t), Config{})
		huge := strings.Repeat("x", 10_000)
		ok := NewUser{Email: "ok@example.com", Password: "correct horse"}
		with := func(f func(*NewUser)) NewUser { nu := ok; f(&nu); return nu }
		tests := []struct {
			name  string
			nu    NewUser
			field string
		}{
			{"no email", with(func(n *NewUser) { n.Email = "" }), "email"},
			{"bad email", with(func(n *NewUser) { n.Email = "Bob <bob@x.io>" }), "email"},
			{"10 kB email", with(func(n *NewUser) { n.Email = huge + "@example.com" }), "email"},
			{"NUL in email", with(func(n *NewUser) { n.Email = "a\x00b@example.com" }), "email"},
			{"10 kB username", with(func(n *NewUser) { n.Username = huge }), "username"},
			{"username with @", with(func(n *NewUser) { n.Username = "a@b" }), "username"},
			{"no password", with(func(n *NewUser) { n.Password = "" }), "password"},
			{"7-char password", with(func(n *NewUser) { n.Password = "1234567" }), "password"},
			{"129-char password", with(func(n *NewUser) { n.Password = strings.Repeat("p", 129) }), "password"},
			{"10 kB password", with(func(n *NewUser) { n.Password = huge }), "password"},
			{"bad phone", with(func(n *NewUser) { n.Phone = "555-0100" }), "phone"},
			{"10 kB phone", with(func(n *NewUser) { n.Phone = "+" + strings.Repeat("1", 10_000) }), "phone"},
			{"verified without phone", with(func(n *NewUser) { n.PhoneVerified = true }), "phone"},
			{"10 kB name", with(func(n *NewUser) { n.Name = huge }), "name"},
			{"name with NUL", with(func(n *NewUser) { n.Name = "a\x00b" }), "name"},
			{"name invalid UTF-8", with(func(n *NewUser) { n.Name = "\xff" }), "name"},
			{"bad role", with(func(n *NewUser) { n.Roles = []string{"admin", "Root"} }), "roles"},
			{"empty role", with(func(n *NewUser) { n.Roles = []string{""} }), "roles"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.Create(t.Context(), tc.nu)
				var ve *ValidationError
				if !errors.As(err, &ve) || ve.Field != tc.field {
					t.Fatalf("Create = %v, want *ValidationError for %s", err, tc.field)
				}
				if strings.Contains(err.Error(), "storage") {
					t.Errorf("error %q comes from the database", err)
				}
				if tc.nu.Password != "" && strings.Contains(err.Error(), tc.nu.Password) {
					t.Errorf("error %q contains the password", err)
				}
			})
		}
		if list, err := s.List(t.Context(), 0, 10); err != nil || len(list) != 0 {
			t.Errorf("List = %d users, %v; want none", len(list), err)
		}
	})
}
