package provider

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/torii-idp/torii/storage"
)

// The signing algorithms Torii supports. RS256 is the OpenID Connect default.
const (
	AlgRS256 = string(jose.RS256)
	AlgES256 = string(jose.ES256)
	AlgEdDSA = string(jose.EdDSA)
)

// Algorithms lists the supported signing algorithms, default first.
var Algorithms = []string{AlgRS256, AlgES256, AlgEdDSA}

// ValidAlg reports whether alg is a supported signing algorithm.
func ValidAlg(alg string) bool { return slices.Contains(Algorithms, alg) }

// JWKSMaxAge is how long relying parties may cache the JWKS document (its
// Cache-Control max-age). A rotated key must not sign before every copy
// cached without it has expired, so the activation delay is a function of
// it: see MinActivationDelay.
const JWKSMaxAge = 5 * time.Minute

// activationMargin is the part of the activation delay that allows for
// clock differences between nodes (each decides on its own clock when a
// rotated key starts signing).
const activationMargin = 30 * time.Second

// MinActivationDelay is the shortest activation delay with which no
// relying party can hold a JWKS that lacks the key signing its tokens: a
// node serves the rotated key at the latest one reload interval after it
// was published, a relying party may keep the JWKS it fetched just before
// that for JWKSMaxAge, and nodes' clocks may differ by activationMargin.
// With the default reload interval it is 6 minutes.
func MinActivationDelay(reloadInterval time.Duration) time.Duration {
	return reloadInterval + JWKSMaxAge + activationMargin
}

// KeysConfig tunes signing-key handling. Zero values pick the defaults.
type KeysConfig struct {
	// Retain is how long a superseded key stays published in the JWKS (and
	// accepted) after a newer key of its algorithm was added. It must cover
	// the longest lifetime of a token it signed plus relying parties' JWKS
	// caching. Default 25 hours.
	Retain time.Duration
	// ActivationDelay is how long a rotated-in key is published before it
	// signs, so that every node (which re-reads keys every ReloadInterval)
	// and every relying party (which may cache the JWKS for JWKSMaxAge)
	// knows it first. Default and minimum MinActivationDelay(ReloadInterval):
	// a shorter positive delay is raised to it. Negative means none (for
	// tests): a rotated key signs at once, and the JWKS is then served
	// without a cache lifetime (CacheLifetime). The first key of an
	// algorithm signs at once.
	ActivationDelay time.Duration
	// ReloadInterval is how often the key set is re-read from the database,
	// so that a rotation on another node is seen. Default 30 seconds.
	ReloadInterval time.Duration
	// RSABits is the RSA modulus size. Default 2048.
	RSABits int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// KeyInfo describes a stored signing key without its private part.
type KeyInfo struct {
	KID       string    `json:"kid"`
	Alg       string    `json:"alg"`
	CreatedAt time.Time `json:"created_at"`
	// SignsFrom is when the key starts (or started) signing: its creation
	// plus the activation delay, or its creation for the first key of its
	// algorithm.
	SignsFrom time.Time `json:"signs_from"`
	// State is one of KeyNext, KeyActive, KeyRetiring or KeyRetired.
	State string `json:"state"`
	// RetiresAt is when a superseded key leaves the JWKS (its successor
	// began to sign plus the retention time); nil while no newer key of its
	// algorithm has begun to sign.
	RetiresAt *time.Time `json:"retires_at,omitempty"`
}

// The states of a signing key, in the order a key goes through them.
const (
	// KeyNext is a rotated-in key: published in the JWKS, signing from
	// its SignsFrom.
	KeyNext = "next"
	// KeyActive is the key that signs for its algorithm.
	KeyActive = "active"
	// KeyRetiring is a superseded key: still published and accepted until
	// its RetiresAt, so that the tokens it signed stay verifiable.
	KeyRetiring = "retiring"
	// KeyRetired is a key past its retention: no longer published, and
	// deleted by the next clean-up.
	KeyRetired = "retired"
)

// Keys holds the signing keys: stored in the database, parsed once, kept in
// memory and refreshed periodically.
type Keys struct {
	store *storage.Store
	cfg   KeysConfig

	mu       sync.RWMutex
	set      *keySet
	loadedAt time.Time
}

type keySet struct {
	signing map[string]*jose.JSONWebKey // alg → the key that signs
	byKID   map[string]*jose.JSONWebKey // published keys by kid
	jwks    []byte                      // the public JWKS document
	etag    string
}

// NewKeys returns a key manager over store.
func NewKeys(store *storage.Store, cfg KeysConfig) *Keys {
	if cfg.Retain == 0 {
		cfg.Retain = 25 * time.Hour
	}
	if cfg.ReloadInterval == 0 {
		cfg.ReloadInterval = 30 * time.Second
	}
	switch {
	case cfg.ActivationDelay < 0:
		cfg.ActivationDelay = 0
	case cfg.ActivationDelay < MinActivationDelay(cfg.ReloadInterval):
		cfg.ActivationDelay = MinActivationDelay(cfg.ReloadInterval)
	}
	if cfg.RSABits == 0 {
		cfg.RSABits = 2048
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Keys{store: store, cfg: cfg}
}

// CacheLifetime is how long relying parties may cache the JWKS, served as
// its Cache-Control max-age: JWKSMaxAge, shortened (to zero when rotated
// keys sign at once) so that it never exceeds what the activation delay
// covers (MinActivationDelay).
func (k *Keys) CacheLifetime() time.Duration {
	return max(0, min(JWKSMaxAge, k.cfg.ActivationDelay-k.cfg.ReloadInterval-activationMargin))
}

// Ensure creates a key for every algorithm that has none yet. It takes a
// database lock, so two nodes starting together on an empty database end
// up with one key per algorithm.
func (k *Keys) Ensure(ctx context.Context) error {
	err := k.store.InTx(ctx, func(ctx context.Context) error {
		if err := k.store.Lock(ctx, "signing-keys"); err != nil {
			return err
		}
		stored, err := k.store.SigningKeys(ctx)
		if err != nil {
			return err
		}
		have := map[string]bool{}
		for _, sk := range stored {
			have[sk.Alg] = true
		}
		for _, alg := range Algorithms {
			if have[alg] {
				continue
			}
			if _, err := k.add(ctx, alg); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("provider: ensure signing keys: %w", err)
	}
	return k.Reload(ctx)
}

// Rotate adds a new key for each of algs (every algorithm when algs is
// empty) and describes the new keys. They are published at once and sign
// after the activation delay; the keys they replace stay published for the
// retention time.
func (k *Keys) Rotate(ctx context.Context, algs ...string) ([]KeyInfo, error) {
	if len(algs) == 0 {
		algs = Algorithms
	}
	added, err := k.rotate(ctx, func([]*storage.SigningKey) ([]string, error) {
		for _, alg := range algs {
			if !ValidAlg(alg) {
				return nil, fmt.Errorf("unsupported algorithm %q (want one of %v)", alg, Algorithms)
			}
		}
		return algs, nil
	})
	if err != nil {
		return nil, fmt.Errorf("provider: rotate keys: %w", err)
	}
	return added, nil
}

// RotateDue rotates, as Rotate does, every algorithm whose newest key was
// created maxAge or longer ago, and describes the new keys (none when no
// key is due). A rotated-in key that does not sign yet counts as the
// newest, so a pending rotation is not repeated. The keys are read and
// rotated in one transaction under the lock that Ensure and Rotate take:
// nodes that check at the same moment rotate once between them. A maxAge
// of zero or less rotates nothing.
func (k *Keys) RotateDue(ctx context.Context, maxAge time.Duration) ([]KeyInfo, error) {
	if maxAge <= 0 {
		return nil, nil
	}
	added, err := k.rotate(ctx, func(stored []*storage.SigningKey) ([]string, error) {
		newest := map[string]time.Time{}
		for _, sk := range stored {
			if sk.CreatedAt.After(newest[sk.Alg]) {
				newest[sk.Alg] = sk.CreatedAt
			}
		}
		now := k.cfg.Now()
		var due []string
		for _, alg := range Algorithms {
			// An algorithm without keys is Ensure's to fill.
			if created, ok := newest[alg]; ok && !now.Before(created.Add(maxAge)) {
				due = append(due, alg)
			}
		}
		return due, nil
	})
	if err != nil {
		return nil, fmt.Errorf("provider: rotate due keys: %w", err)
	}
	return added, nil
}

// rotate adds a key for each algorithm that pick chooses from the stored
// keys, reading them and adding the new ones in one transaction under the
// signing-key lock; then it reloads the key set and describes the new keys.
func (k *Keys) rotate(ctx context.Context, pick func([]*storage.SigningKey) ([]string, error)) ([]KeyInfo, error) {
	var kids []string
	err := k.store.InTx(ctx, func(ctx context.Context) error {
		if err := k.store.Lock(ctx, "signing-keys"); err != nil {
			return err
		}
		stored, err := k.store.SigningKeys(ctx)
		if err != nil {
			return err
		}
		algs, err := pick(stored)
		if err != nil {
			return err
		}
		for _, alg := range algs {
			sk, err := k.add(ctx, alg)
			if err != nil {
				return err
			}
			kids = append(kids, sk.KID)
		}
		if len(kids) == 0 {
			return nil
		}
		return k.store.RecordAudit(ctx, &storage.AuditEvent{Type: "keys.rotated", Actor: storage.AuditActorFrom(ctx),
			Detail: map[string]any{"kids": kids, "algorithms": algs}})
	})
	if err != nil || len(kids) == 0 {
		return nil, err
	}
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	infos, err := k.List(ctx)
	if err != nil {
		return nil, err
	}
	added := make([]KeyInfo, 0, len(kids))
	for _, kid := range kids {
		for _, ki := range infos {
			if ki.KID == kid {
				added = append(added, ki)
			}
		}
	}
	return added, nil
}

func (k *Keys) add(ctx context.Context, alg string) (*storage.SigningKey, error) {
	jwk, err := generateKey(alg, k.cfg.RSABits)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(jwk)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	sk := &storage.SigningKey{KID: jwk.KeyID, Alg: alg, JWK: string(raw)}
	if err := k.store.AddSigningKey(ctx, sk); err != nil {
		return nil, err
	}
	return sk, nil
}

// generateKey makes a new private key whose kid is its RFC 7638 thumbprint.
func generateKey(alg string, rsaBits int) (*jose.JSONWebKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	jwk := &jose.JSONWebKey{Key: priv, Algorithm: alg, Use: "sig"}
	pub := jwk.Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("thumbprint: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return jwk, nil
}

// Reload re-reads the keys from the database.
func (k *Keys) Reload(ctx context.Context) error {
	stored, err := k.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("provider: load signing keys: %w", err)
	}
	set, err := k.build(stored)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.set, k.loadedAt = set, k.cfg.Now()
	k.mu.Unlock()
	return nil
}

// states classifies stored keys at now, and says when each signs from;
// keys are oldest first.
func (k *Keys) states(stored []*storage.SigningKey, now time.Time) map[string]KeyInfo {
	states := make(map[string]KeyInfo, len(stored))
	byAlg := map[string][]*storage.SigningKey{}
	for _, sk := range stored {
		byAlg[sk.Alg] = append(byAlg[sk.Alg], sk)
	}
	for _, keys := range byAlg {
		// The signing key is the newest one past its activation delay; the
		// very first key of an algorithm signs at once.
		signsFrom := make([]time.Time, len(keys))
		signing := -1
		for i, sk := range keys {
			signsFrom[i] = sk.CreatedAt.Add(k.cfg.ActivationDelay)
			if i == 0 {
				signsFrom[i] = sk.CreatedAt
			}
			if !signsFrom[i].After(now) {
				signing = i
			}
		}
		for i, sk := range keys {
			ki := KeyInfo{KID: sk.KID, Alg: sk.Alg, CreatedAt: sk.CreatedAt, SignsFrom: signsFrom[i]}
			switch {
			case i == signing:
				ki.State = KeyActive
			case i > signing:
				ki.State = KeyNext
			default:
				// Superseded when its successor began to sign; its tokens
				// live at most Retain beyond that.
				retires := signsFrom[i+1].Add(k.cfg.Retain)
				ki.RetiresAt = &retires
				ki.State = KeyRetiring
				if !now.Before(retires) {
					ki.State = KeyRetired
				}
			}
			states[sk.KID] = ki
		}
	}
	return states
}

func (k *Keys) build(stored []*storage.SigningKey) (*keySet, error) {
	states := k.states(stored, k.cfg.Now())
	set := &keySet{signing: map[string]*jose.JSONWebKey{}, byKID: map[string]*jose.JSONWebKey{}}
	var public jose.JSONWebKeySet
	for _, sk := range stored {
		state := states[sk.KID].State
		if state == KeyRetired {
			continue
		}
		jwk := new(jose.JSONWebKey)
		if err := jwk.UnmarshalJSON([]byte(sk.JWK)); err != nil {
			return nil, fmt.Errorf("provider: decode signing key %s: %w", sk.KID, err)
		}
		if jwk.Algorithm != sk.Alg || jwk.KeyID != sk.KID || jwk.IsPublic() {
			return nil, fmt.Errorf("provider: signing key %s is inconsistent", sk.KID)
		}
		set.byKID[sk.KID] = jwk
		if state == KeyActive {
			set.signing[sk.Alg] = jwk
		}
		public.Keys = append(public.Keys, jwk.Public())
	}
	// Newest first: relying parties that take the first key get the current one.
	slices.Reverse(public.Keys)
	if public.Keys == nil {
		public.Keys = []jose.JSONWebKey{}
	}
	doc, err := json.Marshal(public)
	if err != nil {
		return nil, fmt.Errorf("provider: encode JWKS: %w", err)
	}
	set.jwks = doc
	sum := sha256.Sum256(doc)
	set.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
	return set, nil
}

// current returns the key set, re-reading it when it is older than the
// reload interval.
func (k *Keys) current(ctx context.Context) (*keySet, error) {
	k.mu.RLock()
	set, loadedAt := k.set, k.loadedAt
	k.mu.RUnlock()
	if set != nil && k.cfg.Now().Sub(loadedAt) < k.cfg.ReloadInterval {
		return set, nil
	}
	if err := k.Reload(ctx); err != nil {
		if set != nil {
			// Keep serving the keys we have while the database is away.
			return set, nil
		}
		return nil, err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.set, nil
}

// signingKey returns the key that signs with alg now.
func (k *Keys) signingKey(ctx context.Context, alg string) (*jose.JSONWebKey, error) {
	set, err := k.current(ctx)
	if err != nil {
		return nil, err
	}
	jwk, ok := set.signing[alg]
	if !ok {
		return nil, fmt.Errorf("provider: no signing key for %s", alg)
	}
	return jwk, nil
}

// verificationKey returns the published key with the given kid.
func (k *Keys) verificationKey(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	set, err := k.current(ctx)
	if err != nil {
		return nil, err
	}
	if jwk, ok := set.byKID[kid]; ok {
		return jwk, nil
	}
	return nil, errUnknownKey
}

var errUnknownKey = errors.New("provider: unknown key id")

// JWKS returns the public JSON Web Key Set document and its ETag.
func (k *Keys) JWKS(ctx context.Context) ([]byte, string, error) {
	set, err := k.current(ctx)
	if err != nil {
		return nil, "", err
	}
	return set.jwks, set.etag, nil
}

// List describes every stored key and its state.
func (k *Keys) List(ctx context.Context) ([]KeyInfo, error) {
	stored, err := k.store.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("provider: list keys: %w", err)
	}
	states := k.states(stored, k.cfg.Now())
	infos := make([]KeyInfo, 0, len(stored))
	for _, sk := range stored {
		infos = append(infos, states[sk.KID])
	}
	return infos, nil
}

// DeleteRetired removes keys that are no longer published.
func (k *Keys) DeleteRetired(ctx context.Context) (int, error) {
	infos, err := k.List(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ki := range infos {
		if ki.State != KeyRetired {
			continue
		}
		if err := k.store.DeleteSigningKey(ctx, ki.KID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return n, fmt.Errorf("provider: delete retired key: %w", err)
		}
		n++
	}
	return n, nil
}
