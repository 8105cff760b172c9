package storagetest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/torii-idp/torii/storage"
)

// An MFA challenge is live until used or expired, works once (of parallel
// uses one wins), and goes with its user or client.
func testMFAChallenges(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	if err := s.CreateUser(ctx, newUser("u1", "u1@example.com")); err != nil {
		t.Fatal(err)
	}
	mustCreateClient(t, s, "c1")
	c := &storage.MFAChallenge{TokenHash: "h1", UserID: "u1", ClientID: "c1", Scope: "openid offline_access", ExpiresAt: time.Now().Add(time.Minute)}
	if err := s.CreateMFAChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.LiveMFAChallenge(ctx, "h1")
	if err != nil || got.UserID != "u1" || got.ClientID != "c1" || got.Scope != "openid offline_access" {
		t.Fatalf("LiveMFAChallenge = %+v, %v", got, err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if err := s.UseMFAChallenge(ctx, "h1"); err == nil {
				wins.Add(1)
			} else if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("UseMFAChallenge = %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d of 10 parallel uses won, want 1", wins.Load())
	}
	if _, err := s.LiveMFAChallenge(ctx, "h1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("LiveMFAChallenge(used) = %v, want ErrNotFound", err)
	}
	expired := &storage.MFAChallenge{TokenHash: "h2", UserID: "u1", ClientID: "c1", ExpiresAt: time.Now().Add(-time.Second)}
	if err := s.CreateMFAChallenge(ctx, expired); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LiveMFAChallenge(ctx, "h2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("LiveMFAChallenge(expired) = %v, want ErrNotFound", err)
	}
	if err := s.UseMFAChallenge(ctx, "h2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UseMFAChallenge(expired) = %v, want ErrNotFound", err)
	}
	if n, err := s.DeleteExpired(ctx, 10); err != nil || n["mfa_challenges"] != 1 {
		t.Errorf("DeleteExpired = %v, %v; want 1 challenge", n, err)
	}
	if err := s.CreateMFAChallenge(ctx, &storage.MFAChallenge{TokenHash: "h3", UserID: "u1", ClientID: "c1", ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteClient(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LiveMFAChallenge(ctx, "h3"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("challenge of a deleted client = %v, want gone", err)
	}
}

// RevokeOtherSubjectTokens revokes every grant of the subject but the one
// kept, and nobody else's.
func testRevokeOtherSubjectTokens(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := mustCreateClient(t, s, "app")
	for _, u := range []string{"u1", "u2"} {
		if err := s.CreateUser(ctx, newUser(u, u+"@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []struct{ req, user string }{{"keep", "u1"}, {"other", "u1"}, {"theirs", "u2"}} {
		r := newRequest(c, g.req, g.user)
		if err := s.CreateAccessTokenSession(ctx, "at-"+g.req, r); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRefreshTokenSession(ctx, "rt-"+g.req, "at-"+g.req, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeOtherSubjectTokens(ctx, "u1", "keep"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req    string
		active bool
	}{{"keep", true}, {"other", false}, {"theirs", true}} {
		_, atErr := s.GetAccessTokenSession(ctx, "at-"+tc.req, emptySession())
		_, rtErr := s.GetRefreshTokenSession(ctx, "rt-"+tc.req, emptySession())
		if (atErr == nil) != tc.active || (rtErr == nil) != tc.active {
			t.Errorf("grant %s after RevokeOtherSubjectTokens(u1, keep): access %v, refresh %v; want active %v", tc.req, atErr, rtErr, tc.active)
		}
	}
}
