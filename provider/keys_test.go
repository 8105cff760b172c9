package provider

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// clock is a settable clock for tests.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }
func newKeysForTest(s *storage.Store, c *clock) *Keys {
	return NewKeys(s, KeysConfig{Retain: time.Hour, ActivationDelay: time.Minute, ReloadInterval: time.Hour, Now: c.Now})
}

func jwksOf(t *testing.T, k *Keys) jose.JSONWebKeySet {
	t.Helper()
	doc, etag, err := k.JWKS(t.Context())
	if err != nil {
		t.Fatalf("JWKS() = %v", err)
	}
	if etag == "" {
		t.Error("JWKS() has no ETag")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatalf("JWKS document %s: %v", doc, err)
	}
	// Only public members, ever.
	for _, member := range []string{`"d"`, `"p"`, `"q"`, `"dp"`, `"dq"`, `"qi"`} {
		if strings.Contains(string(doc), member+":") {
			t.Errorf("JWKS contains private member %s: %s", member, doc)
		}
	}
	seen := map[string]bool{}
	for _, k := range set.Keys {
		if seen[k.KeyID] {
			t.Errorf("duplicate kid %s", k.KeyID)
		}
		seen[k.KeyID] = true
		if k.Use != "sig" || !ValidAlg(k.Algorithm) || !k.IsPublic() {
			t.Errorf("JWKS key %s: use=%q alg=%q public=%v", k.KeyID, k.Use, k.Algorithm, k.IsPublic())
		}
	}
	return set
}

func TestKeysEnsureAndRotate(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		s := open(t)
		c := &clock{}
		k := newKeysForTest(s, c)
		ctx := t.Context()
		if err := k.Ensure(ctx); err != nil {
			t.Fatalf("Ensure() = %v", err)
		}
		if err := k.Ensure(ctx); err != nil {
			t.Fatalf("second Ensure() = %v", err)
		}
		infos, _ := k.List(ctx)
		if len(infos) != 3 {
			t.Fatalf("after Ensure: %d keys, want one per algorithm (3): %+v", len(infos), infos)
		}
		first := map[string]string{}
		for _, ki := range infos {
			if ki.State != KeyActive {
				t.Errorf("first key %s state %q, want active", ki.KID, ki.State)
			}
			first[ki.Alg] = ki.KID
		}
		if got := len(jwksOf(t, k).Keys); got != 3 {
			t.Errorf("JWKS has %d keys, want 3", got)
		}

		added, err := k.Rotate(ctx, AlgRS256)
		if err != nil || len(added) != 1 {
			t.Fatalf("Rotate(RS256) = %v, %v", added, err)
		}
		newKID := added[0].KID
		// Published at once, but the old key still signs until activation.
		set := jwksOf(t, k)
		if len(set.Key(newKID)) != 1 || len(set.Key(first[AlgRS256])) != 1 {
			t.Errorf("after rotate, JWKS should hold both RS256 keys: %v", set.Keys)
		}
		if set.Keys[0].KeyID != newKID {
			t.Errorf("newest key should come first in the JWKS")
		}
		if jwk, _ := k.signingKey(ctx, AlgRS256); jwk.KeyID != first[AlgRS256] {
			t.Errorf("signing key right after rotation = %s, want the old %s (activation delay)", jwk.KeyID, first[AlgRS256])
		}
		if got, want := added[0].SignsFrom.Sub(added[0].CreatedAt), MinActivationDelay(time.Hour); got != want || added[0].State != KeyNext {
			t.Errorf("rotated key: %+v, signs %s after its creation; want state next and %s", added[0], got, want)
		}
		c.Advance(added[0].SignsFrom.Sub(c.Now()) + time.Second)
		if err := k.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if jwk, _ := k.signingKey(ctx, AlgRS256); jwk.KeyID != newKID {
			t.Errorf("signing key after activation = %s, want %s", jwk.KeyID, newKID)
		}
		if _, err := k.verificationKey(ctx, first[AlgRS256]); err != nil {
			t.Errorf("old key no longer verifies within retention: %v", err)
		}
		// Past retention the old key is retired and deleted.
		c.Advance(2 * time.Hour)
		if err := k.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := k.verificationKey(ctx, first[AlgRS256]); err == nil {
			t.Error("retired key still verifies")
		}
		if n, err := k.DeleteRetired(ctx); err != nil || n != 1 {
			t.Errorf("DeleteRetired() = %d, %v; want 1", n, err)
		}
		if got := len(jwksOf(t, k).Keys); got != 3 {
			t.Errorf("after retirement JWKS has %d keys, want 3", got)
		}
		if _, err := k.Rotate(ctx, "HS256"); err == nil {
			t.Error("Rotate(HS256) succeeded")
		}
	})
}

func TestKeysColdStartRace(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		s := open(t)
		var wg sync.WaitGroup
		nodes := make([]*Keys, 4)
		for i := range nodes {
			nodes[i] = NewKeys(s, KeysConfig{})
			wg.Go(func() {
				if err := nodes[i].Ensure(context.Background()); err != nil {
					t.Errorf("node %d Ensure() = %v", i, err)
				}
			})
		}
		wg.Wait()
		infos, err := nodes[0].List(t.Context())
		if err != nil || len(infos) != 3 {
			t.Errorf("after 4 nodes started at once: %d keys (%v), want 3", len(infos), err)
		}
		// Every node signs with the same keys.
		for _, n := range nodes[1:] {
			if err := n.Reload(t.Context()); err != nil {
				t.Fatal(err)
			}
			for _, alg := range Algorithms {
				a, _ := nodes[0].signingKey(t.Context(), alg)
				b, _ := n.signingKey(t.Context(), alg)
				if a.KeyID != b.KeyID {
					t.Errorf("nodes disagree on the %s key", alg)
				}
			}
		}
	})
}

// TestActivationDelayCoversJWKSCache: a rotated key signs only after every
// JWKS a relying party may have cached without it has expired: the
// activation delay is raised to MinActivationDelay, and the JWKS cache
// lifetime never exceeds what the delay covers (issue 14 item 6, R11).
func TestActivationDelayCoversJWKSCache(t *testing.T) {
	tests := []struct {
		name          string
		cfg           KeysConfig
		wantDelay     time.Duration
		wantCacheLife time.Duration
	}{
		{"default", KeysConfig{}, 6 * time.Minute, 5 * time.Minute},
		{"one minute is raised", KeysConfig{ActivationDelay: time.Minute}, 6 * time.Minute, 5 * time.Minute},
		{"just too short is raised", KeysConfig{ActivationDelay: 6*time.Minute - time.Second}, 6 * time.Minute, 5 * time.Minute},
		{"longer is kept", KeysConfig{ActivationDelay: time.Hour}, time.Hour, 5 * time.Minute},
		{"slower reloads", KeysConfig{ReloadInterval: 2 * time.Minute, ActivationDelay: 5 * time.Minute}, 7*time.Minute + 30*time.Second, 5 * time.Minute},
		{"none: no caching", KeysConfig{ActivationDelay: -1}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := NewKeys(nil, tc.cfg)
			if k.cfg.ActivationDelay != tc.wantDelay || k.CacheLifetime() != tc.wantCacheLife {
				t.Errorf("NewKeys(%+v): activation delay %s, JWKS cache lifetime %s; want %s and %s",
					tc.cfg, k.cfg.ActivationDelay, k.CacheLifetime(), tc.wantDelay, tc.wantCacheLife)
			}
			if k.CacheLifetime() > 0 && k.cfg.ActivationDelay < k.CacheLifetime()+k.cfg.ReloadInterval+activationMargin {
				t.Errorf("activation delay %s < cache lifetime %s + reload interval %s + margin", k.cfg.ActivationDelay, k.CacheLifetime(), k.cfg.ReloadInterval)
			}
		})
	}
}

// TestKeysRotateDue: the scheduled check rotates each algorithm whose newest
// key is at least maxAge old, once even when two nodes check at the same
// moment; the new key is published at once and signs after the activation
// delay; younger keys, a pending rotation, and maxAge off are left alone.
func TestKeysRotateDue(t *testing.T) {
	const maxAge = 90 * 24 * time.Hour
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testKeysRotateDue(t, backend, maxAge) })
	}
}

func testKeysRotateDue(t *testing.T, backend string, maxAge time.Duration) {
	ctx := t.Context()
	// Two nodes: each its own connection pool on one database, with
	// the clock the keys are dated by.
	c := storagetest.NewClock(time.Now().UTC().Truncate(time.Second))
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "torii.db")
	if backend == "postgres" {
		dbURL = storagetest.PostgresURL(t)
	}
	var nodes []*Keys
	for range 2 {
		s, err := storage.Open(ctx, dbURL, storage.Options{Now: c.Now})
		if err != nil {
			t.Fatalf("storage.Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		if _, err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		nodes = append(nodes, NewKeys(s, KeysConfig{Retain: time.Hour, ActivationDelay: time.Minute, ReloadInterval: time.Hour, Now: c.Now}))
	}
	if err := nodes[0].Ensure(ctx); err != nil {
		t.Fatalf("Ensure() = %v", err)
	}
	active := func() map[string]string {
		t.Helper()
		if err := nodes[0].Reload(ctx); err != nil {
			t.Fatal(err)
		}
		kids := map[string]string{}
		for _, alg := range Algorithms {
			jwk, err := nodes[0].signingKey(ctx, alg)
			if err != nil {
				t.Fatal(err)
			}
			kids[alg] = jwk.KeyID
		}
		return kids
	}
	first := active()

	// Young keys are left, and off never rotates.
	c.Advance(maxAge - time.Hour)
	if added, err := nodes[0].RotateDue(ctx, maxAge); err != nil || len(added) != 0 {
		t.Errorf("RotateDue(%s) with keys %s old = %+v, %v; want nothing", maxAge, maxAge-time.Hour, added, err)
	}
	c.Advance(time.Hour)
	if added, err := nodes[0].RotateDue(ctx, 0); err != nil || len(added) != 0 {
		t.Errorf("RotateDue(off) = %+v, %v; want nothing", added, err)
	}

	// Two nodes check at once: one new key per algorithm.
	var wg sync.WaitGroup
	results := make([][]KeyInfo, len(nodes))
	for i, n := range nodes {
		wg.Go(func() {
			added, err := n.RotateDue(context.Background(), maxAge)
			if err != nil {
				t.Errorf("node %d RotateDue() = %v", i, err)
			}
			results[i] = added
		})
	}
	wg.Wait()
	added := append(results[0], results[1]...)
	infos, err := nodes[0].List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != len(Algorithms) || len(infos) != 2*len(Algorithms) {
		t.Fatalf("after two nodes checked at once: added %+v, %d keys stored; want one new key per algorithm", added, len(infos))
	}
	algs := map[string]bool{}
	for _, ki := range added {
		algs[ki.Alg] = true
		if ki.State != KeyNext || ki.SignsFrom.Sub(ki.CreatedAt) != MinActivationDelay(time.Hour) {
			t.Errorf("rotated key %+v: want state %s, signing %s after its creation", ki, KeyNext, MinActivationDelay(time.Hour))
		}
	}
	if len(algs) != len(Algorithms) {
		t.Errorf("rotated algorithms %v, want each of %v once", algs, Algorithms)
	}
	// Published at once, signing only after the activation delay.
	set := jwksOf(t, nodes[0])
	for _, ki := range added {
		if len(set.Key(ki.KID)) != 1 {
			t.Errorf("rotated key %s is not in the JWKS", ki.KID)
		}
	}
	if got := active(); got[AlgES256] != first[AlgES256] {
		t.Errorf("right after rotation the ES256 key is %s, want the old %s", got[AlgES256], first[AlgES256])
	}
	// A pending rotation is not repeated, however short maxAge.
	if again, err := nodes[1].RotateDue(ctx, time.Nanosecond); err != nil || len(again) != 0 {
		t.Errorf("RotateDue() with a next key pending = %+v, %v; want nothing", again, err)
	}
	c.Advance(MinActivationDelay(time.Hour))
	got := active()
	for _, ki := range added {
		if got[ki.Alg] != ki.KID {
			t.Errorf("after the activation delay the %s key is %s, want %s", ki.Alg, got[ki.Alg], ki.KID)
		}
	}
	// The old keys retire the retention time (1h here) after their
	// successors began to sign.
	infos, _ = nodes[0].List(ctx)
	successor := map[string]KeyInfo{}
	for _, ki := range added {
		successor[ki.Alg] = ki
	}
	for _, ki := range infos {
		if ki.KID != first[ki.Alg] {
			continue
		}
		want := successor[ki.Alg].SignsFrom.Add(time.Hour)
		if ki.State != KeyRetiring || ki.RetiresAt == nil || !ki.RetiresAt.Equal(want) {
			t.Errorf("superseded key %+v: want state %s, retires_at %s", ki, KeyRetiring, want)
		}
	}
	// The new keys are young: nothing more is due.
	if again, err := nodes[0].RotateDue(ctx, maxAge); err != nil || len(again) != 0 {
		t.Errorf("RotateDue() after rotation = %+v, %v; want nothing", again, err)
	}
}
