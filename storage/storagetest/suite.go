package storagetest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/torii-idp/torii/storage"
)

// Run runs the storage conformance suite against stores made by open. Each
// subtest gets a fresh database.
func Run(t *testing.T, open func(t testing.TB) *storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *storage.Store)
	}{
		{"Migrations", testMigrations},
		{"Clients", testClients},
		{"AuthorizeCodes", testAuthorizeCodes},
		{"AuthorizeCodeRace", testAuthorizeCodeRace},
		{"OpenIDConnectSessions", testOIDCSessions},
		{"PKCE", testPKCE},
		{"PKCEConsumption", testPKCEConsumption},
		{"PKCERedemptionRace", testPKCERedemptionRace},
		{"ReadAhead", testReadAhead},
		{"RequestCache", testRequestCache},
		{"Redemption", testRedemption},
		{"AccessTokens", testAccessTokens},
		{"RefreshRotation", testRefreshRotation},
		{"RefreshRotationRace", testRefreshRotationRace},
		{"Transactions", testTransactions},
		{"Users", testUsers},
		{"Roles", testRoles},
		{"SetUserRoles", testSetUserRoles},
		{"SetUserRolesRace", testSetUserRolesRace},
		{"RolesContainPattern", testRolesContainPattern},
		{"AdmitAttempt", testAdmitAttempt},
		{"AdmitAttemptRace", testAdmitAttemptRace},
		{"Devices", testDevices},
		{"RememberedDevices", testRememberedDevices},
		{"MFAChallenges", testMFAChallenges},
		{"RevokeOtherSubjectTokens", testRevokeOtherSubjectTokens},
		{"UserSameEmailRace", testSameEmailRace},
		{"UserLookAlikeEmails", testLookAlikeEmails},
		{"UserLookAlikeEmailRace", testLookAlikeEmailRace},
		{"LoginSessions", testLoginSessions},
		{"AuthRequestsAndConsents", testAuthRequestsAndConsents},
		{"SigningKeys", testSigningKeys},
		{"Secrets", testSecrets},
		{"DeleteExpired", testDeleteExpired},
		{"DeleteUserRevokesTokens", testDeleteUser},
		{"OneTimeCodeAttempts", testCodeAttempts},
		{"OneTimeCodeAttemptRace", testCodeAttemptRace},
		{"OneTimeCodeUseRace", testCodeUseRace},
		{"OneTimeCodeSends", testCodeSends},
		{"Audit", testAudit},
		{"Identities", testIdentities},
		{"IdentityRace", testIdentityRace},
		{"FederationFlows", testFederationFlows},
		{"LoginSessionIDP", testLoginSessionIDP},
		{"RateLimits", testRateLimits},
		{"RateLimitRace", testRateLimitRace},
		{"TakeRates", testTakeRates},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func newClient(id string) *storage.Client {
	return &storage.Client{
		ID:                     id,
		Name:                   "Client " + id,
		SecretHash:             []byte("hash-" + id),
		RedirectURIs:           []string{"https://rp.example/cb"},
		PostLogoutRedirectURIs: []string{"https://rp.example/bye"},
		GrantTypes:             []string{"authorization_code", "refresh_token"},
		ResponseTypes:          []string{"code"},
		Scopes:                 []string{"openid", "offline_access"},
		Audience:               []string{},
		TokenFormat:            "opaque",
		IDTokenAlg:             "RS256",
		LogoURI:                "https://rp.example/logo.png",
		ClientURI:              "https://rp.example/",
	}
}

func mustCreateClient(t *testing.T, s *storage.Store, id string) *storage.Client {
	t.Helper()
	c := newClient(id)
	if err := s.CreateClient(t.Context(), c); err != nil {
		t.Fatalf("CreateClient(%q) = %v", id, err)
	}
	return c
}

func newSession(subject string) *openid.DefaultSession {
	return &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{Subject: subject, AuthTime: time.Now().UTC().Truncate(time.Second)},
		Headers: &jwt.Headers{},
		Subject: subject,
		ExpiresAt: map[fosite.TokenType]time.Time{
			fosite.AccessToken:   time.Now().Add(time.Hour).UTC().Truncate(time.Second),
			fosite.RefreshToken:  time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second),
			fosite.AuthorizeCode: time.Now().Add(10 * time.Minute).UTC().Truncate(time.Second),
		},
	}
}

func newRequest(client fosite.Client, id, subject string) *fosite.Request {
	r := fosite.NewRequest()
	r.ID = id
	r.Client = client
	r.RequestedAt = time.Now().UTC().Truncate(time.Second)
	r.RequestedScope = fosite.Arguments{"openid", "offline_access"}
	r.GrantedScope = fosite.Arguments{"openid", "offline_access"}
	r.Form = url.Values{"redirect_uri": {"https://rp.example/cb"}, "nonce": {"n-0S6_WzA2Mj"}}
	r.Session = newSession(subject)
	return r
}

func emptySession() *openid.DefaultSession { return &openid.DefaultSession{} }

func testMigrations(t *testing.T, s *storage.Store) {
	applied, err := s.Migrate(t.Context())
	if err != nil {
		t.Fatalf("second Migrate() = %v", err)
	}
	if len(applied) != 0 {
		t.Errorf("second Migrate() applied %v, want nothing", applied)
	}
	pending, err := s.PendingMigrations(t.Context())
	if err != nil || len(pending) != 0 {
		t.Errorf("PendingMigrations() = %v, %v; want none", pending, err)
	}
}

func testClients(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := mustCreateClient(t, s, "app")
	if err := s.CreateClient(ctx, newClient("app")); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("CreateClient(duplicate) = %v, want ErrAlreadyExists", err)
	}
	got, err := s.Client(ctx, "app")
	if err != nil {
		t.Fatalf("Client(app) = %v", err)
	}
	if got.Name != c.Name || !bytes.Equal(got.SecretHash, c.SecretHash) || fmt.Sprint(got.RedirectURIs) != fmt.Sprint(c.RedirectURIs) || fmt.Sprint(got.PostLogoutRedirectURIs) != fmt.Sprint(c.PostLogoutRedirectURIs) ||
		fmt.Sprint(got.GrantTypes) != fmt.Sprint(c.GrantTypes) || got.IDTokenAlg != "RS256" || got.LogoURI != c.LogoURI || got.ClientURI != c.ClientURI {
		t.Errorf("Client(app) = %+v, want %+v", got, c)
	}
	got.SkipConsent = true
	got.RedirectURIs = append(got.RedirectURIs, "http://127.0.0.1/cb")
	got.LogoURI, got.ClientURI = "", "https://rp.example/home"
	if err := s.UpdateClient(ctx, got); err != nil {
		t.Fatalf("UpdateClient = %v", err)
	}
	again, _ := s.Client(ctx, "app")
	if !again.SkipConsent || len(again.RedirectURIs) != 2 || again.LogoURI != "" || again.ClientURI != "https://rp.example/home" {
		t.Errorf("after update: %+v", again)
	}
	if _, err := s.GetClient(ctx, "nobody"); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("GetClient(unknown) = %v, want fosite.ErrNotFound", err)
	}
	// SQL metacharacters are data, not code.
	if _, err := s.Client(ctx, "' OR 1=1--"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Client(injection) = %v, want ErrNotFound", err)
	}
	mustCreateClient(t, s, "b-app")
	list, err := s.Clients(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "app" {
		t.Errorf("Clients() = %v, %v", list, err)
	}
	if err := s.DeleteClient(ctx, "app"); err != nil {
		t.Fatalf("DeleteClient = %v", err)
	}
	if err := s.DeleteClient(ctx, "app"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteClient(again) = %v, want ErrNotFound", err)
	}
}

func testAuthorizeCodes(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := mustCreateClient(t, s, "app")
	req := newRequest(c, "req-1", "user-1")
	if err := s.CreateAuthorizeCodeSession(ctx, "sig-1", req); err != nil {
		t.Fatalf("CreateAuthorizeCodeSession = %v", err)
	}
	got, err := s.GetAuthorizeCodeSession(ctx, "sig-1", emptySession())
	if err != nil {
		t.Fatalf("GetAuthorizeCodeSession = %v", err)
	}
	if got.GetID() != "req-1" || got.GetClient().GetID() != "app" || got.GetSession().GetSubject() != "user-1" ||
		got.GetRequestForm().Get("nonce") != "n-0S6_WzA2Mj" || !got.GetGrantedScopes().Has("openid") {
		t.Errorf("GetAuthorizeCodeSession = %+v", got)
	}
	if sess := got.GetSession().(*openid.DefaultSession); sess.Claims.Subject != "user-1" {
		t.Errorf("session claims subject = %q, want user-1", sess.Claims.Subject)
	}
	if err := s.InvalidateAuthorizeCodeSession(ctx, "sig-1"); err != nil {
		t.Fatalf("InvalidateAuthorizeCodeSession = %v", err)
	}
	got, err = s.GetAuthorizeCodeSession(ctx, "sig-1", emptySession())
	if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Errorf("Get after invalidate: err = %v, want ErrInvalidatedAuthorizeCode", err)
	}
	if got == nil || got.GetID() != "req-1" {
		t.Errorf("Get after invalidate returned %v, want the request (fosite revokes its tokens with it)", got)
	}
	if err := s.InvalidateAuthorizeCodeSession(ctx, "sig-1"); !errors.Is(err, storage.ErrCodeAlreadyUsed) {
		t.Errorf("second invalidate = %v, want ErrCodeAlreadyUsed", err)
	}
	if _, err := s.GetAuthorizeCodeSession(ctx, "nope", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want fosite.ErrNotFound", err)
	}
}

func testAuthorizeCodeRace(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := mustCreateClient(t, s, "app")
	if err := s.CreateAuthorizeCodeSession(ctx, "sig", newRequest(c, "req", "u")); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			err := s.InTx(ctx, func(ctx context.Context) error {
				return s.InvalidateAuthorizeCodeSession(ctx, "sig")
			})
			if err == nil {
				wins.Add(1)
			} else if !errors.Is(err, storage.ErrCodeAlreadyUsed) && !errors.Is(err, storage.ErrConflict) {
				t.Errorf("concurrent invalidate: unexpected error %v", err)
			}
		})
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Errorf("%d of 20 concurrent redemptions succeeded, want exactly 1", n)
	}
}

func testOIDCSessions(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := mustCreateClient(t, s, "app")
	const code = "raw-code-value.with-signature"
	if err := s.CreateOpenIDConnectSession(ctx, code, newRequest(c, "req", "u")); err != nil {
		t.Fatal(err)
	}
	// The raw code never reaches the database.
	var n int
	if err := s.DB().NewSelect().TableExpr("oauth2_oidc").ColumnExpr("count(*)").Where("signature = ?", code).Scan(ctx, &n); err != nil || n != 0 {
		t.Errorf("rows keyed by the raw code = %d (%v), want 0", n, err)
	}
	holder := fosite.NewAccessRequest(emptySession())
	got, err := s.GetOpenIDConnectSession(ctx, code, holder)
	if err != nil || got.GetSession().GetSubject() != "u" {
		t.Fatalf("GetOpenIDConnectSession = %v, %v", got, err)
	}
	// Reading consumes it; the delete fosite then asks for succeeds.
	if _, err := s.GetOpenIDConnectSession(ctx, code, holder); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("second read: %v, want ErrNotFound", err)
	}
	if err := s.DeleteOpenIDConnectSession(ctx, code); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOpenIDConnectSession(ctx, code+"2", newRequest(c, "req", "u")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOpenIDConnectSession(ctx, code+"2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetOpenIDConnectSession(ctx, code+"2", holder); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("after delete: %v, want ErrNotFound", err)
	}
}

func testPKCE(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := mustCreateClient(t, s, "app")
	r := newRequest(c, "req", "u")
	r.Form.Set("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
	if err := s.CreatePKCERequestSession(ctx, "sig", r); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetPKCERequestSession(ctx, "sig", emptySession())
	if err != nil || got.GetRequestForm().Get("code_challenge") != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("GetPKCERequestSession = %v, %v", got, err)
	}
	// Without a request cache reading consumes it: a second redemption,
	// even a concurrent one, finds nothing (SECURITY 11: a failed verifier
	// leaves no retry). In a request cache: testPKCEConsumption.
	if _, err := s.GetPKCERequestSession(ctx, "sig", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("second read: %v, want ErrNotFound", err)
	}
	if err := s.DeletePKCERequestSession(ctx, "sig"); err != nil {
		t.Errorf("delete after the read = %v, want nil", err)
	}
	// Delete alone still deletes.
	if err := s.CreatePKCERequestSession(ctx, "sig-2", r); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePKCERequestSession(ctx, "sig-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPKCERequestSession(ctx, "sig-2", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("after delete: %v, want ErrNotFound", err)
	}
}

// testRedemption: a request that noted the code it redeems reads the code
// with its OpenID Connect session, and marking the code used deletes that
// session in the same transaction, or not at all when the code was used
// meanwhile.
func testRedemption(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := mustCreateClient(t, s, "app")
	for _, raw := range []string{"raw-1.sig-1", "raw-2.sig-2"} {
		sig := raw[len(raw)-5:]
		if err := s.CreateAuthorizeCodeSession(ctx, sig, newRequest(c, "req-"+sig, "u")); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateOpenIDConnectSession(ctx, raw, newRequest(c, "req-"+sig, "u")); err != nil {
			t.Fatal(err)
		}
	}
	holder := fosite.NewAccessRequest(emptySession())

	reqCtx := storage.WithRequestCache(ctx)
	storage.NoteReads(reqCtx, storage.ReadAhead{Code: "raw-1.sig-1", CodeSignature: "sig-1"})
	if got, err := s.GetAuthorizeCodeSession(reqCtx, "sig-1", emptySession()); err != nil || got.GetID() != "req-sig-1" {
		t.Fatalf("GetAuthorizeCodeSession = %v, %v", got, err)
	}
	if err := s.InTx(reqCtx, func(ctx context.Context) error { return s.InvalidateAuthorizeCodeSession(ctx, "sig-1") }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetOpenIDConnectSession(ctx, "raw-1.sig-1", holder); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("session left after the code was used: %v, want ErrNotFound", err)
	}
	got, err := s.GetOpenIDConnectSession(reqCtx, "raw-1.sig-1", holder)
	if err != nil || got.GetSession().GetSubject() != "u" || got.GetID() != "req-sig-1" {
		t.Errorf("GetOpenIDConnectSession in the redeeming request = %v, %v", got, err)
	}
	if err := s.DeleteOpenIDConnectSession(reqCtx, "raw-1.sig-1"); err != nil {
		t.Errorf("DeleteOpenIDConnectSession = %v", err)
	}

	// Used by another request between the read and the redemption: the
	// redemption fails and the session stays for that other request.
	reqCtx = storage.WithRequestCache(ctx)
	storage.NoteReads(reqCtx, storage.ReadAhead{Code: "raw-2.sig-2", CodeSignature: "sig-2"})
	if _, err := s.GetAuthorizeCodeSession(reqCtx, "sig-2", emptySession()); err != nil {
		t.Fatal(err)
	}
	if err := s.InvalidateAuthorizeCodeSession(ctx, "sig-2"); err != nil {
		t.Fatal(err)
	}
	err = s.InTx(reqCtx, func(ctx context.Context) error { return s.InvalidateAuthorizeCodeSession(ctx, "sig-2") })
	if !errors.Is(err, storage.ErrCodeAlreadyUsed) {
		t.Errorf("redeeming a code used meanwhile = %v, want ErrCodeAlreadyUsed", err)
	}
	if _, err := s.GetOpenIDConnectSession(ctx, "raw-2.sig-2", holder); err != nil {
		t.Errorf("session of the failed redemption: %v, want it kept", err)
	}

	// The grant read with the client (PostgreSQL reads both in one round
	// trip): the same outcomes.
	if err := s.CreateAuthorizeCodeSession(ctx, "sig-3", newRequest(c, "req-sig-3", "u")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOpenIDConnectSession(ctx, "raw-3.sig-3", newRequest(c, "req-sig-3", "u")); err != nil {
		t.Fatal(err)
	}
	reqCtx = storage.WithRequestCache(ctx)
	storage.NoteReads(reqCtx, storage.ReadAhead{Code: "raw-3.sig-3", CodeSignature: "sig-3"})
	if got, err := s.Client(reqCtx, "app"); err != nil || got.ID != "app" {
		t.Fatalf("Client = %v, %v", got, err)
	}
	if got, err := s.GetAuthorizeCodeSession(reqCtx, "sig-3", emptySession()); err != nil || got.GetID() != "req-sig-3" {
		t.Fatalf("GetAuthorizeCodeSession after the client = %v, %v", got, err)
	}
	if err := s.InTx(reqCtx, func(ctx context.Context) error { return s.InvalidateAuthorizeCodeSession(ctx, "sig-3") }); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetOpenIDConnectSession(reqCtx, "raw-3.sig-3", holder); err != nil || got.GetID() != "req-sig-3" {
		t.Errorf("GetOpenIDConnectSession = %v, %v", got, err)
	}
	if _, err := s.GetOpenIDConnectSession(ctx, "raw-3.sig-3", holder); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("session left after the code was used: %v", err)
	}
	// On PostgreSQL the code is read with the client: a use in between is
	// not seen by the read, and is by the redemption.
	if err := s.CreateAuthorizeCodeSession(ctx, "sig-4", newRequest(c, "req-sig-4", "u")); err != nil {
		t.Fatal(err)
	}
	reqCtx = readAhead(t, s, storage.ReadAhead{Code: "raw-4.sig-4", CodeSignature: "sig-4"})
	if err := s.InvalidateAuthorizeCodeSession(ctx, "sig-4"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetAuthorizeCodeSession(reqCtx, "sig-4", emptySession())
	if s.Dialect() == storage.Postgres && err != nil {
		t.Errorf("GetAuthorizeCodeSession = %v, want the row read with the client", err)
	} else if s.Dialect() != storage.Postgres && !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Errorf("GetAuthorizeCodeSession = %v, want ErrInvalidatedAuthorizeCode", err)
	}
	err = s.InTx(reqCtx, func(ctx context.Context) error { return s.InvalidateAuthorizeCodeSession(ctx, "sig-4") })
	if !errors.Is(err, storage.ErrCodeAlreadyUsed) {
		t.Errorf("redeeming a code used meanwhile = %v, want ErrCodeAlreadyUsed", err)
	}

	// An unknown code read with the client is simply not found.
	reqCtx = readAhead(t, s, storage.ReadAhead{Code: "nope.nope", CodeSignature: "nope"})
	if _, err := s.GetAuthorizeCodeSession(reqCtx, "nope", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("unknown code = %v, want ErrNotFound", err)
	}

	// A refresh token read with the client: whatever the request read, it
	// cannot rotate a token that another request rotated meanwhile.
	if err := s.CreateRefreshTokenSession(ctx, "rt-1", "at-1", newRequest(c, "req-rt", "u")); err != nil {
		t.Fatal(err)
	}
	reqCtx = readAhead(t, s, storage.ReadAhead{RefreshSignature: "rt-1"})
	if err := s.RotateRefreshToken(ctx, "req-rt", "rt-1"); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetRefreshTokenSession(reqCtx, "rt-1", emptySession())
	if got == nil || got.GetID() != "req-rt" {
		t.Fatalf("GetRefreshTokenSession = %v, %v", got, err)
	}
	// PostgreSQL read it with the client, before the rotation; SQLite
	// reads it now.
	if s.Dialect() == storage.Postgres && err != nil {
		t.Errorf("GetRefreshTokenSession = %v, want the row read with the client", err)
	} else if s.Dialect() != storage.Postgres && !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("GetRefreshTokenSession = %v, want ErrInactiveToken", err)
	}
	err = s.InTx(reqCtx, func(ctx context.Context) error { return s.RotateRefreshToken(ctx, "req-rt", "rt-1") })
	if !errors.Is(err, storage.ErrRefreshTokenUsed) {
		t.Errorf("rotating a token rotated meanwhile = %v, want ErrRefreshTokenUsed", err)
	}
	// Served once: the next read sees the database.
	if _, err := s.GetRefreshTokenSession(reqCtx, "rt-1", emptySession()); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("second read = %v, want ErrInactiveToken", err)
	}
}

// testRequestCache: within one request a code is read from the database
// once, and the cache never lets a used code be redeemed twice.
func testRequestCache(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := mustCreateClient(t, s, "app")
	if err := s.CreateAuthorizeCodeSession(ctx, "sig", newRequest(c, "req", "u")); err != nil {
		t.Fatal(err)
	}
	reqCtx := storage.WithRequestCache(ctx)
	if _, err := s.GetAuthorizeCodeSession(reqCtx, "sig", emptySession()); err != nil {
		t.Fatal(err)
	}
	// Another request redeems the code in between.
	if err := s.InvalidateAuthorizeCodeSession(ctx, "sig"); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAuthorizeCodeSession(reqCtx, "sig", emptySession())
	if err != nil || got.GetID() != "req" {
		t.Fatalf("second read in the request = %v, %v; want the row read first", got, err)
	}
	if err := s.InvalidateAuthorizeCodeSession(reqCtx, "sig"); !errors.Is(err, storage.ErrCodeAlreadyUsed) {
		t.Errorf("redeeming a code used meanwhile = %v, want ErrCodeAlreadyUsed", err)
	}
	// Once this request tried to use it, it reads the database again.
	if _, err := s.GetAuthorizeCodeSession(reqCtx, "sig", emptySession()); !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Errorf("read after the redemption = %v, want ErrInvalidatedAuthorizeCode", err)
	}
	// A used code is never cached.
	fresh := storage.WithRequestCache(ctx)
	if _, err := s.GetAuthorizeCodeSession(fresh, "sig", emptySession()); !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Fatalf("read of a used code = %v", err)
	}
	if _, err := s.GetAuthorizeCodeSession(fresh, "sig", emptySession()); !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Errorf("second read of a used code = %v, want ErrInvalidatedAuthorizeCode", err)
	}
}

func testAccessTokens(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := mustCreateClient(t, s, "app")
	for _, sig := range []string{"at-1", "at-2"} {
		if err := s.CreateAccessTokenSession(ctx, sig, newRequest(c, "req", "u")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateAccessTokenSession(ctx, "other", newRequest(c, "req-other", "u")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetAccessTokenSession(ctx, "at-1", emptySession()); err != nil || got.GetID() != "req" {
		t.Fatalf("GetAccessTokenSession = %v, %v", got, err)
	}
	if err := s.RevokeAccessToken(ctx, "req"); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []string{"at-1", "at-2"} {
		if _, err := s.GetAccessTokenSession(ctx, sig, emptySession()); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("GetAccessTokenSession(%s) after revoke = %v, want ErrNotFound", sig, err)
		}
	}
	if _, err := s.GetAccessTokenSession(ctx, "other", emptySession()); err != nil {
		t.Errorf("a token of another request was revoked too: %v", err)
	}
	if err := s.DeleteAccessTokenSession(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccessTokenSession(ctx, "other", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("after delete: %v, want ErrNotFound", err)
	}
}

func testRefreshRotation(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := mustCreateClient(t, s, "app")
	r := newRequest(c, "family", "u")
	if err := s.CreateAccessTokenSession(ctx, "at-1", r); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRefreshTokenSession(ctx, "rt-1", "at-1", r); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateRefreshToken(ctx, "family", "rt-1"); err != nil {
		t.Fatalf("RotateRefreshToken = %v", err)
	}
	if _, err := s.GetAccessTokenSession(ctx, "at-1", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("access token of the rotated family still there: %v", err)
	}
	got, err := s.GetRefreshTokenSession(ctx, "rt-1", emptySession())
	if !errors.Is(err, fosite.ErrInactiveToken) || got == nil || got.GetID() != "family" {
		t.Errorf("Get(rotated) = %v, %v; want the request with ErrInactiveToken", got, err)
	}
	if err := s.RotateRefreshToken(ctx, "family", "rt-1"); !errors.Is(err, storage.ErrRefreshTokenUsed) {
		t.Errorf("rotating a used token = %v, want ErrRefreshTokenUsed", err)
	}
	if err := s.CreateRefreshTokenSession(ctx, "rt-2", "at-2", r); err != nil {
		t.Fatal(err)
	}
	// Reuse of rt-1 revokes the family: rt-2 dies too.
	if err := s.RevokeRefreshToken(ctx, "family"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRefreshTokenSession(ctx, "rt-2", emptySession()); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("rt-2 after family revocation: %v, want ErrInactiveToken", err)
	}
	if err := s.DeleteRefreshTokenSession(ctx, "rt-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRefreshTokenSession(ctx, "rt-2", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("after delete: %v, want ErrNotFound", err)
	}
}

func testRefreshRotationRace(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := mustCreateClient(t, s, "app")
	if err := s.CreateRefreshTokenSession(ctx, "rt", "at", newRequest(c, "fam", "u")); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			err := s.InTx(ctx, func(ctx context.Context) error {
				if err := s.RotateRefreshToken(ctx, "fam", "rt"); err != nil {
					return err
				}
				return s.CreateRefreshTokenSession(ctx, fmt.Sprintf("rt-%d", i), "", newRequest(c, "fam", "u"))
			})
			if err == nil {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Errorf("%d of 10 concurrent rotations succeeded, want exactly 1", n)
	}
	var active int
	if err := s.DB().NewSelect().TableExpr("oauth2_refresh").ColumnExpr("count(*)").Where("active = ?", true).Scan(ctx, &active); err != nil || active != 1 {
		t.Errorf("active refresh tokens after the race = %d (%v), want 1", active, err)
	}
}

func testTransactions(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := mustCreateClient(t, s, "app")
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccessTokenSession(txCtx, "rolled-back", newRequest(c, "r", "u")); err != nil {
		t.Fatal(err)
	}
	if err := s.Rollback(txCtx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccessTokenSession(ctx, "rolled-back", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("rolled-back token exists: %v", err)
	}
	err = s.InTx(ctx, func(ctx context.Context) error {
		return s.CreateAccessTokenSession(ctx, "committed", newRequest(c, "r", "u"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccessTokenSession(ctx, "committed", emptySession()); err != nil {
		t.Errorf("committed token missing: %v", err)
	}

	// A transaction reads its own writes, in the order they were made.
	err = s.InTx(ctx, func(ctx context.Context) error {
		if err := s.CreateAccessTokenSession(ctx, "own", newRequest(c, "r2", "u")); err != nil {
			return err
		}
		if _, err := s.GetAccessTokenSession(ctx, "own", emptySession()); err != nil {
			return fmt.Errorf("own write not seen: %w", err)
		}
		if err := s.RevokeAccessToken(ctx, "r2"); err != nil {
			return err
		}
		if _, err := s.GetAccessTokenSession(ctx, "own", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
			return fmt.Errorf("own delete not seen: %v", err)
		}
		return s.CreateAccessTokenSession(ctx, "own", newRequest(c, "r2", "u"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccessTokenSession(ctx, "own", emptySession()); err != nil {
		t.Errorf("token written after its delete in one transaction missing: %v", err)
	}

	// A write that fails fails the transaction, even when its error comes
	// only with the commit, and nothing of it remains.
	err = s.InTx(ctx, func(ctx context.Context) error {
		if err := s.CreateAccessTokenSession(ctx, "half", newRequest(c, "r3", "u")); err != nil {
			return err
		}
		return s.CreateAccessTokenSession(ctx, "committed", newRequest(c, "r3", "u"))
	})
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("transaction with a duplicate insert = %v, want ErrAlreadyExists", err)
	}
	if _, err := s.GetAccessTokenSession(ctx, "half", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("write of a failed transaction exists: %v", err)
	}
	// A token row's insert in a transaction is queued (pipelined on
	// PostgreSQL, lazy on SQLite): its failure is reported by the next
	// statement, and then the commit fails.
	txCtx, err = s.BeginTX(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccessTokenSession(txCtx, "committed", newRequest(c, "r4", "u")); err != nil {
		t.Errorf("queued duplicate insert = %v, want nil (its error comes with the next statement)", err)
	}
	if _, err := s.GetAccessTokenSession(txCtx, "committed", emptySession()); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("read after a queued duplicate insert = %v, want ErrAlreadyExists", err)
	}
	if err := s.Commit(txCtx); err == nil {
		t.Error("commit after a failed queued write succeeded")
	}
	if err := s.Rollback(txCtx); err != nil {
		t.Errorf("rollback after a failed commit = %v, want nil (fosite rolls back on every error)", err)
	}

	// A single-use write that fails (the code was used already) fails the
	// transaction even when other statements ran after it, and nothing of
	// the transaction remains.
	if err := s.CreateAuthorizeCodeSession(ctx, "used", newRequest(c, "r7", "u")); err != nil {
		t.Fatal(err)
	}
	if err := s.InvalidateAuthorizeCodeSession(ctx, "used"); err != nil {
		t.Fatal(err)
	}
	err = s.InTx(ctx, func(ctx context.Context) error {
		if err := s.InvalidateAuthorizeCodeSession(ctx, "used"); err != nil {
			return err
		}
		if err := s.CreateAccessTokenSession(ctx, "of-used", newRequest(c, "r7", "u")); err != nil {
			return err
		}
		// A read in between (it begins the real transaction on SQLite).
		if _, err := s.GetAccessTokenSession(ctx, "committed", emptySession()); err != nil {
			return err
		}
		return s.CreateAccessTokenSession(ctx, "of-used-2", newRequest(c, "r7", "u"))
	})
	if !errors.Is(err, storage.ErrCodeAlreadyUsed) {
		t.Errorf("transaction redeeming a used code = %v, want ErrCodeAlreadyUsed", err)
	}
	for _, sig := range []string{"of-used", "of-used-2"} {
		if _, err := s.GetAccessTokenSession(ctx, sig, emptySession()); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("token %s of a failed redemption exists: %v", sig, err)
		}
	}

	// A transaction whose context ends midway rolls back, and its
	// connection does not carry it into later work.
	cctx, cancel := context.WithCancel(ctx)
	txCtx, err = s.BeginTX(cctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccessTokenSession(txCtx, "cancelled", newRequest(c, "r8", "u")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccessTokenSession(txCtx, "cancelled", emptySession()); err != nil {
		t.Fatal(err)
	}
	cancel()
	s.Commit(txCtx) // fails or not: the context ended
	s.Rollback(txCtx)
	for i := range 40 {
		if err := s.CreateAccessTokenSession(ctx, fmt.Sprintf("later-%d", i), newRequest(c, "r9", "u")); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 40 {
		if _, err := s.GetAccessTokenSession(ctx, fmt.Sprintf("later-%d", i), emptySession()); err != nil {
			t.Errorf("write after a cancelled transaction missing: %v", err)
		}
	}

	// A rolled-back transaction leaves its connection clean: many in a
	// row, more than the pool holds, and the next work is outside them.
	for i := range 40 {
		txCtx, err := s.BeginTX(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAccessTokenSession(txCtx, fmt.Sprintf("rb-%d", i), newRequest(c, "r5", "u")); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			// Sends what was queued before rolling back.
			if _, err := s.GetAccessTokenSession(txCtx, "committed", emptySession()); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Rollback(txCtx); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateAccessTokenSession(ctx, "after", newRequest(c, "r6", "u")); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if _, err := s.GetAccessTokenSession(ctx, fmt.Sprintf("rb-%d", i), emptySession()); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("rolled-back token rb-%d exists: %v", i, err)
		}
	}
	if _, err := s.GetAccessTokenSession(ctx, "after", emptySession()); err != nil {
		t.Errorf("write after the rollbacks missing: %v", err)
	}
}

func newUser(id, email string) *storage.User {
	return &storage.User{ID: id, Email: email, PasswordHash: "$argon2id$fake"}
}

func testUsers(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	name := "alice"
	u := newUser("u1", "alice@example.com")
	u.Username = &name
	u.Name = "Alice Ünicode 🦊"
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, newUser("u2", "alice@example.com")); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("CreateUser(same email) = %v, want ErrAlreadyExists", err)
	}
	dup := newUser("u3", "other@example.com")
	dup.Username = &name
	if err := s.CreateUser(ctx, dup); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("CreateUser(same username) = %v, want ErrAlreadyExists", err)
	}
	for _, login := range []string{"alice", "alice@example.com"} {
		got, err := s.UserByLogin(ctx, login)
		if err != nil || got.ID != "u1" || got.Name != u.Name {
			t.Errorf("UserByLogin(%q) = %v, %v", login, got, err)
		}
	}
	if _, err := s.UserByLogin(ctx, "' OR '1'='1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UserByLogin(injection) = %v, want ErrNotFound", err)
	}
	list, err := s.Users(ctx, 0, 10)
	if err != nil || len(list) != 1 {
		t.Errorf("Users() = %v, %v", list, err)
	}
}

func testSameEmailRace(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	var ok atomic.Int32
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			err := s.CreateUser(ctx, newUser(fmt.Sprintf("u%d", i), "same@example.com"))
			if err == nil {
				ok.Add(1)
			} else if !errors.Is(err, storage.ErrAlreadyExists) {
				t.Errorf("CreateUser: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Errorf("%d of 10 concurrent registrations of one email succeeded, want 1", ok.Load())
	}
}

// The email skeleton (computed by login/account; here "alice" stands for
// the skeleton that alice@example.com and its look-alikes share) is unique;
// users without one (from before skeletons were stored) may be many.
func testLookAlikeEmails(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	alice := newUser("u1", "alice@example.com")
	alice.EmailSkeleton = "alice"
	if err := s.CreateUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	lookAlike := newUser("u2", "alıce@example.com")
	lookAlike.EmailSkeleton = "alice"
	if err := s.CreateUser(ctx, lookAlike); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("CreateUser(same skeleton) = %v, want ErrAlreadyExists", err)
	}
	for _, id := range []string{"u3", "u4"} {
		if err := s.CreateUser(ctx, newUser(id, id+"@example.com")); err != nil {
			t.Errorf("CreateUser(%s without a skeleton) = %v", id, err)
		}
	}
	exact := newUser("u5", "bob@example.com")
	exact.EmailSkeleton = "bob"
	other := newUser("u6", "b0b@example.com")
	other.EmailSkeleton = "bob-other"
	for _, u := range []*storage.User{exact, other} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		email, skeleton string
		want            string // user ID; "" for ErrNotFound
	}{
		{"alice@example.com", "alice", "u1"},
		{"alıce@example.com", "alice", "u1"},
		{"alıce@example.com", "nobody", ""},
		{"b0b@example.com", "bob", "u6"}, // the address itself before a look-alike
		{"u3@example.com", "", "u3"},
		{"' OR '1'='1", "' OR '1'='1", ""},
	}
	for _, tc := range tests {
		u, err := s.UserByEmailLookAlike(ctx, tc.email, tc.skeleton)
		switch {
		case tc.want == "" && !errors.Is(err, storage.ErrNotFound):
			t.Errorf("UserByEmailLookAlike(%q, %q) = %v, %v; want ErrNotFound", tc.email, tc.skeleton, u, err)
		case tc.want != "" && (err != nil || u.ID != tc.want):
			t.Errorf("UserByEmailLookAlike(%q, %q) = %v, %v; want %s", tc.email, tc.skeleton, u, err, tc.want)
		}
	}
	for id, want := range map[string]string{"u1": "alice", "u3": ""} {
		if u, err := s.User(ctx, id); err != nil || u.EmailSkeleton != want {
			t.Errorf("User(%s).EmailSkeleton = %q, %v; want %q", id, u.EmailSkeleton, err, want)
		}
	}
}

// The same address in look-alike forms (one skeleton) registered at once:
// exactly one wins.
func testLookAlikeEmailRace(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	forms := []string{"alice@example.com", "alıce@example.com", "a1ice@example.com", "аlice@example.com", "alice@exаmple.com",
		"alice@examp1e.com", "a1ice@examp1e.com", "alıce@exаmple.com", "аlıce@example.com", "alice@example.cοm"}
	var ok atomic.Int32
	var wg sync.WaitGroup
	for i, email := range forms {
		wg.Go(func() {
			u := newUser(fmt.Sprintf("u%d", i), email)
			u.EmailSkeleton = "alice@exarnple.corn"
			err := s.CreateUser(ctx, u)
			if err == nil {
				ok.Add(1)
			} else if !errors.Is(err, storage.ErrAlreadyExists) {
				t.Errorf("CreateUser: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Errorf("%d of %d concurrent registrations of look-alike emails succeeded, want 1", ok.Load(), len(forms))
	}
}

func testLoginSessions(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	if err := s.CreateUser(ctx, newUser("u1", "a@example.com")); err != nil {
		t.Fatal(err)
	}
	ls := &storage.LoginSession{IDHash: "h1", Subject: "u1", AuthTime: time.Now(), AMR: []string{"pwd"}, ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateLoginSession(ctx, ls); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoginSession(ctx, "h1")
	if err != nil || got.Subject != "u1" || len(got.AMR) != 1 || got.AMR[0] != "pwd" {
		t.Fatalf("LoginSession = %+v, %v", got, err)
	}
	expired := &storage.LoginSession{IDHash: "h2", Subject: "u1", AuthTime: time.Now(), ExpiresAt: time.Now().Add(-time.Second)}
	if err := s.CreateLoginSession(ctx, expired); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoginSession(ctx, "h2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("expired session found: %v", err)
	}
	gotLS, gotU, err := s.LoginSessionUser(ctx, "h1")
	if err != nil || gotLS.Subject != "u1" || len(gotLS.AMR) != 1 || gotU.ID != "u1" || gotU.Email != "a@example.com" {
		t.Fatalf("LoginSessionUser = %+v, %+v, %v", gotLS, gotU, err)
	}
	if _, _, err := s.LoginSessionUser(ctx, "h2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("LoginSessionUser(expired) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteLoginSession(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoginSession(ctx, "h1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("deleted session found: %v", err)
	}
	if _, _, err := s.LoginSessionUser(ctx, "h1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("LoginSessionUser(deleted) = %v, want ErrNotFound", err)
	}
}

func testAuthRequestsAndConsents(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	mustCreateClient(t, s, "app")
	if err := s.CreateUser(ctx, newUser("u1", "a@example.com")); err != nil {
		t.Fatal(err)
	}
	ar := &storage.AuthRequest{ID: "ar1", ClientID: "app", Form: "scope=openid", BrowserHash: "b", ExpiresAt: time.Now().Add(time.Minute)}
	if err := s.CreateAuthRequest(ctx, ar); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AuthRequest(ctx, "ar1"); err != nil || got.Form != "scope=openid" {
		t.Errorf("AuthRequest = %+v, %v", got, err)
	}
	if err := s.DeleteAuthRequest(ctx, "ar1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthRequest(ctx, "ar1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("deleted auth request found: %v", err)
	}
	if err := s.SaveConsent(ctx, &storage.Consent{Subject: "u1", ClientID: "app", Scopes: []string{"openid"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveConsent(ctx, &storage.Consent{Subject: "u1", ClientID: "app", Scopes: []string{"openid", "email"}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Consent(ctx, "u1", "app")
	if err != nil || len(got.Scopes) != 2 {
		t.Errorf("Consent = %+v, %v", got, err)
	}
	// Deleting the client removes what hangs on it.
	if err := s.DeleteClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Consent(ctx, "u1", "app"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("consent survived its client: %v", err)
	}
}

func testSigningKeys(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	for _, kid := range []string{"k1", "k2"} {
		if err := s.AddSigningKey(ctx, &storage.SigningKey{KID: kid, Alg: "RS256", JWK: `{"kid":"` + kid + `"}`}); err != nil {
			t.Fatal(err)
		}
	}
	ks, err := s.SigningKeys(ctx)
	if err != nil || len(ks) != 2 || ks[0].KID != "k1" || ks[1].JWK != `{"kid":"k2"}` {
		t.Fatalf("SigningKeys = %v, %v", ks, err)
	}
	if err := s.DeleteSigningKey(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	err = s.InTx(ctx, func(ctx context.Context) error { return s.Lock(ctx, "keys") })
	if err != nil {
		t.Errorf("Lock in a transaction = %v", err)
	}
	if err := s.Lock(ctx, "keys"); err == nil {
		t.Error("Lock outside a transaction succeeded")
	}
}

func testSecrets(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	vals := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range vals {
		wg.Go(func() {
			v, err := s.Secret(ctx, "global")
			if err != nil {
				t.Errorf("Secret: %v", err)
			}
			vals[i] = v
		})
	}
	wg.Wait()
	for i, v := range vals {
		if len(v) != 32 || !bytes.Equal(v, vals[0]) {
			t.Errorf("Secret #%d = %x, want the same 32 bytes as #0 (%x)", i, v, vals[0])
		}
	}
	other, _ := s.Secret(ctx, "other")
	if bytes.Equal(other, vals[0]) {
		t.Error("two secret names share a value")
	}
}

func testDeleteExpired(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := mustCreateClient(t, s, "app")
	live := newRequest(c, "live", "u")
	dead := newRequest(c, "dead", "u")
	dead.Session.SetExpiresAt(fosite.AccessToken, time.Now().Add(-time.Minute))
	dead.Session.SetExpiresAt(fosite.RefreshToken, time.Now().Add(-time.Minute))
	for i := range 5 {
		if err := s.CreateAccessTokenSession(ctx, fmt.Sprintf("dead-%d", i), dead); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateRefreshTokenSession(ctx, "dead-rt", "", dead); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccessTokenSession(ctx, "live", live); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteExpired(ctx, 2)
	if err != nil {
		t.Fatalf("DeleteExpired = %v", err)
	}
	if n["oauth2_access"] != 5 || n["oauth2_refresh"] != 1 {
		t.Errorf("DeleteExpired counts = %v, want 5 access and 1 refresh", n)
	}
	if _, err := s.GetAccessTokenSession(ctx, "live", emptySession()); err != nil {
		t.Errorf("live token deleted: %v", err)
	}
}

func testDeleteUser(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	c := mustCreateClient(t, s, "app")
	if err := s.CreateUser(ctx, newUser("u1", "a@example.com")); err != nil {
		t.Fatal(err)
	}
	r := newRequest(c, "req", "u1")
	if err := s.CreateAccessTokenSession(ctx, "at", r); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRefreshTokenSession(ctx, "rt", "at", r); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccessTokenSession(ctx, "at", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("access token of a deleted user: %v", err)
	}
	if _, err := s.GetRefreshTokenSession(ctx, "rt", emptySession()); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Errorf("refresh token of a deleted user: %v", err)
	}
	if err := s.DeleteUser(ctx, "u1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteUser(again) = %v, want ErrNotFound", err)
	}
}

func newCode(id, userID, binding string, expires time.Time) *storage.OneTimeCode {
	return &storage.OneTimeCode{
		ID: id, UserID: sql.NullString{String: userID, Valid: userID != ""}, Purpose: "login", Binding: binding,
		Channel: "email", Destination: "a@example.com", CodeHash: []byte("not a code, a hash"), ExpiresAt: expires,
	}
}

func mustCreateCode(t *testing.T, s *storage.Store, c *storage.OneTimeCode) {
	t.Helper()
	if err := s.ReplaceOneTimeCode(t.Context(), c); err != nil {
		t.Fatalf("ReplaceOneTimeCode(%q) = %v", c.ID, err)
	}
}

// ClaimCodeAttempt counts entries up to the maximum and refuses used,
// expired and exhausted codes without counting.
func testCodeAttempts(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	if err := s.CreateUser(ctx, newUser("u1", "a@example.com")); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	mustCreateCode(t, s, newCode("live", "u1", "b1", now.Add(10*time.Minute)))
	mustCreateCode(t, s, newCode("expired", "u1", "b2", now.Add(-time.Second)))
	mustCreateCode(t, s, newCode("used", "u1", "b3", now.Add(10*time.Minute)))
	if err := s.UseOneTimeCode(ctx, "used"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, id string
		want     int
		err      error
	}{
		{"first entry", "live", 1, nil},
		{"second entry", "live", 2, nil},
		{"third entry", "live", 3, nil},
		{"fourth entry", "live", 4, nil},
		{"fifth entry", "live", 5, nil},
		{"sixth entry", "live", 0, storage.ErrNotFound},
		{"expired code", "expired", 0, storage.ErrNotFound},
		{"used code", "used", 0, storage.ErrNotFound},
		{"unknown code", "nope", 0, storage.ErrNotFound},
	}
	for _, tc := range tests {
		n, err := s.ClaimCodeAttempt(ctx, tc.id, 5, now)
		if n != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("%s: ClaimCodeAttempt(%q) = %d, %v; want %d, %v", tc.name, tc.id, n, err, tc.want, tc.err)
		}
	}
	for _, id := range []string{"live", "expired", "used"} {
		c, err := s.OneTimeCodeByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"live": 5}[id]; c.Attempts != want {
			t.Errorf("code %q: attempts = %d, want %d", id, c.Attempts, want)
		}
	}
	// The expiry is judged at the time given.
	if _, err := s.ClaimCodeAttempt(ctx, "expired", 5, now.Add(-time.Minute)); err != nil {
		t.Errorf("ClaimCodeAttempt(expired, before its expiry) = %v, want a count", err)
	}
}

// 30 parallel entries on one code: exactly 5 are counted, numbered 1 to 5.
func testCodeAttemptRace(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	if err := s.CreateUser(ctx, newUser("u1", "a@example.com")); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	mustCreateCode(t, s, newCode("c", "u1", "b", now.Add(10*time.Minute)))
	const n = 30
	got := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			v, err := s.ClaimCodeAttempt(ctx, "c", 5, now)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("ClaimCodeAttempt: %v", err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	seen := map[int]int{}
	for _, v := range got {
		if v != 0 {
			seen[v]++
		}
	}
	if len(seen) != 5 || seen[1] != 1 || seen[2] != 1 || seen[3] != 1 || seen[4] != 1 || seen[5] != 1 {
		t.Errorf("counts handed out to %d parallel entries = %v, want 1 to 5 once each", n, seen)
	}
	if c, _ := s.OneTimeCodeByID(ctx, "c"); c.Attempts != 5 {
		t.Errorf("attempts after %d parallel entries = %d, want 5", n, c.Attempts)
	}
}

// Ten parallel uses of one code: exactly one succeeds, and a used code can
// no longer be claimed.
func testCodeUseRace(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	if err := s.CreateUser(ctx, newUser("u1", "a@example.com")); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	mustCreateCode(t, s, newCode("c", "u1", "b", now.Add(10*time.Minute)))
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			err := s.UseOneTimeCode(ctx, "c")
			if err == nil {
				ok.Add(1)
			} else if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("UseOneTimeCode: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Errorf("%d of 10 parallel uses of one code succeeded, want 1", ok.Load())
	}
	if _, err := s.ClaimCodeAttempt(ctx, "c", 5, now); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ClaimCodeAttempt(used) = %v, want ErrNotFound", err)
	}
	if _, err := s.LiveOneTimeCode(ctx, "u1", "login", "b"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("LiveOneTimeCode(used) = %v, want ErrNotFound", err)
	}
}

// CodeSends lists sends oldest first, per user and per destination, and
// leaves out decoys that were never sent (no channel).
func testCodeSends(t *testing.T, s *storage.Store) {
	ctx := t.Context()
	for _, id := range []string{"u1", "u2"} {
		if err := s.CreateUser(ctx, newUser(id, id+"@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	since := time.Now().Add(-time.Minute)
	exp := time.Now().Add(10 * time.Minute)
	codes := []*storage.OneTimeCode{
		newCode("a", "u1", "b1", exp),
		newCode("b", "u1", "b2", exp),
		newCode("c", "u2", "b3", exp),
		newCode("decoy", "", "b4", exp),
		newCode("silent", "", "b5", exp),
	}
	codes[1].Destination = "other@example.com"
	codes[4].Channel = ""
	for _, c := range codes {
		mustCreateCode(t, s, c)
	}
	byUser, byDest, err := s.CodeSends(ctx, "u1", "a@example.com", since)
	if err != nil {
		t.Fatal(err)
	}
	if len(byUser) != 2 || byUser[1].Before(byUser[0]) {
		t.Errorf("CodeSends by user = %v, want the 2 sends of u1, oldest first", byUser)
	}
	// a (u1) and c (u2) went to a@example.com from accounts; the decoy
	// went there without one and counts apart; the silent decoy was not
	// sent.
	if len(byDest) != 2 {
		t.Errorf("CodeSends by destination = %v, want the 2 sends of accounts", byDest)
	}
	if _, anon, err := s.CodeSends(ctx, "", "a@example.com", since); err != nil || len(anon) != 1 {
		t.Errorf("CodeSends(no user) by destination = %v, %v; want the 1 sent decoy", anon, err)
	}
	if u, d, err := s.CodeSends(ctx, "u1", "a@example.com", time.Now().Add(time.Minute)); err != nil || len(u) != 0 || len(d) != 0 {
		t.Errorf("CodeSends(since the future) = %v, %v, %v; want none", u, d, err)
	}
}
