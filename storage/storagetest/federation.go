package storagetest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/torii-idp/torii/storage"
)

// Identities are keyed by (provider, subject), listed per user, unlinked
// only by their user, and go with the user.
func testIdentities(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	for _, u := range []string{"u1", "u2"} {
		if err := s.CreateUser(ctx, newUser(u, u+"@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateIdentity(ctx, &storage.Identity{Provider: "github", Subject: "42", UserID: "u1", Email: "a@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateIdentity(ctx, &storage.Identity{Provider: "google", Subject: "42", UserID: "u1"}); err != nil {
		t.Fatalf("same subject at another provider: %v", err)
	}
	// The same upstream identity cannot be linked twice, to anyone.
	for _, u := range []string{"u1", "u2"} {
		err := s.CreateIdentity(ctx, &storage.Identity{Provider: "github", Subject: "42", UserID: u})
		if !errors.Is(err, storage.ErrAlreadyExists) {
			t.Errorf("CreateIdentity(github 42 → %s) again = %v, want ErrAlreadyExists", u, err)
		}
	}
	got, err := s.Identity(ctx, "github", "42")
	if err != nil || got.UserID != "u1" || got.Email != "a@example.com" || got.CreatedAt.IsZero() {
		t.Fatalf("Identity(github, 42) = %+v, %v", got, err)
	}
	if _, err := s.Identity(ctx, "github", "43"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Identity(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.TouchIdentity(ctx, "github", "42", "b@example.com"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Identity(ctx, "github", "42"); got.Email != "b@example.com" {
		t.Errorf("email after TouchIdentity = %q, want b@example.com", got.Email)
	}
	ids, err := s.Identities(ctx, "u1")
	if err != nil || len(ids) != 2 {
		t.Fatalf("Identities(u1) = %d, %v; want 2", len(ids), err)
	}
	if ids, err := s.Identities(ctx, "u2"); err != nil || len(ids) != 0 || ids == nil {
		t.Errorf("Identities(u2) = %v, %v; want an empty list", ids, err)
	}
	if err := s.DeleteIdentity(ctx, "u2", "github", "42"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteIdentity by another user = %v, want ErrNotFound", err)
	}
	if err := s.DeleteIdentity(ctx, "u1", "github", "42"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Identity(ctx, "github", "42"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Identity after unlink = %v, want ErrNotFound", err)
	}
	if err := s.DeleteUser(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Identity(ctx, "google", "42"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("identity of a deleted user = %v, want gone", err)
	}
}

// Two users racing to link one upstream identity: exactly one wins.
func testIdentityRace(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	for i := range 10 {
		if err := s.CreateUser(ctx, newUser(string(rune('a'+i)), string(rune('a'+i))+"@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			err := s.CreateIdentity(ctx, &storage.Identity{Provider: "oidc", Subject: "s", UserID: string(rune('a' + i))})
			if err == nil {
				wins.Add(1)
			} else if !errors.Is(err, storage.ErrAlreadyExists) {
				t.Errorf("CreateIdentity = %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d of 10 parallel links won, want 1", wins.Load())
	}
}

// A federation flow is taken once (of parallel takes one wins), never when
// expired, and expired flows are cleaned up.
func testFederationFlows(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	f := &storage.FederationFlow{StateHash: "h1", Provider: "github", Purpose: storage.FlowLogin, RequestID: "req1",
		Nonce: "n", Verifier: "v", ExpiresAt: time.Now().Add(time.Minute)}
	if err := s.CreateFederationFlow(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFederationFlow(ctx, f); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("CreateFederationFlow(same state) = %v, want ErrAlreadyExists", err)
	}
	if got, err := s.FederationFlow(ctx, "h1"); err != nil || got.RequestID != "req1" {
		t.Fatalf("FederationFlow = %+v, %v", got, err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			got, err := s.TakeFederationFlow(ctx, "h1")
			switch {
			case err == nil:
				wins.Add(1)
				if got.Provider != "github" || got.Purpose != storage.FlowLogin || got.RequestID != "req1" || got.Nonce != "n" || got.Verifier != "v" {
					t.Errorf("TakeFederationFlow = %+v", got)
				}
			case !errors.Is(err, storage.ErrNotFound):
				t.Errorf("TakeFederationFlow = %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d of 10 parallel takes won, want 1", wins.Load())
	}
	if _, err := s.TakeFederationFlow(ctx, "unknown"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("TakeFederationFlow(unknown) = %v, want ErrNotFound", err)
	}
	old := &storage.FederationFlow{StateHash: "h2", Provider: "oidc", Purpose: storage.FlowLogin, ExpiresAt: time.Now().Add(-time.Second)}
	if err := s.CreateFederationFlow(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FederationFlow(ctx, "h2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("FederationFlow(expired) = %v, want ErrNotFound", err)
	}
	if err := s.CreateFederationFlow(ctx, &storage.FederationFlow{StateHash: "h3", Provider: "oidc", Purpose: storage.FlowLogin, ExpiresAt: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeFederationFlow(ctx, "h3"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("TakeFederationFlow(expired) = %v, want ErrNotFound", err)
	}
	if n, err := s.DeleteExpired(ctx, 10); err != nil || n["federation_flows"] != 1 {
		t.Errorf("DeleteExpired = %v, %v; want 1 federation flow", n, err)
	}
}

// A session keeps the provider it was signed in through.
func testLoginSessionIDP(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	if err := s.CreateUser(ctx, newUser("u1", "u1@example.com")); err != nil {
		t.Fatal(err)
	}
	ls := &storage.LoginSession{IDHash: "s1", Subject: "u1", AuthTime: time.Now(), AMR: []string{"fed"}, IDP: "github", ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateLoginSession(ctx, ls); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoginSession(ctx, "s1")
	if err != nil || got.IDP != "github" {
		t.Errorf("LoginSession = %+v, %v; want idp github", got, err)
	}
	got, _, err = s.LoginSessionUser(ctx, "s1")
	if err != nil || got.IDP != "github" {
		t.Errorf("LoginSessionUser = %+v, %v; want idp github", got, err)
	}
}
