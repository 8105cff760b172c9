package storagetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/torii-idp/torii/storage"
)

// errWrongVerifier stands for fosite's PKCE check failing.
var errWrongVerifier = errors.New("wrong code verifier")

// redeem does with the store what fosite's token endpoint does to redeem
// the code raw (signature sig) in one request: read the code, read its
// PKCE challenge and ask to delete it, and, when the verifier matches, use
// the code in a transaction; then the provider's EndRequest. With note,
// the request names the code first and reads its client, as the token
// endpoint does.
func redeem(ctx context.Context, s *storage.Store, raw, sig string, note, verifierOK bool) error {
	reqCtx := storage.WithRequestCache(ctx)
	err := func() error {
		if note {
			storage.NoteReads(reqCtx, storage.ReadAhead{Code: raw, CodeSignature: sig})
			if _, err := s.Client(reqCtx, "app"); err != nil {
				return err
			}
		}
		if _, err := s.GetAuthorizeCodeSession(reqCtx, sig, emptySession()); err != nil {
			return err
		}
		if _, err := s.GetPKCERequestSession(reqCtx, sig, emptySession()); err != nil {
			return err
		}
		if err := s.DeletePKCERequestSession(reqCtx, sig); err != nil {
			return err
		}
		if !verifierOK {
			return errWrongVerifier
		}
		return s.InTx(reqCtx, func(ctx context.Context) error { return s.InvalidateAuthorizeCodeSession(ctx, sig) })
	}()
	return errors.Join(err, s.EndRequest(reqCtx))
}

// readAhead returns the context of a request that noted n and then read
// its client "app", as the token endpoint does first: on PostgreSQL that
// read brings the rows n names.
func readAhead(t *testing.T, s *storage.Store, n storage.ReadAhead) context.Context {
	t.Helper()
	reqCtx := storage.WithRequestCache(t.Context())
	storage.NoteReads(reqCtx, n)
	if _, err := s.Client(reqCtx, "app"); err != nil {
		t.Fatal(err)
	}
	return reqCtx
}

// pkceLeft reports whether the PKCE challenge of sig is stored, without
// reading it through the store (which would consume it).
func pkceLeft(t *testing.T, s *storage.Store, sig string) bool {
	t.Helper()
	var n int
	if err := s.DB().NewSelect().TableExpr("oauth2_pkce").ColumnExpr("count(*)").Where("signature = ?", sig).
		Scan(t.Context(), &n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// mustCreateCodeWithPKCE stores an authorization code, its OpenID Connect
// session and its PKCE challenge, as the authorization endpoint does.
func mustCreateCodeWithPKCE(t *testing.T, s *storage.Store, c fosite.Client, raw, sig string) {
	t.Helper()
	r := newRequest(c, "req-"+sig, "u")
	r.Form.Set("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
	ctx := t.Context()
	if err := s.CreateAuthorizeCodeSession(ctx, sig, r); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOpenIDConnectSession(ctx, raw, r); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePKCERequestSession(ctx, sig, r); err != nil {
		t.Fatal(err)
	}
}

// codeActive reports whether the code of sig is stored and unused.
func codeActive(t *testing.T, s *storage.Store, sig string) bool {
	t.Helper()
	_, err := s.GetAuthorizeCodeSession(t.Context(), sig, emptySession())
	switch {
	case err == nil:
		return true
	case errors.Is(err, fosite.ErrInvalidatedAuthorizeCode):
		return false
	}
	t.Fatalf("GetAuthorizeCodeSession(%s) = %v", sig, err)
	return false
}

// testPKCEConsumption: in a request cache a redemption reads its PKCE
// challenge and consumes it in the transaction that uses the code, or at
// EndRequest when no redemption commits: a code whose verifier failed
// once can never be redeemed (SECURITY 11), and a redemption whose
// challenge another request consumed meanwhile fails.
func testPKCEConsumption(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := mustCreateClient(t, s, "app")

	for _, note := range []bool{false, true} {
		raw, sig := "raw.ok", "ok"
		if note {
			raw, sig = "raw.ok-noted", "ok-noted"
		}
		mustCreateCodeWithPKCE(t, s, c, raw, sig)
		if err := redeem(ctx, s, raw, sig, note, true); err != nil {
			t.Fatalf("redemption (noted %v) = %v", note, err)
		}
		if pkceLeft(t, s, sig) || codeActive(t, s, sig) {
			t.Errorf("after a redemption (noted %v): challenge left %v, code active %v; want neither",
				note, pkceLeft(t, s, sig), codeActive(t, s, sig))
		}
	}

	// A failed verifier consumes the challenge; the code stays unused, and
	// no later redemption, even with the right verifier, gets through.
	mustCreateCodeWithPKCE(t, s, c, "raw.bad", "bad")
	if err := redeem(ctx, s, "raw.bad", "bad", true, false); !errors.Is(err, errWrongVerifier) {
		t.Fatalf("redemption with a wrong verifier = %v", err)
	}
	if pkceLeft(t, s, "bad") {
		t.Error("the challenge of a failed verifier is still stored")
	}
	if err := redeem(ctx, s, "raw.bad", "bad", true, true); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("retry with the right verifier = %v, want ErrNotFound (no challenge)", err)
	}

	// The delete fosite asks for waits for the end of the request.
	mustCreateCodeWithPKCE(t, s, c, "raw.wait", "wait")
	reqCtx := storage.WithRequestCache(ctx)
	if _, err := s.GetPKCERequestSession(reqCtx, "wait", emptySession()); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePKCERequestSession(reqCtx, "wait"); err != nil {
		t.Fatal(err)
	}
	if !pkceLeft(t, s, "wait") {
		t.Error("the challenge was deleted before the redemption or the end of the request")
	}
	for range 2 {
		if err := s.EndRequest(reqCtx); err != nil {
			t.Fatalf("EndRequest = %v", err)
		}
		if pkceLeft(t, s, "wait") {
			t.Error("the challenge is still stored after EndRequest")
		}
	}

	// Consumed by another request between this one's read and its use of
	// the code: the redemption fails whole, the code stays unused.
	mustCreateCodeWithPKCE(t, s, c, "raw.race", "race")
	reqCtx = readAhead(t, s, storage.ReadAhead{Code: "raw.race", CodeSignature: "race"})
	if _, err := s.GetAuthorizeCodeSession(reqCtx, "race", emptySession()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPKCERequestSession(reqCtx, "race", emptySession()); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePKCERequestSession(reqCtx, "race"); err != nil {
		t.Fatal(err)
	}
	if err := redeem(ctx, s, "raw.race", "race", false, false); !errors.Is(err, errWrongVerifier) {
		t.Fatalf("the other request = %v", err)
	}
	err := s.InTx(reqCtx, func(ctx context.Context) error { return s.InvalidateAuthorizeCodeSession(ctx, "race") })
	if !errors.Is(err, storage.ErrCodeAlreadyUsed) {
		t.Errorf("redemption after the challenge was consumed = %v, want ErrCodeAlreadyUsed", err)
	}
	if err := s.EndRequest(reqCtx); err != nil {
		t.Errorf("EndRequest after the failed redemption = %v", err)
	}
	if !codeActive(t, s, "race") {
		t.Error("the failed redemption marked the code used")
	}

	// A transaction that rolls back leaves the challenge to EndRequest.
	mustCreateCodeWithPKCE(t, s, c, "raw.rollback", "rollback")
	reqCtx = storage.WithRequestCache(ctx)
	if _, err := s.GetPKCERequestSession(reqCtx, "rollback", emptySession()); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePKCERequestSession(reqCtx, "rollback"); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = s.InTx(reqCtx, func(ctx context.Context) error {
		if err := s.InvalidateAuthorizeCodeSession(ctx, "rollback"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v, want boom", err)
	}
	if !pkceLeft(t, s, "rollback") || !codeActive(t, s, "rollback") {
		t.Error("a rolled-back redemption deleted the challenge or used the code")
	}
	if err := s.EndRequest(reqCtx); err != nil {
		t.Fatal(err)
	}
	if pkceLeft(t, s, "rollback") {
		t.Error("the challenge of a rolled-back redemption is still stored after EndRequest")
	}

	// A code without a challenge (a legacy confidential client) redeems as
	// before.
	if err := s.CreateAuthorizeCodeSession(ctx, "plain", newRequest(c, "req-plain", "u")); err != nil {
		t.Fatal(err)
	}
	reqCtx = storage.WithRequestCache(ctx)
	if _, err := s.GetPKCERequestSession(reqCtx, "plain", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("challenge of a code without one = %v, want ErrNotFound", err)
	}
	if err := s.InTx(reqCtx, func(ctx context.Context) error { return s.InvalidateAuthorizeCodeSession(ctx, "plain") }); err != nil {
		t.Errorf("redemption without a challenge = %v", err)
	}
	if err := s.EndRequest(reqCtx); err != nil {
		t.Error(err)
	}
}

// testPKCERedemptionRace: of concurrent redemptions of one code, right and
// wrong verifiers mixed, at most one succeeds, exactly one when only right
// verifiers race, and the challenge is gone afterwards.
func testPKCERedemptionRace(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := mustCreateClient(t, s, "app")
	for _, tc := range []struct {
		name  string
		wrong int // of 20 redemptions, how many have a wrong verifier
	}{
		{"right verifiers", 0},
		{"right and wrong verifiers", 10},
	} {
		raw, sig := "raw."+tc.name, tc.name
		mustCreateCodeWithPKCE(t, s, c, raw, sig)
		var ok atomic.Int32
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				err := redeem(ctx, s, raw, sig, i%2 == 0, i >= tc.wrong)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, errWrongVerifier), errors.Is(err, storage.ErrCodeAlreadyUsed),
					errors.Is(err, fosite.ErrInvalidatedAuthorizeCode), errors.Is(err, fosite.ErrNotFound):
				default:
					t.Errorf("%s: unexpected error %v", tc.name, err)
				}
			})
		}
		wg.Wait()
		n := ok.Load()
		if n > 1 || (tc.wrong == 0 && n != 1) {
			t.Errorf("%s: %d of 20 concurrent redemptions succeeded", tc.name, n)
		}
		if pkceLeft(t, s, sig) {
			t.Errorf("%s: the challenge is still stored", tc.name)
		}
		if used := !codeActive(t, s, sig); used != (n == 1) {
			t.Errorf("%s: code used %v after %d successful redemptions", tc.name, used, n)
		}
	}
}

// testReadAhead: rows named with NoteReads come, on PostgreSQL, with the
// first read that can carry them (a token row and its user with the
// client; the client with the browser's session), and are served once to
// the request's own reads; elsewhere each is read when asked for.
func testReadAhead(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	pg := s.Dialect() == storage.Postgres
	c := mustCreateClient(t, s, "app")
	u := newUser("u1", "a@example.com")
	u.Name = "Ada"
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRefreshTokenSession(ctx, "rt-1", "at-1", newRequest(c, "req-1", "u1")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccessTokenSession(ctx, "at-1", newRequest(c, "req-1", "u1")); err != nil {
		t.Fatal(err)
	}

	// A refresh token's user, with the client.
	reqCtx := readAhead(t, s, storage.ReadAhead{RefreshSignature: "rt-1"})
	u.Name = "Grace"
	if err := s.UpdateUser(ctx, u, "name"); err != nil {
		t.Fatal(err)
	}
	got, err := s.User(reqCtx, "u1")
	if want := map[bool]string{true: "Ada", false: "Grace"}[pg]; err != nil || got.Name != want {
		t.Errorf("User after the client = %+v, %v; want the name %q", got, err, want)
	}
	if got, err := s.User(reqCtx, "u1"); err != nil || got.Name != "Grace" {
		t.Errorf("second User = %+v, %v; want the database's", got, err)
	}
	if got, err := s.GetRefreshTokenSession(reqCtx, "rt-1", emptySession()); err != nil || got.GetID() != "req-1" {
		t.Errorf("GetRefreshTokenSession = %v, %v", got, err)
	}

	// An introspected access token, with the client.
	reqCtx = readAhead(t, s, storage.ReadAhead{AccessSignature: "at-1"})
	if err := s.DeleteAccessTokenSession(ctx, "at-1"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetAccessTokenSession(reqCtx, "at-1", emptySession())
	if pg && err != nil {
		t.Errorf("GetAccessTokenSession = %v, want the row read with the client", err)
	} else if !pg && !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("GetAccessTokenSession = %v, want ErrNotFound", err)
	}
	if _, err := s.GetAccessTokenSession(reqCtx, "at-1", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("second GetAccessTokenSession = %v, want ErrNotFound", err)
	}
	// Unknown rows read ahead are simply not found.
	reqCtx = readAhead(t, s, storage.ReadAhead{AccessSignature: "nope", RefreshSignature: "nope"})
	if _, err := s.GetAccessTokenSession(reqCtx, "nope", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("unknown access token = %v, want ErrNotFound", err)
	}
	if _, err := s.GetRefreshTokenSession(reqCtx, "nope", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("unknown refresh token = %v, want ErrNotFound", err)
	}

	// An authorization request's client, with the browser's session.
	ls := &storage.LoginSession{IDHash: "h1", Subject: "u1", AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateLoginSession(ctx, ls); err != nil {
		t.Fatal(err)
	}
	reqCtx = storage.WithRequestCache(ctx)
	storage.NoteReads(reqCtx, storage.ReadAhead{ClientID: "app"})
	if gotLS, gotU, err := s.LoginSessionUser(reqCtx, "h1"); err != nil || gotLS.Subject != "u1" || gotU.Name != "Grace" {
		t.Fatalf("LoginSessionUser = %+v, %+v, %v", gotLS, gotU, err)
	}
	renamed := *c
	renamed.Name = "Renamed"
	if err := s.UpdateClient(ctx, &renamed); err != nil {
		t.Fatal(err)
	}
	gotC, err := s.Client(reqCtx, "app")
	if want := map[bool]string{true: c.Name, false: "Renamed"}[pg]; err != nil || gotC.Name != want {
		t.Errorf("Client after the session = %+v, %v; want the name %q", gotC, err, want)
	}
	// No session: still not found, and the client still read.
	reqCtx = storage.WithRequestCache(ctx)
	storage.NoteReads(reqCtx, storage.ReadAhead{ClientID: "app"})
	if _, _, err := s.LoginSessionUser(reqCtx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("LoginSessionUser(unknown) = %v, want ErrNotFound", err)
	}
	if gotC, err := s.Client(reqCtx, "app"); err != nil || gotC.Name != "Renamed" {
		t.Errorf("Client = %+v, %v", gotC, err)
	}
	// An unknown client: the session still read, the client not found.
	reqCtx = storage.WithRequestCache(ctx)
	storage.NoteReads(reqCtx, storage.ReadAhead{ClientID: "ghost"})
	if _, _, err := s.LoginSessionUser(reqCtx, "h1"); err != nil {
		t.Errorf("LoginSessionUser with an unknown client noted = %v", err)
	}
	if _, err := s.Client(reqCtx, "ghost"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Client(ghost) = %v, want ErrNotFound", err)
	}
}
