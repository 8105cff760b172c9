package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/torii-idp/torii/storage"
)

// torii runs the command line in-process and returns its exit status and
// output.
func torii(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// cliEnv points the command line at a fresh SQLite database.
func cliEnv(t *testing.T) string {
	t.Helper()
	db := "sqlite:" + filepath.Join(t.TempDir(), "torii.db")
	t.Setenv("TORII_DATABASE_URL", db)
	t.Setenv("TORII_LOG_LEVEL", "warn")
	return db
}

func TestConfigErrors(t *testing.T) {
	svgLogo := filepath.Join(t.TempDir(), "logo.svg")
	if err := os.WriteFile(svgLogo, []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantName string
	}{
		{"bad duration", map[string]string{"TORII_ACCESS_TOKEN_TTL": "soon"}, nil, "TORII_ACCESS_TOKEN_TTL"},
		{"code lifetime over 10m", nil, []string{"--code-ttl", "11m"}, "TORII_CODE_TTL"},
		{"negative lifetime", map[string]string{"TORII_ID_TOKEN_TTL": "-1h"}, nil, "TORII_ID_TOKEN_TTL"},
		{"audit retention under an hour", map[string]string{"TORII_AUDIT_RETENTION": "30m"}, nil, "TORII_AUDIT_RETENTION"},
		{"unknown database", map[string]string{"TORII_DATABASE_URL": "mysql://root:hunter2@db/torii"}, nil, "TORII_DATABASE_URL"},
		{"bad log format", map[string]string{"TORII_LOG_FORMAT": "xml"}, nil, "TORII_LOG_FORMAT"},
		{"bad log level", map[string]string{"TORII_LOG_LEVEL": "loud"}, nil, "TORII_LOG_LEVEL"},
		{"bad address", map[string]string{"TORII_ADDR": "8080"}, nil, "TORII_ADDR"},
		{"plain http issuer", map[string]string{"TORII_ISSUER": "http://id.example.com"}, nil, "TORII_ISSUER"},
		{"issuer with query", map[string]string{"TORII_ISSUER": "https://id.example.com/?x=1"}, nil, "TORII_ISSUER"},
		{"bad SMTP URL", map[string]string{"TORII_SMTP_URL": "http://user:hunter2@mail"}, nil, "TORII_SMTP_URL"},
		{"bad sender", map[string]string{"TORII_MAIL_FROM": "not an address"}, nil, "TORII_MAIL_FROM"},
		{"bad SMS URL", map[string]string{"TORII_SMS_URL": "ftp://sms"}, nil, "TORII_SMS_URL"},
		{"bad twilio URL", map[string]string{"TORII_SMS_URL": "twilio://sid@+15551234567"}, nil, "TORII_SMS_URL"},
		{"bad OTP mode", map[string]string{"TORII_OTP": "sometimes"}, nil, "TORII_OTP"},
		{"remember device under an hour", map[string]string{"TORII_REMEMBER_DEVICE": "30m"}, nil, "TORII_REMEMBER_DEVICE"},
		{"remember device not a duration", nil, []string{"--remember-device", "30d"}, "TORII_REMEMBER_DEVICE"},
		{"bad OTP flag", nil, []string{"--otp", "ALWAYS"}, "TORII_OTP"},
		{"rate limit without duration", map[string]string{"TORII_IP_RATE_LIMIT": "60"}, nil, "TORII_IP_RATE_LIMIT"},
		{"rate limit not a number", map[string]string{"TORII_IP_RATE_LIMIT": "x/1m"}, nil, "TORII_IP_RATE_LIMIT"},
		{"rate limit of zero", map[string]string{"TORII_IP_RATE_LIMIT": "0/1m"}, nil, "TORII_IP_RATE_LIMIT"},
		{"rate limit per 0s", map[string]string{"TORII_IP_RATE_LIMIT": "5/0s"}, nil, "TORII_IP_RATE_LIMIT"},
		{"failure limit without duration", map[string]string{"TORII_IP_FAILURE_LIMIT": "50"}, nil, "TORII_IP_FAILURE_LIMIT"},
		{"failure limit not a number", map[string]string{"TORII_IP_FAILURE_LIMIT": "x/1m"}, nil, "TORII_IP_FAILURE_LIMIT"},
		{"failure limit of zero", map[string]string{"TORII_IP_FAILURE_LIMIT": "0/1m"}, nil, "TORII_IP_FAILURE_LIMIT"},
		{"failure limit per 0s", map[string]string{"TORII_IP_FAILURE_LIMIT": "5/0s"}, nil, "TORII_IP_FAILURE_LIMIT"},
		{"failure limit flag", nil, []string{"--ip-failure-limit", "-5/15m"}, "TORII_IP_FAILURE_LIMIT"},
		{"token failure limit without duration", map[string]string{"TORII_TOKEN_FAILURE_LIMIT": "100"}, nil, "TORII_TOKEN_FAILURE_LIMIT"},
		{"token failure limit of zero", map[string]string{"TORII_TOKEN_FAILURE_LIMIT": "0/15m"}, nil, "TORII_TOKEN_FAILURE_LIMIT"},
		{"token failure limit flag", nil, []string{"--token-failure-limit", "100/forever"}, "TORII_TOKEN_FAILURE_LIMIT"},
		{"resend limit", map[string]string{"TORII_OTP_RESEND_LIMIT": "5/forever"}, nil, "TORII_OTP_RESEND_LIMIT"},
		{"profiles on a public address", map[string]string{"TORII_PPROF_ADDR": "0.0.0.0:6060"}, nil, "TORII_PPROF_ADDR"},
		{"profiles without a host", nil, []string{"--pprof-addr", "6060"}, "TORII_PPROF_ADDR"},
		{"admin API without a port", map[string]string{"TORII_ADMIN_ADDR": "127.0.0.1"}, nil, "TORII_ADMIN_ADDR"},
		{"admin API on the public listener", map[string]string{"TORII_ADDR": "127.0.0.1:9000", "TORII_ADMIN_ADDR": "127.0.0.1:9000"}, nil, "TORII_ADMIN_ADDR"},
		{"admin API flag", nil, []string{"--admin-addr", "no"}, "TORII_ADMIN_ADDR"},
		{"metrics without a port", map[string]string{"TORII_METRICS_ADDR": "localhost"}, nil, "TORII_METRICS_ADDR"},
		{"metrics on the public listener", map[string]string{"TORII_ADDR": "127.0.0.1:9000", "TORII_METRICS_ADDR": "127.0.0.1:9000"}, nil, "TORII_METRICS_ADDR"},
		{"shutdown delay over a minute", map[string]string{"TORII_SHUTDOWN_DELAY": "2m"}, nil, "TORII_SHUTDOWN_DELAY"},
		{"negative shutdown delay", map[string]string{"TORII_SHUTDOWN_DELAY": "-1s"}, nil, "TORII_SHUTDOWN_DELAY"},
		{"shutdown delay without a unit", nil, []string{"--shutdown-delay", "5"}, "TORII_SHUTDOWN_DELAY"},
		{"key rotation not a duration", map[string]string{"TORII_KEY_ROTATION": "quarterly"}, nil, "TORII_KEY_ROTATION"},
		{"key rotation under a day", map[string]string{"TORII_KEY_ROTATION": "1h"}, nil, "TORII_KEY_ROTATION"},
		{"key rotation flag", nil, []string{"--key-rotation", "0"}, "TORII_KEY_ROTATION"},
		{"TLS certificate without key", map[string]string{"TORII_TLS_CERT": "cert.pem"}, nil, "TORII_TLS_KEY"},
		{"TLS key without certificate", nil, []string{"--tls-key", "key.pem"}, "TORII_TLS_CERT"},
		{"TLS files missing", map[string]string{"TORII_TLS_CERT": "/nonexistent/cert.pem", "TORII_TLS_KEY": "/nonexistent/key.pem"}, nil, "TORII_TLS_CERT"},
		{"accent not a colour", map[string]string{"TORII_ACCENT_COLOR": "blue"}, nil, "TORII_ACCENT_COLOR"},
		{"accent too light", map[string]string{"TORII_ACCENT_COLOR": "#ffff00"}, nil, "TORII_ACCENT_COLOR"},
		{"accent too dark for the dark theme", nil, []string{"--accent-color", "#1d4ed8"}, "TORII_ACCENT_COLOR"},
		{"logo missing", map[string]string{"TORII_LOGO_FILE": "/nonexistent/logo.png"}, nil, "TORII_LOGO_FILE"},
		{"logo not a raster image", map[string]string{"TORII_LOGO_FILE": svgLogo}, nil, "TORII_LOGO_FILE"},
		{"site name too long", map[string]string{"TORII_SITE_NAME": strings.Repeat("n", 61)}, nil, "TORII_SITE_NAME"},
		{"default language unknown", map[string]string{"TORII_DEFAULT_LANGUAGE": "nl"}, nil, "TORII_DEFAULT_LANGUAGE"},
		{"default language as a region", nil, []string{"--default-language", "en-US"}, "TORII_DEFAULT_LANGUAGE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cliEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, stderr := torii(t, append(tc.args, "migrate")...)
			if code != 2 {
				t.Errorf("exit status %d, want 2 (stderr %q)", code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.wantName) {
				t.Errorf("stderr = %q, want one line naming %s", stderr, tc.wantName)
			}
			if strings.Contains(stderr, "hunter2") {
				t.Errorf("stderr repeats a password: %q", stderr)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	for _, s := range settings() {
		t.Setenv(s.env, "")
		os.Unsetenv(s.env)
	}
	load := configFlags(newRootCmd(io.Discard, io.Discard).Flags())
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:8080" || cfg.Issuer != "http://127.0.0.1:8080" || cfg.DatabaseURL.Reveal() != "sqlite:torii.db" ||
		cfg.CodeTTL != 10*time.Minute || cfg.AccessTokenTTL != time.Hour || cfg.LogFormat != "text" {
		t.Errorf("defaults = %+v", cfg)
	}
	if fmt.Sprint(cfg.DatabaseURL) != "REDACTED" {
		t.Error("the database URL prints itself")
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"TORII_OTP", cfg.OTP, "always"},
		{"TORII_ADMIN_ADDR", cfg.AdminAddr, "127.0.0.1:8081"},
		{"TORII_IP_RATE_LIMIT", cfg.IPRateLimit, RateLimit{N: 60, Per: time.Minute}},
		{"TORII_IP_FAILURE_LIMIT", cfg.IPFailureLimit, RateLimit{N: 50, Per: 15 * time.Minute}},
		{"TORII_TOKEN_FAILURE_LIMIT", cfg.TokenFailureLimit, RateLimit{N: 100, Per: 15 * time.Minute}},
		{"TORII_OTP_RESEND_LIMIT", cfg.OTPResendLimit, RateLimit{N: 5, Per: 15 * time.Minute}},
		{"TORII_OTP_RESEND_INTERVAL", cfg.OTPResendInterval, 30 * time.Second},
		{"TORII_OTP_TTL", cfg.OTPTTL, 10 * time.Minute},
		{"TORII_REMEMBER_DEVICE", cfg.RememberDevice, 720 * time.Hour},
		{"TORII_SHUTDOWN_DELAY", cfg.ShutdownDelay, 5 * time.Second},
		{"TORII_KEY_ROTATION", cfg.KeyRotation, 90 * 24 * time.Hour},
		{"TORII_AUDIT_RETENTION", cfg.AuditRetention, 2160 * time.Hour},
		{"TORII_TLS_CERT", cfg.TLSCert, ""},
		{"TORII_TLS_KEY", cfg.TLSKey, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("default %s = %v, want %v", tc.name, tc.got, tc.want)
			}
		})
	}
}

func TestParseRateLimit(t *testing.T) {
	tests := []struct {
		in      string
		want    RateLimit
		wantErr bool
	}{
		{"60/1m", RateLimit{60, time.Minute}, false},
		{"50/15m", RateLimit{50, 15 * time.Minute}, false},
		{" 3 / 1h ", RateLimit{3, time.Hour}, false},
		{"1/1s", RateLimit{1, time.Second}, false},
		{"1000000/24h", RateLimit{1_000_000, 24 * time.Hour}, false},
		{"60", RateLimit{}, true},
		{"x/1m", RateLimit{}, true},
		{"0/1m", RateLimit{}, true},
		{"-1/1m", RateLimit{}, true},
		{"5/0s", RateLimit{}, true},
		{"5/500ms", RateLimit{}, true},
		{"5/25h", RateLimit{}, true},
		{"5/m", RateLimit{}, true},
		{"1000001/1m", RateLimit{}, true},
		{"1.5/1m", RateLimit{}, true},
		{"", RateLimit{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseRateLimit(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseRateLimit(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
	if s := (RateLimit{60, time.Minute}).String(); s != "60/1m0s" {
		t.Errorf("String() = %q", s)
	}
}

// TestConfiguredLimitsReachTheServer: TORII_IP_FAILURE_LIMIT and
// TORII_IP_RATE_LIMIT, as parsed, limit the running server's sign-in page.
func TestConfiguredLimitsReachTheServer(t *testing.T) {
	tests := []struct {
		name      string
		env       string
		value     string
		password  string
		wantFirst int // status of the 3 requests within the limit
	}{
		{"failure limit", "TORII_IP_FAILURE_LIMIT", "3/1h", "wrong password", http.StatusUnauthorized},
		// The form's GET is a request too: 1 + 3 posts.
		{"rate limit", "TORII_IP_RATE_LIMIT", "4/1h", testPassword, http.StatusSeeOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range settings() {
				t.Setenv(s.env, "") // restored when the test ends
				os.Unsetenv(s.env)
			}
			t.Setenv(tc.env, tc.value)
			cfg, err := configFlags(newRootCmd(io.Discard, io.Discard).Flags())()
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, backends[0].url(t), func(c *Config, _ *serverOptions) {
				c.IPRateLimit, c.IPFailureLimit = cfg.IPRateLimit, cfg.IPFailureLimit
			})
			e.user("alice@example.com")
			b := e.browser()
			b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			lp := e.get(b, e.issuer+"/login")
			post := func(password string) *page {
				f := lp.formWith(t, "password")
				f.values.Set("username", "alice@example.com")
				f.values.Set("password", password)
				return e.post(b, f)
			}
			for i := range 3 {
				if p := post(tc.password); p.status != tc.wantFirst {
					t.Fatalf("attempt %d = %d, want %d", i+1, p.status, tc.wantFirst)
				}
			}
			p := post(testPassword)
			if p.status != http.StatusTooManyRequests || p.resp.Header.Get("Retry-After") == "" {
				t.Errorf("past the limit with the right password = %d, Retry-After %q; want 429", p.status, p.resp.Header.Get("Retry-After"))
			}
		})
	}
}

func TestCLIClients(t *testing.T) {
	cliEnv(t)
	code, out, stderr := torii(t, "clients", "create", "--id", "my-app", "--redirect-uri", "https://app.example/cb",
		"--redirect-uri", "http://127.0.0.1/cb", "--skip-consent", "--id-token-alg", "EdDSA", "--token-format", "jwt")
	if code != 0 {
		t.Fatalf("clients create = %d: %s", code, stderr)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	secret, _ := created["client_secret"].(string)
	if len(secret) < 43 || created["client_id"] != "my-app" || created["id_token_signed_response_alg"] != "EdDSA" ||
		created["access_token_format"] != "jwt" || created["pkce"] != "required" || created["skip_consent"] != true {
		t.Errorf("created client = %v", created)
	}

	code, out, _ = torii(t, "clients", "get", "my-app")
	if code != 0 || strings.Contains(out, secret) || strings.Contains(out, `"client_secret":`) {
		t.Errorf("clients get = %d, shows the secret: %s", code, out)
	}
	code, out, _ = torii(t, "clients", "create", "--id", "cli", "--public", "--redirect-uri", "http://127.0.0.1/cb")
	if code != 0 || strings.Contains(out, `"client_secret":`) || !strings.Contains(out, `"token_endpoint_auth_method": "none"`) {
		t.Errorf("public client = %d %s", code, out)
	}
	code, out, _ = torii(t, "clients", "create", "--id", "legacy", "--secret", strings.Repeat("s", 40), "--pkce", "optional",
		"--redirect-uri", "https://legacy.example/cb")
	if code != 0 || !strings.Contains(out, strings.Repeat("s", 40)) || !strings.Contains(out, `"pkce": "optional"`) {
		t.Errorf("legacy client = %d %s", code, out)
	}
	code, out, _ = torii(t, "clients", "create", "--id", "photos", "--redirect-uri", "https://photos.example/cb",
		"--logo-uri", "https://photos.example/logo.png", "--client-uri", "https://photos.example/")
	if code != 0 || !strings.Contains(out, `"logo_uri": "https://photos.example/logo.png"`) || !strings.Contains(out, `"client_uri": "https://photos.example/"`) {
		t.Errorf("client with logo and home page = %d %s", code, out)
	}
	if code, _, stderr := torii(t, "clients", "create", "--id", "badlogo", "--redirect-uri", "https://x.example/cb", "--logo-uri", "http://x.example/l.png"); code != 2 ||
		!strings.Contains(stderr, `logo URI "http://x.example/l.png" must be https (plain http only on a loopback host)`) {
		t.Errorf("clients create --logo-uri http://… = %d %q, want 2 naming the logo URI", code, stderr)
	}
	code, out, _ = torii(t, "clients", "create", "--id", "svc", "--grant-types", "client_credentials", "--scope", "")
	if code != 0 || !strings.Contains(out, `"scope": ""`) {
		t.Errorf("client credentials client = %d %s", code, out)
	}

	bad := [][]string{
		{"clients", "create", "--id", "my-app", "--redirect-uri", "https://app.example/cb"},
		{"clients", "create", "--id", "short", "--secret", "tooshort", "--redirect-uri", "https://app.example/cb"},
		{"clients", "create", "--id", "frag", "--redirect-uri", "https://app.example/cb#x"},
		{"clients", "create", "--id", "http", "--redirect-uri", "http://app.example/cb"},
		{"clients", "create", "--id", "grant", "--grant-types", "implicit", "--redirect-uri", "https://app.example/cb"},
		{"clients", "create", "--id", "alg", "--id-token-alg", "none", "--redirect-uri", "https://app.example/cb"},
		{"clients", "create", "--id", "pkce", "--pkce", "off", "--redirect-uri", "https://app.example/cb"},
		{"clients", "create", "--redirect-uri", "https://app.example/cb"},
		{"clients", "get"},
	}
	for _, args := range bad {
		if code, _, stderr := torii(t, args...); code != 2 || stderr == "" {
			t.Errorf("torii %v = %d (%q), want 2 with a message", args, code, stderr)
		}
	}
	if code, _, stderr := torii(t, "clients", "get", "nobody"); code != 1 || !strings.Contains(stderr, "no client") {
		t.Errorf("clients get nobody = %d %q", code, stderr)
	}

	code, out, _ = torii(t, "clients", "list")
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) != 5 {
		t.Errorf("clients list = %d %v: %s", code, err, out)
	}
	if code, _, _ := torii(t, "clients", "delete", "my-app"); code != 0 {
		t.Errorf("clients delete = %d", code)
	}
	if code, _, _ := torii(t, "clients", "delete", "my-app"); code != 1 {
		t.Errorf("deleting twice = %d, want 1", code)
	}
}

// TestCLIRedirectURIs: clients create refuses a redirect or post-logout
// redirect URI with a space, a percent-encoded NUL or a port that is not a
// port number, and an http URI on a host that only looks like a loopback
// host, with exit status 2 and a message saying what is wrong (SEC 2, 5).
func TestCLIRedirectURIs(t *testing.T) {
	cliEnv(t)
	tests := []struct {
		name, flag, uri, wantMsg string
	}{
		{"space", "--redirect-uri", "https://app.example/c b", "spaces"},
		{"encoded NUL", "--redirect-uri", "https://app.example/cb%00", "%00"},
		{"port 0", "--redirect-uri", "http://127.0.0.1:0/cb", "port"},
		{"port 99999", "--redirect-uri", "http://127.0.0.1:99999/cb", "port"},
		{"port with a leading zero", "--redirect-uri", "http://127.0.0.1:051234/cb", "port"},
		{"empty port", "--redirect-uri", "http://127.0.0.1:/cb", "port"},
		{"localhost look-alike", "--redirect-uri", "http://localhost.attacker.example/cb", "loopback"},
		{"127.0.0.1 look-alike", "--redirect-uri", "http://127.0.0.1.nip.io/cb", "loopback"},
		{"post-logout space", "--post-logout-redirect-uri", "https://app.example/bye bye", "spaces"},
		{"post-logout encoded NUL", "--post-logout-redirect-uri", "https://app.example/bye%00", "%00"},
		{"post-logout port 99999", "--post-logout-redirect-uri", "https://app.example:99999/bye", "port"},
		{"post-logout empty port", "--post-logout-redirect-uri", "http://127.0.0.1:/bye", "port"},
		{"post-logout look-alike", "--post-logout-redirect-uri", "http://127.0.0.1.nip.io/bye", "loopback"},
		{"CORS wildcard", "--cors-origin", "https://*.app.example", "wildcards"},
		{"CORS origin with a path", "--cors-origin", "https://app.example/app", "nothing after it"},
		{"CORS plain http", "--cors-origin", "http://app.example", "https"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"clients", "create", "--id", "app", "--public"}
			if tc.flag != "--redirect-uri" {
				args = append(args, "--redirect-uri", "http://127.0.0.1/cb")
			}
			code, out, stderr := torii(t, append(args, tc.flag, tc.uri)...)
			if code != 2 || !strings.Contains(stderr, tc.wantMsg) || out != "" {
				t.Errorf("clients create %s %q = %d, stdout %q, stderr %q; want 2 and a message about %q", tc.flag, tc.uri, code, out, stderr, tc.wantMsg)
			}
		})
	}
	if code, out, _ := torii(t, "clients", "list"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("after refused creations, clients list = %d %s, want []", code, out)
	}
}

func TestCLIUsers(t *testing.T) {
	cliEnv(t)
	code, out, stderr := torii(t, "users", "create", "--email", "Alice@Example.com", "--password", testPassword,
		"--username", "alice", "--phone", "+15551234567", "--verified", "--role", "billing", "--role", "admin")
	if code != 0 {
		t.Fatalf("users create = %d: %s", code, stderr)
	}
	var u map[string]any
	json.Unmarshal([]byte(out), &u)
	if u["email"] != "alice@example.com" || u["email_verified"] != true || fmt.Sprint(u["roles"]) != "[admin billing]" || u["username"] != "alice" ||
		strings.Contains(out, testPassword) || strings.Contains(out, "argon2") {
		t.Errorf("created user = %s", out)
	}
	bad := [][]string{
		{"users", "create", "--email", "alice@example.com", "--password", testPassword},
		{"users", "create", "--email", "not-an-email", "--password", testPassword},
		{"users", "create", "--email", "b@example.com", "--password", "short"},
		{"users", "create", "--email", "b@example.com", "--password", strings.Repeat("x", 129)},
		{"users", "create", "--email", "b@example.com", "--password", testPassword, "--phone", "5551234"},
		{"users", "create", "--email", "b@example.com", "--password", testPassword, "--role", "Root"},
		{"users", "create", "--email", "b@example.com", "--password", testPassword, "--role", "admin", "--role", ""},
		{"users", "create", "--email", "b@example.com"},
	}
	for _, args := range bad {
		if code, _, stderr := torii(t, args...); code != 2 || stderr == "" || strings.Contains(stderr, testPassword) {
			t.Errorf("torii %v = %d (%q), want 2 with a message", args[:4], code, stderr)
		}
	}
	code, out, _ = torii(t, "users", "list")
	if code != 0 || !strings.Contains(out, "alice@example.com") {
		t.Errorf("users list = %d %s", code, out)
	}
	if code, out, _ := torii(t, "users", "create", "--email", "plain@example.com", "--password", testPassword); code != 0 ||
		!strings.Contains(out, `"roles": []`) {
		t.Errorf("users create without --role = %d %s, want roles []", code, out)
	}
	testCLIUserRoles(t, u["id"].(string))
	if code, out, _ := torii(t, "users", "delete", "ALICE@example.com"); code != 0 || !strings.Contains(out, "deleted user") {
		t.Errorf("users delete = %d %s", code, out)
	}
	if code, _, _ := torii(t, "users", "delete", "alice@example.com"); code != 1 {
		t.Errorf("deleting twice = %d, want 1", code)
	}
}

// testCLIUserRoles changes the roles of alice (ID id, roles admin and
// billing) with users roles.
func testCLIUserRoles(t *testing.T, id string) {
	t.Helper()
	roles := func(out string) string {
		var u map[string]any
		if err := json.Unmarshal([]byte(out), &u); err != nil {
			return "not JSON: " + out
		}
		return fmt.Sprint(u["id"], " ", u["roles"])
	}
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"users", "roles", id, "--add", "x", "--remove", "admin"}, id + " [billing x]"},
		{[]string{"users", "roles", "alice", "--add", "team:eu-1", "--add", "x", "--remove", "nobody"}, id + " [billing team:eu-1 x]"},
		{[]string{"users", "roles", id}, id + " [billing team:eu-1 x]"},
		{[]string{"users", "roles", "ALICE@example.com", "--remove", "billing", "--remove", "team:eu-1", "--remove", "x"}, id + " []"},
		{[]string{"users", "roles", id, "--add", "admin"}, id + " [admin]"},
	}
	for _, st := range steps {
		code, out, stderr := torii(t, st.args...)
		if code != 0 || roles(out) != st.want {
			t.Errorf("torii %q = %d %s %s; want 0 and %s", st.args, code, out, stderr, st.want)
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"users", "roles", id, "--add", "ok", "--add", "Bad.Name"}, 2, `"Bad.Name"`},
		{[]string{"users", "roles", id, "--remove", "admin", "--remove", "x';--"}, 2, `"x';--"`},
		{[]string{"users", "roles", id, "--add", ""}, 2, `""`},
		{[]string{"users", "roles", "no-such-user", "--add", "x"}, 1, `no user "no-such-user"`},
		{[]string{"users", "roles"}, 2, "1 argument"},
	} {
		code, out, stderr := torii(t, tc.args...)
		if code != tc.code || out != "" || !strings.Contains(stderr, tc.says) {
			t.Errorf("torii %q = %d %q %q; want %d and a message with %s", tc.args, code, out, stderr, tc.code, tc.says)
		}
	}
	if code, out, _ := torii(t, "users", "roles", id); code != 0 || roles(out) != id+" [admin]" {
		t.Errorf("after refused changes, users roles = %d %s; want [admin]", code, out)
	}
}

// users create refuses look-alike addresses (SECURITY 53) with exit
// status 2 and an explicit message; users stored before skeletons existed
// get theirs when the database is migrated, and a look-alike pair among
// them is logged by user ID.
func TestCLIUsersLookAlike(t *testing.T) {
	db := cliEnv(t)
	store, err := storage.Open(t.Context(), db, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*storage.User{{ID: "old-first", Email: "alice@example.com"}, {ID: "old-second", Email: "a1ice@example.com"}} {
		u.PasswordHash = "$argon2id$fake"
		if err := store.CreateUser(t.Context(), u); err != nil { // without a skeleton, as before the migration
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	store.Close()
	code, _, stderr := torii(t, "migrate")
	if code != 0 || !strings.Contains(stderr, " user_id=old-second ") || !strings.Contains(stderr, "other_user_id=old-first\n") ||
		strings.Contains(stderr, "@") {
		t.Errorf("migrate = %d, %q; want 0 and a warning naming both users by ID only", code, stderr)
	}
	tests := []struct{ email, want string }{
		{"alıce@example.com", "torii: account: email address already registered in a form that looks the same\n"},
		{"alice@examp1e.com", "torii: account: email address already registered in a form that looks the same\n"},
		{"alice@exаmple.com", "torii: account: invalid email: The email address mixes letters of different scripts (such as Latin and Cyrillic) in one part.\n"},
	}
	for _, tc := range tests {
		// Every command migrates first, and warns again about the pair.
		code, _, stderr := torii(t, "users", "create", "--email", tc.email, "--password", testPassword)
		if lines := strings.SplitAfter(stderr, "\n"); code != 2 || len(lines) < 2 || lines[len(lines)-2] != tc.want {
			t.Errorf("users create --email %q = %d, %q; want 2, ending with %q", tc.email, code, stderr, tc.want)
		}
	}
}

func TestCLIKeysMigrateVersion(t *testing.T) {
	cliEnv(t)
	if code, out, _ := torii(t, "migrate"); code != 0 || !strings.Contains(out, "applied") {
		t.Errorf("migrate = %d %s", code, out)
	}
	if code, out, _ := torii(t, "migrate"); code != 0 || !strings.Contains(out, "up to date") {
		t.Errorf("second migrate = %d %s", code, out)
	}
	code, out, _ := torii(t, "keys", "list")
	var keys []map[string]any
	if err := json.Unmarshal([]byte(out), &keys); code != 0 || err != nil || len(keys) != 3 {
		t.Fatalf("keys list = %d %v %s", code, err, out)
	}
	if strings.Contains(out, `"d"`) {
		t.Error("keys list shows private key material")
	}
	code, out, _ = torii(t, "keys", "rotate", "--alg", "ES256")
	if code != 0 || !strings.Contains(out, "ES256") {
		t.Errorf("keys rotate = %d %s", code, out)
	}
	_, out, _ = torii(t, "keys", "list")
	json.Unmarshal([]byte(out), &keys)
	states := map[string]int{}
	for _, k := range keys {
		states[k["state"].(string)]++
	}
	if len(keys) != 4 || states["active"] != 3 || states["next"] != 1 {
		t.Errorf("after rotation: %v", states)
	}
	if code, _, _ := torii(t, "keys", "rotate", "--alg", "HS256"); code != 2 {
		t.Errorf("rotate HS256 = %d, want 2", code)
	}
	if code, out, _ := torii(t, "version"); code != 0 || !strings.HasPrefix(out, "torii ") {
		t.Errorf("version = %d %q", code, out)
	}
}

func TestHelp(t *testing.T) {
	for _, cmd := range [][]string{{}, {"serve"}, {"migrate"}, {"backup"}, {"clients", "create"}, {"clients", "list"}, {"users", "create"}, {"keys", "rotate"}} {
		code, out, _ := torii(t, append(cmd, "--help")...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("torii %v --help = %d", cmd, code)
		}
		if !strings.Contains(out, "TORII_DATABASE_URL") {
			t.Errorf("torii %v --help does not name the environment variables", cmd)
		}
	}
	if code, _, _ := torii(t, "frobnicate"); code == 0 {
		t.Error("an unknown command succeeded")
	}
}

// TestServeGracefulShutdown runs the serve command, starts a request, then
// stops the server mid-request: the request completes and serve returns
// without error.
func TestServeGracefulShutdown(t *testing.T) {
	db := cliEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	adminAddr := ln.Addr().String()
	ln.Close()
	if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	a := &app{stdout: io.Discard, stderr: io.Discard}
	a.load = func() (Config, error) {
		s := settings()
		for _, x := range s {
			x.value = x.def
		}
		cfg, err := loadConfig(s)
		cfg.Addr, cfg.Issuer, cfg.DatabaseURL, cfg.AdminAddr, cfg.MetricsAddr = addr, "http://"+addr, Secret(db), adminAddr, metricsAddr
		cfg.ShutdownDelay = 0 // closes the listeners at once, as before the delay existed
		return cfg, err
	}
	if a.cfg, err = a.load(); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	a.log = newLogger(logs, a.cfg)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx) }()

	base := "http://" + addr
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/readyz")
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if i > 200 {
			t.Fatalf("server never became ready: %v", err)
		}
		time.Sleep(25 * time.Millisecond)
	}

	// The admin API answers on its own listener only.
	for _, c := range []struct {
		url  string
		want int
	}{
		{"http://" + adminAddr + "/healthz", http.StatusOK},
		{"http://" + adminAddr + "/api/v1/admin/users", http.StatusUnauthorized},
		{base + "/api/v1/admin/users", http.StatusNotFound},
		{"http://" + adminAddr + "/oauth2/token", http.StatusNotFound},
		// Metrics on their own listener, and then not on the public one.
		{"http://" + metricsAddr + "/metrics", http.StatusOK},
		{base + "/metrics", http.StatusNotFound},
	} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s = %d, want %d", c.url, resp.StatusCode, c.want)
		}
	}

	// An in-flight request whose body arrives slowly.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", base+"/oauth2/token", pr)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	result := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- -1
			return
		}
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	pw.Write([]byte("grant_type=client_"))
	time.Sleep(100 * time.Millisecond)
	stop() // SIGTERM
	time.Sleep(100 * time.Millisecond)
	pw.Write([]byte("credentials&client_id=nobody"))
	pw.Close()
	if status := <-result; status != http.StatusUnauthorized {
		t.Errorf("in-flight request during shutdown = %d, want its normal answer (401)", status)
	}
	if err := <-done; err != nil {
		t.Errorf("serve returned %v after shutdown", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("server still accepts connections after shutdown")
	}
	if !strings.Contains(logs.String(), "stopped") {
		t.Errorf("no shutdown log line:\n%s", logs)
	}
}

// TestComposeFile keeps docker-compose.yml in line with the configuration:
// every TORII_* variable it sets exists and is valid; and it runs several
// nodes as one: every service built from the repository is a Torii node
// with the same database and issuer, behind a proxy whose Caddyfile (in
// the repository) sends requests to each of them.
func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Build       map[string]any    `yaml:"build"`
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			DependsOn   any               `yaml:"depends_on"`
			Volumes     []string          `yaml:"volumes"`
			Ports       []string          `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	torii, ok := doc.Services["torii"]
	if deps, _ := torii.DependsOn.(map[string]any); !ok || torii.Build == nil || deps["postgres"] == nil {
		t.Fatalf("docker-compose.yml needs a torii service built from the repository, depending on postgres")
	}
	var nodes []string
	for name, svc := range doc.Services {
		if svc.Build == nil {
			continue
		}
		nodes = append(nodes, name)
		known := map[string]*setting{}
		all := settings()
		for _, s := range all {
			known[s.env] = s
			s.value = s.def
		}
		for k, v := range svc.Environment {
			s, ok := known[k]
			if !ok {
				t.Errorf("docker-compose.yml: %s sets unknown %s", name, k)
				continue
			}
			s.value = v
		}
		if _, err := loadConfig(all); err != nil {
			t.Errorf("docker-compose.yml: %s's configuration is invalid: %v", name, err)
		}
		if !strings.Contains(svc.Environment["TORII_DATABASE_URL"], "@postgres:5432/") {
			t.Errorf("docker-compose.yml: %s does not use the compose Postgres", name)
		}
		for _, k := range []string{"TORII_DATABASE_URL", "TORII_ISSUER"} {
			if svc.Environment[k] != torii.Environment[k] {
				t.Errorf("docker-compose.yml: %s's %s = %q, torii's %q: the nodes must share it", name, k, svc.Environment[k], torii.Environment[k])
			}
		}
		if len(svc.Ports) != 0 {
			t.Errorf("docker-compose.yml: node %s publishes ports %v: only the proxy should", name, svc.Ports)
		}
	}
	if len(nodes) < 2 {
		t.Errorf("docker-compose.yml runs %d Torii nodes (%v), want at least 2", len(nodes), nodes)
	}
	proxy, ok := doc.Services["proxy"]
	if !ok || !strings.HasPrefix(proxy.Image, "caddy:") || len(proxy.Ports) == 0 {
		t.Fatalf("docker-compose.yml needs a proxy service (Caddy) that publishes a port")
	}
	var caddyfile string
	for _, v := range proxy.Volumes {
		if src, dst, _ := strings.Cut(v, ":"); strings.HasPrefix(dst, "/etc/caddy/Caddyfile") {
			raw, err := os.ReadFile(filepath.Join("../..", src))
			if err != nil {
				t.Fatalf("the proxy's Caddyfile: %v", err)
			}
			caddyfile = string(raw)
		}
	}
	for _, n := range nodes {
		if !strings.Contains(caddyfile, " "+n+":8080") {
			t.Errorf("the proxy's Caddyfile does not send requests to %s:8080:\n%s", n, caddyfile)
		}
	}
	if !strings.Contains(caddyfile, "health_uri /readyz") {
		t.Error("the proxy's Caddyfile does not check the nodes' /readyz")
	}
}

// TestPprofListener: the profiles are served on their own loopback
// listener, and stop with it.
func TestPprofListener(t *testing.T) {
	a := benchApp(t, "sqlite::memory:")
	a.log = slog.New(slog.DiscardHandler)
	a.cfg.PprofAddr = "127.0.0.1:0"
	addr, stop, err := a.servePprof()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Errorf("GET /debug/pprof/goroutine = %d:\n%.200s", resp.StatusCode, body)
	}
	stop()
	if _, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		t.Error("the profile listener still answers after stop")
	}
}
