package provider

import (
	"context"
	"encoding/json"
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
			if ki.State != "signing" {
				t.Errorf("first key %s state %q, want signing", ki.KID, ki.State)
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
		if got, want := added[0].SignsFrom.Sub(added[0].CreatedAt), MinActivationDelay(time.Hour); got != want || added[0].State != "next" {
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
