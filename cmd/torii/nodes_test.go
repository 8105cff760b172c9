package main

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/login/notify/notifytest"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage/storagetest"
)

// nodeTransport sends every request of a browser to one node (the
// harness's X-Test-Node header), like a load balancer without sticky
// sessions moving it there, from an address of its own (X-Forwarded-For).
type nodeTransport struct {
	node int
	ip   string
	base http.RoundTripper
}

func (n *nodeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Test-Node", strconv.Itoa(n.node))
	r.Header.Set("X-Forwarded-For", n.ip)
	return n.base.RoundTrip(r)
}

// browsers numbers the test browsers' addresses.
var browsers atomic.Int32

// via points browser b at node for its next requests; a browser keeps its
// address from node to node.
func (e *env) via(b *http.Client, node int) {
	ip := fmt.Sprintf("192.0.2.%d", browsers.Add(1)%250+1)
	if nt, ok := b.Transport.(*nodeTransport); ok {
		ip = nt.ip
	}
	b.Transport = &nodeTransport{node: node, ip: ip, base: e.ts.Client().Transport}
}

// TestNodesAsOne runs two Torii nodes on one PostgreSQL database behind one
// issuer and checks that they behave as one server: nothing a node
// remembers by itself changes an answer of the other.
func TestNodesAsOne(t *testing.T) {
	if os.Getenv(storagetest.PostgresEnv) == "" {
		t.Skipf("%s is not set: skipping the two-node test, which needs PostgreSQL (SQLite serves one node)", storagetest.PostgresEnv)
	}

	t.Run("start together on an empty database", func(t *testing.T) {
		// Both nodes migrate, create the signing keys and the server
		// secrets at once; a few rounds, each on a new empty database.
		for round := range 3 {
			dbURL := storagetest.PostgresURL(t)
			cfg := newEnvConfig(dbURL)
			var wg sync.WaitGroup
			nodes := make([]*server, 2)
			errs := make([]error, 2)
			for i := range nodes {
				wg.Go(func() {
					nodes[i], errs[i] = newServer(t.Context(), cfg, newLogger(io.Discard, cfg), serverOptions{Keys: provider.KeysConfig{ActivationDelay: -1}})
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("round %d: node %d: newServer = %v", round, i, err)
				}
				t.Cleanup(func() { nodes[i].close() })
			}
			// One row per migration, one key per algorithm, one of each
			// secret: the same state as one node starting alone.
			db, err := sql.Open("pgx", dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			counts := map[string]string{
				"SELECT count(*) - count(DISTINCT name) FROM torii_migrations": "0",
				"SELECT count(*) - count(DISTINCT alg) FROM signing_keys":      "0",
				"SELECT count(*) - count(DISTINCT name) FROM secrets":          "0",
			}
			for q, want := range counts {
				var got string
				if err := db.QueryRow(q).Scan(&got); err != nil || got != want {
					t.Errorf("round %d: %s = %s, %v; want %s", round, q, got, err, want)
				}
			}
			st0, err := nodes[0].store.MigrationStatus(t.Context())
			if err != nil || len(st0.Pending) != 0 || len(st0.Unknown) != 0 {
				t.Errorf("round %d: MigrationStatus = %+v, %v; want everything applied", round, st0, err)
			}
		}
	})

	dbURL := storagetest.PostgresURL(t)
	clk := &testClock{}
	smtpd := notifytest.NewSMTPServer(t)
	e := newEnv(t, dbURL, func(c *Config, so *serverOptions) {
		c.LockoutThreshold = 5
		c.IPRateLimit = RateLimit{12, time.Hour}
		c.IPFailureLimit = RateLimit{4, time.Hour}
		c.TokenFailureLimit = RateLimit{4, time.Hour}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.SMTPURL = Secret(smtpd.URL())
		c.MailFrom = "torii@example.test"
		so.SMTPRootCAs = smtpd.RootCAs()
		so.Keys = provider.KeysConfig{Now: clk.Now}
	})
	e.mail = smtpd
	const a, b = 0, 1
	if n := e.addNode(); n != b {
		t.Fatalf("addNode = %d", n)
	}
	nodes := *e.route.Load()
	// Both outbox workers run throughout, as in two serve processes.
	workers, stopWorkers := context.WithCancel(context.Background())
	var running sync.WaitGroup
	for _, n := range nodes {
		running.Go(func() { n.outbox.Run(workers) })
	}
	t.Cleanup(func() { stopWorkers(); running.Wait() }) // before the stores close
	id, secret := e.client(provider.ClientSpec{ID: "webapp", SkipConsent: true, TokenFormat: provider.FormatJWT, IDTokenAlg: provider.AlgES256,
		GrantTypes: []string{"authorization_code", "refresh_token", "password", "client_credentials"}})
	conf := e.oauth2Config(id, secret)

	t.Run("a code issued by A is redeemed at B", func(t *testing.T) {
		e.user("ann@example.com")
		br := e.browser()
		e.via(br, a)
		f := newCodeFlow(conf)
		q := e.authorize(br, f.authURL(), "ann@example.com")
		if q.Get("code") == "" {
			t.Fatalf("authorization at A = %v, want a code", q)
		}
		status, body, _ := e.postFormVia(b, "/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
			"redirect_uri": {callbackURL}, "code_verifier": {f.verifier}}, id, secret)
		if status != 200 || body["access_token"] == nil || body["id_token"] == nil {
			t.Fatalf("redemption at B = %d %v, want tokens", status, body)
		}
		// A second redemption, at A, fails: the code's single use is the
		// database's.
		status, body, _ = e.postFormVia(a, "/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
			"redirect_uri": {callbackURL}, "code_verifier": {f.verifier}}, id, secret)
		wantOAuthError(t, status, body, 400, "invalid_grant")
	})

	t.Run("a sign-in code mailed by A is entered at B", func(t *testing.T) {
		e.user("dee@example.com")
		br := e.browser()
		e.via(br, a)
		f := newCodeFlow(conf)
		p := e.get(br, f.authURL(oauth2.SetAuthURLParam("acr_values", "mfa")))
		before := len(smtpd.Mails())
		p = e.signIn(br, p, "dee@example.com")
		if p.status != 200 || !strings.HasSuffix(p.url.Path, "/login/code") {
			t.Fatalf("sign-in at A = %d at %s, want the code page", p.status, p.url)
		}
		mail := e.nextMail("dee@example.com", "sign-in code", before)
		e.via(br, b)
		q := e.callback(e.enterCode(br, p, mail))
		if q.Get("code") == "" {
			t.Fatalf("code entered at B = %v, want an authorization code", q)
		}
		status, body, _ := e.postFormVia(a, "/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
			"redirect_uri": {callbackURL}, "code_verifier": {f.verifier}}, id, secret)
		if status != 200 || body["access_token"] == nil {
			t.Fatalf("redemption at A = %d %v, want tokens", status, body)
		}
	})

	t.Run("a token issued by A is introspected and revoked at B", func(t *testing.T) {
		e.user("bob@example.com")
		status, tok, _ := e.postFormVia(a, "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"bob@example.com"},
			"password": {testPassword}, "scope": {"openid offline_access"}}, id, secret)
		if status != 200 {
			t.Fatalf("password grant at A = %d %v", status, tok)
		}
		access, refresh := tok["access_token"].(string), tok["refresh_token"].(string)
		// Warm A's caches first: whatever A remembers must not outlive
		// the revocation at B.
		if in := e.introspectVia(a, access, id, secret); in["active"] != true {
			t.Fatalf("introspection at A = %v, want active", in)
		}
		if in := e.introspectVia(b, access, id, secret); in["active"] != true {
			t.Fatalf("introspection at B = %v, want active", in)
		}
		for _, tk := range []string{access, refresh} {
			if status, body, _ := e.postFormVia(b, "/oauth2/revoke", url.Values{"token": {tk}}, id, secret); status != 200 {
				t.Fatalf("revocation at B = %d %v", status, body)
			}
		}
		for _, node := range []int{a, b} {
			if in := e.introspectVia(node, access, id, secret); in["active"] != false {
				t.Errorf("introspection at node %d right after revocation at B = %v, want inactive", node, in)
			}
		}
		req := mustReq("GET", e.issuer+"/userinfo")
		req.Header.Set("X-Test-Node", strconv.Itoa(a))
		req.Header.Set("Authorization", "Bearer "+access)
		if status, body, _ := e.do(req); status != 401 {
			t.Errorf("userinfo at A with the token revoked at B = %d %v, want 401", status, body)
		}
		status, body, _ := e.postFormVia(a, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, id, secret)
		wantOAuthError(t, status, body, 400, "invalid_grant")
	})

	t.Run("a key rotated at A signs at B after the activation delay", func(t *testing.T) {
		added, err := nodes[a].provider.Keys().Rotate(t.Context(), provider.AlgES256)
		if err != nil || len(added) != 1 {
			t.Fatalf("Rotate at A = %v, %v", added, err)
		}
		key := added[0]
		kidOf := func(node int) string {
			t.Helper()
			status, body, _ := e.postFormVia(node, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, id, secret)
			if status != 200 {
				t.Fatalf("client credentials at node %d = %d %v", node, status, body)
			}
			header, _, _ := strings.Cut(body["access_token"].(string), ".")
			raw, _ := base64.RawURLEncoding.DecodeString(header)
			var h struct {
				KID string `json:"kid"`
			}
			json.Unmarshal(raw, &h)
			return h.KID
		}
		jwksHas := func(node int) bool {
			req := mustReq("GET", e.issuer+"/.well-known/jwks.json")
			req.Header.Set("X-Test-Node", strconv.Itoa(node))
			_, body, _ := e.do(req)
			raw, _ := json.Marshal(body)
			return strings.Contains(string(raw), key.KID)
		}
		if kid := kidOf(b); kid == key.KID {
			t.Fatal("B signs with the new key before its activation")
		}
		// B re-reads the keys within its reload interval (30 s).
		clk.Advance(31 * time.Second)
		if !jwksHas(b) {
			t.Error("B's JWKS lacks the key rotated at A after B's reload interval")
		}
		if kid := kidOf(b); kid == key.KID {
			t.Error("B signs with the new key before its activation")
		}
		clk.Advance(key.SignsFrom.Sub(clk.Now()) + time.Second)
		for _, node := range []int{b, a} {
			if kid := kidOf(node); kid != key.KID {
				t.Errorf("node %d signs with %s after the activation, want the key rotated at A (%s)", node, kid, key.KID)
			}
		}
	})

	t.Run("lockout counts across both", func(t *testing.T) {
		e.user("cid@example.com")
		attempt := 0
		grant := func(node int, password string) (int, map[string]any) {
			// Each from an address of its own: the token endpoint's failure
			// budget per address is the next case's.
			attempt++
			status, body, _ := e.postFrom(node, "198.51.100."+strconv.Itoa(10+attempt), "/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"cid@example.com"},
				"password": {password}, "scope": {"openid"}}, id, secret)
			return status, body
		}
		for i := range 5 { // the threshold, alternating nodes
			status, body := grant(i%2, "wrong password")
			wantOAuthError(t, status, body, 400, "invalid_grant")
		}
		for _, node := range []int{a, b} {
			status, body := grant(node, testPassword)
			wantOAuthError(t, status, body, 400, "invalid_grant")
		}
	})

	t.Run("rate limits count across both", func(t *testing.T) {
		// The pages' request budget (12 per hour): exactly 12 pass,
		// whichever node serves them.
		codes := map[int]int{}
		for i := range 16 {
			req := mustReq("GET", e.issuer+"/login")
			req.Header.Set("X-Test-Node", strconv.Itoa(i%2))
			req.Header.Set("X-Forwarded-For", "198.51.100.2")
			status, _, hdr := e.do(req)
			codes[status]++
			if status == http.StatusTooManyRequests && hdr.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		}
		if codes[200] != 12 || codes[429] != 4 {
			t.Errorf("GET /login 16 times on two nodes with a budget of 12 = %v, want 12 × 200 and 4 × 429", codes)
		}

		// The pages' failure budget (4 wrong passwords per hour), spent on
		// both nodes by one browser: the fifth is refused before it is
		// checked, at either node.
		br := e.browser()
		e.via(br, a)
		p := e.get(br, e.issuer+"/login")
		for i := range 5 {
			e.via(br, i%2)
			f := p.formWith(t, "password")
			f.values.Set("username", fmt.Sprintf("nobody%d@example.com", i)) // no account's lockout
			f.values.Set("password", "wrong password")
			p = e.post(br, f)
			if want := i == 4; (p.status == http.StatusTooManyRequests) != want {
				t.Fatalf("wrong password #%d at node %d = %d (429 expected: %v)", i+1, i%2, p.status, want)
			}
		}

		// The token endpoint's failure budget (4 per hour), spent at A:
		// B answers 429 from its first failure on (a node learns that an
		// address is out of its budget when it counts a failure).
		bad := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"torii_rt_nope.nope"}}
		for range 4 {
			status, body, _ := e.postFrom(a, "198.51.100.3", "/oauth2/token", bad, id, secret)
			wantOAuthError(t, status, body, 400, "invalid_grant")
		}
		status, body, _ := e.postFrom(a, "198.51.100.3", "/oauth2/token", bad, id, secret)
		wantOAuthError(t, status, body, 429, "invalid_request")
		e.postFrom(b, "198.51.100.3", "/oauth2/token", bad, id, secret) // counted in the database: refused there
		for _, form := range []url.Values{bad, {"grant_type": {"client_credentials"}}} {
			status, body, _ := e.postFrom(b, "198.51.100.3", "/oauth2/token", form, id, secret)
			wantOAuthError(t, status, body, 429, "invalid_request")
		}
	})

	t.Run("each outbox message is sent once with both workers running", func(t *testing.T) {
		const count = 40
		before := len(smtpd.Mails())
		for i := range count {
			n := nodes[i%2]
			if err := n.outbox.Enqueue(t.Context(), notify.Message{Channel: notify.Email, To: fmt.Sprintf("m%02d@example.com", i),
				Subject: "Message", Text: "Hello"}); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			pending, _, err := nodes[a].store.OutboxBacklog(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if pending == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d messages still pending after 30 s", pending)
			}
			time.Sleep(20 * time.Millisecond)
		}
		got := map[string]int{}
		for _, m := range smtpd.Mails()[before:] {
			for _, to := range m.To {
				got[to]++
			}
		}
		for i := range count {
			if to := fmt.Sprintf("m%02d@example.com", i); got[to] != 1 {
				t.Errorf("%s received %d times, want once", to, got[to])
			}
		}
	})
}

// newEnvConfig is newEnv's configuration for dbURL, without a listener.
func newEnvConfig(dbURL string) Config {
	return Config{
		Addr: "127.0.0.1:0", Issuer: "http://127.0.0.1:9", DatabaseURL: Secret(dbURL),
		LogFormat: "json", LogLevel: 0,
		AccessTokenTTL: time.Hour, RefreshTokenTTL: 24 * time.Hour, IDTokenTTL: time.Hour, CodeTTL: 10 * time.Minute,
		CleanupInterval: time.Hour, ShutdownTimeout: 5 * time.Second,
		OTP: "off", OTPTTL: 10 * time.Minute, OTPResendInterval: 30 * time.Second, OTPResendLimit: RateLimit{5, 15 * time.Minute},
		LockoutThreshold: 5, IPRateLimit: RateLimit{100000, time.Minute}, IPFailureLimit: RateLimit{100000, time.Minute},
		TokenFailureLimit: RateLimit{100000, time.Minute}, TwilioURL: "https://api.twilio.com",
	}
}

// postFrom is postFormVia from client address ip (X-Forwarded-For; the
// test trusts the loopback proxy), so that a case has budgets of its own.
func (e *env) postFrom(node int, ip, path string, form url.Values, basicID, basicSecret string) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("X-Test-Node", strconv.Itoa(node))
	req.Header.Set("X-Forwarded-For", ip)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	return e.do(req)
}
