package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/torii-idp/torii/storage"
)

// testRememberedDevices: remembered devices are bound to their user, listed
// unexpired only, forgotten one at a time (only by their user) or all at
// once, deleted with their user and by the clean-up once expired.
func testRememberedDevices(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	for _, id := range []string{"u1", "u2"} {
		if err := s.CreateUser(ctx, newUser(id, id+"@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	soon := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	for _, d := range []struct{ id, user string }{{"r1", "u1"}, {"r2", "u1"}, {"r3", "u2"}} {
		if err := s.CreateRememberedDevice(ctx, &storage.RememberedDevice{ID: d.id, UserID: d.user,
			SecretHash: "hash-" + d.id, UserAgent: "Browser " + d.id, ExpiresAt: soon}); err != nil {
			t.Fatalf("CreateRememberedDevice(%s) = %v", d.id, err)
		}
	}
	d, err := s.RememberedDevice(ctx, "r1")
	if err != nil || d.UserID != "u1" || d.SecretHash != "hash-r1" || d.UserAgent != "Browser r1" || !d.ExpiresAt.Equal(soon) {
		t.Fatalf("RememberedDevice(r1) = %+v, %v", d, err)
	}
	if _, err := s.RememberedDevice(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RememberedDevice(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.CreateRememberedDevice(ctx, &storage.RememberedDevice{ID: "r1", UserID: "u2", ExpiresAt: soon}); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("CreateRememberedDevice(taken ID) = %v, want ErrAlreadyExists", err)
	}
	if err := s.TouchRememberedDevice(ctx, "r2"); err != nil {
		t.Fatal(err)
	}
	if ds, err := s.RememberedDevices(ctx, "u1"); err != nil || len(ds) != 2 {
		t.Errorf("RememberedDevices(u1) = %d, %v; want 2", len(ds), err)
	}
	if err := s.ForgetRememberedDevice(ctx, "u2", "r1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ForgetRememberedDevice(u2, u1's device) = %v, want ErrNotFound", err)
	}
	if err := s.ForgetRememberedDevice(ctx, "u1", "r1"); err != nil {
		t.Errorf("ForgetRememberedDevice(u1, r1) = %v", err)
	}
	if _, err := s.RememberedDevice(ctx, "r1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RememberedDevice(forgotten) = %v, want ErrNotFound", err)
	}
	if n, err := s.ForgetRememberedDevices(ctx, "u1"); err != nil || n != 1 {
		t.Errorf("ForgetRememberedDevices(u1) = %d, %v; want 1", n, err)
	}
	if _, err := s.RememberedDevice(ctx, "r3"); err != nil {
		t.Errorf("u2's device after u1 forgot theirs = %v, want found", err)
	}
	// The clean-up deletes expired ones; the list never shows them.
	if err := s.CreateRememberedDevice(ctx, &storage.RememberedDevice{ID: "r4", UserID: "u2", ExpiresAt: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if ds, err := s.RememberedDevices(ctx, "u2"); err != nil || len(ds) != 1 {
		t.Errorf("RememberedDevices(u2) with one expired = %d, %v; want 1", len(ds), err)
	}
	if n, err := s.DeleteExpired(ctx, 10); err != nil || n["remembered_devices"] != 1 {
		t.Errorf("DeleteExpired = %v, %v; want 1 remembered device", n, err)
	}
	if err := s.DeleteUser(ctx, "u2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RememberedDevice(ctx, "r3"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RememberedDevice of a deleted user = %v, want ErrNotFound", err)
	}
}
