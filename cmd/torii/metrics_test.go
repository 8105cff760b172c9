package main

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/login/notify/notifytest"
	"github.com/torii-idp/torii/provider"
)

// scrape reads /metrics into series → value ("name{labels}" as exposed).
func scrape(t *testing.T, metricsURL string) (map[string]float64, string) {
	t.Helper()
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d", metricsURL, resp.StatusCode)
	}
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out, string(raw)
}

// TestMetrics drives each counted event and reads it back from /metrics,
// and checks that no series names a user, address, client or token.
func TestMetrics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		a := newAPIEnv(t, dbURL)
		a.user("mia@example.com")
		userID := a.userID("mia@example.com")
		jwtID, jwtSecret := a.client(provider.ClientSpec{ID: "svc-jwt", GrantTypes: []string{"client_credentials"}, Scopes: []string{},
			TokenFormat: provider.FormatJWT, IDTokenAlg: provider.AlgES256})
		form := func(kv ...string) url.Values {
			v := url.Values{}
			for i := 0; i < len(kv); i += 2 {
				v.Set(kv[i], kv[i+1])
			}
			return v
		}

		// Client credentials, opaque (the spa client) and JWT.
		a.postForm("/oauth2/token", form("grant_type", "client_credentials"), a.id, a.secret)
		a.postForm("/oauth2/token", form("grant_type", "client_credentials"), jwtID, jwtSecret)
		// Password grant: a wrong password, then the code step with one
		// wrong code and the right one.
		a.postForm("/oauth2/token", form("grant_type", "password", "username", "mia@example.com", "password", "not her password"), a.id, a.secret)
		status, body, _ := a.postForm("/oauth2/token", form("grant_type", "password", "username", "mia@example.com",
			"password", testPassword, "scope", "openid offline_access", "acr_values", "mfa"), a.id, a.secret)
		if status != 403 {
			t.Fatalf("password grant = %d %v, want the code step", status, body)
		}
		code := notifytest.Code(t, a.nextMail("mia@example.com", "", 0).Text)
		mfa := body["mfa_token"].(string)
		a.postForm("/oauth2/token", form("grant_type", provider.GrantTypeMFAOTP, "mfa_token", mfa, "otp", wrongCode(code)), a.id, a.secret)
		status, body, _ = a.postForm("/oauth2/token", form("grant_type", provider.GrantTypeMFAOTP, "mfa_token", mfa, "otp", code), a.id, a.secret)
		if status != 200 {
			t.Fatalf("mfa-otp grant = %d %v", status, body)
		}
		// Refresh, then the old refresh token again: reuse.
		old := body["refresh_token"].(string)
		a.postForm("/oauth2/token", form("grant_type", "refresh_token", "refresh_token", old), a.id, a.secret)
		a.postForm("/oauth2/token", form("grant_type", "refresh_token", "refresh_token", old), a.id, a.secret)
		// The sign-in page: a wrong password.
		b := a.browser()
		p := a.get(b, a.issuer+"/login")
		f := p.formWith(t, "password")
		f.values.Set("username", "mia@example.com")
		f.values.Set("password", "still not her password")
		a.post(b, f)

		// The worker counts a delivery right after the server took it.
		var (
			m   map[string]float64
			raw string
		)
		for i := 0; ; i++ {
			m, raw = scrape(t, a.issuer+"/metrics")
			if m[`torii_outbox_deliveries_total{channel="email",outcome="sent"}`] == 1 || i == 100 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		for _, tc := range []struct {
			series string
			want   float64
		}{
			{`torii_tokens_issued_total{format="opaque",grant_type="client_credentials"}`, 1},
			{`torii_tokens_issued_total{format="jwt",grant_type="client_credentials"}`, 1},
			{`torii_tokens_issued_total{format="opaque",grant_type="` + provider.GrantTypeMFAOTP + `"}`, 1},
			{`torii_tokens_issued_total{format="opaque",grant_type="refresh_token"}`, 1},
			{`torii_refresh_token_reuse_total`, 1},
			{`torii_sign_ins_total{method="password",outcome="wrong_credentials"}`, 2},
			{`torii_sign_ins_total{method="password",outcome="wrong_code"}`, 1},
			{`torii_sign_ins_total{method="password",outcome="success"}`, 1},
			{`torii_signatures_total{alg="ES256"}`, 1},
			{`torii_signatures_total{alg="RS256"}`, 2}, // the ID tokens of the mfa-otp grant and the refresh
			{`torii_outbox_deliveries_total{channel="email",outcome="sent"}`, 1},
			{`torii_outbox_pending`, 0},
		} {
			if got, ok := m[tc.series]; !ok || got != tc.want {
				t.Errorf("%s = %v (present %v), want %v", tc.series, got, ok, tc.want)
			}
		}
		for _, series := range []string{"torii_outbox_oldest_due_seconds", `go_sql_open_connections{db_name="torii"}`, `go_sql_wait_count_total{db_name="torii"}`} {
			if _, ok := m[series]; !ok {
				t.Errorf("%s missing", series)
			}
		}
		for _, secret := range []string{"mia@example.com", userID, jwtID, old} {
			if strings.Contains(raw, secret) {
				t.Errorf("/metrics holds %q", secret)
			}
		}
	})
}
