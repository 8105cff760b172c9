package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func benchApp(t *testing.T, dbURL string) *app {
	t.Helper()
	s := settings()
	for _, x := range s {
		x.value = x.def
	}
	cfg, err := loadConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = Secret(dbURL)
	return &app{cfg: cfg, stdout: io.Discard, stderr: io.Discard}
}

func TestBenchScenarios(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL) // OTP off
		a := benchApp(t, dbURL)
		o := benchOptions{target: e.issuer, scenarios: benchScenarios, concurrency: 3, duration: 300 * time.Millisecond, idTokenAlg: "ES256"}
		report, err := a.runBench(t.Context(), o, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(report.Scenarios) != len(benchScenarios) {
			t.Fatalf("%d scenarios reported, want %d", len(report.Scenarios), len(benchScenarios))
		}
		for _, s := range report.Scenarios {
			if s.Note != "" || s.Requests == 0 || len(s.Errors) != 0 || s.RPS <= 0 || s.P50MS <= 0 || s.P99MS < s.P50MS {
				t.Errorf("%s: %+v", s.Name, s)
			}
			if s.Name == "password" && s.HashMS <= 0 {
				t.Error("the password scenario does not report the hashing cost")
			}
		}
		// The fixture cleans up after itself.
		users, _ := e.srv.store.Users(t.Context(), 0, 100)
		clients, _ := e.srv.store.Clients(t.Context())
		if len(users) != 0 || len(clients) != 0 {
			t.Errorf("left behind %d users and %d clients", len(users), len(clients))
		}
		var out bytes.Buffer
		report.writeTable(&out)
		for _, name := range benchScenarios {
			if !strings.Contains(out.String(), name) {
				t.Errorf("table lacks %s:\n%s", name, out.String())
			}
		}
	})
}

func TestBenchCountsErrors(t *testing.T) {
	e := newEnv(t, backends[0].url(t))
	// A target that breaks JWKS and discovery but is otherwise Torii.
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/") {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == "/oauth2/introspect" {
			// A 200 that says the token is dead is a failure too.
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"active":false}`))
			return
		}
		e.srv.handler.ServeHTTP(w, r)
	}))
	defer broken.Close()
	a := benchApp(t, e.dbURL)
	o := benchOptions{target: broken.URL, scenarios: []string{"jwks", "client-credentials", "introspect"}, concurrency: 2, duration: 200 * time.Millisecond, idTokenAlg: "RS256"}
	report, err := a.runBench(t.Context(), o, true)
	if err != nil {
		t.Fatal(err)
	}
	jwks, cc, intro := report.Scenarios[0], report.Scenarios[1], report.Scenarios[2]
	if jwks.Requests != 0 || jwks.RPS != 0 || jwks.Errors["HTTP 503"] == 0 {
		t.Errorf("failing scenario = %+v; want every answer counted as an error, none as throughput", jwks)
	}
	if intro.Requests != 0 || intro.Errors["inactive token"] == 0 {
		t.Errorf("introspection of dead tokens = %+v; want each counted as an error", intro)
	}
	if cc.Requests == 0 || len(cc.Errors) != 0 {
		t.Errorf("healthy scenario = %+v", cc)
	}

	// A server that requires the one-time code: the scenarios that need the
	// password grant say so instead of measuring errors.
	otp := newEnv(t, backends[0].url(t), func(c *Config, _ *serverOptions) { c.OTP = "always" })
	o = benchOptions{target: otp.issuer, scenarios: []string{"refresh", "authcode"}, concurrency: 1, duration: 100 * time.Millisecond, idTokenAlg: "RS256"}
	report, err = benchApp(t, otp.dbURL).runBench(t.Context(), o, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range report.Scenarios {
		if !strings.Contains(s.Note, "TORII_OTP=off") {
			t.Errorf("%s: note %q, want it to name TORII_OTP=off", s.Name, s.Note)
		}
	}
}

func TestBenchLoopbackGuard(t *testing.T) {
	for _, tc := range []struct {
		target string
		ok     bool
	}{
		{"http://127.0.0.1:8080", true},
		{"http://[::1]:8080", true},
		{"http://localhost:8080", true},
		{"http://192.0.2.10:8080", false},
		{"ftp://127.0.0.1", false},
		{"not a url", false},
	} {
		if err := checkLoopback(t.Context(), tc.target); (err == nil) != tc.ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", tc.target, err, tc.ok)
		}
	}
	cliEnv(t)
	if code, _, stderr := torii(t, "bench", "--target", "http://192.0.2.10:8080", "--duration", "1s"); code != 2 || !strings.Contains(stderr, "--allow-remote") {
		t.Errorf("bench on a remote target = %d %q, want 2 naming --allow-remote", code, stderr)
	}
	for _, args := range [][]string{{"bench", "--scenario", "nope"}, {"bench", "--concurrency", "0"}, {"bench", "--id-token-alg", "none"}} {
		if code, _, _ := torii(t, args...); code != 2 {
			t.Errorf("torii %v = %d, want 2", args, code)
		}
	}
}

func TestBenchSpawn(t *testing.T) {
	cliEnv(t)
	t.Setenv("TORII_DATABASE_URL", "")
	os.Unsetenv("TORII_DATABASE_URL") // --spawn makes its own database
	code, out, stderr := torii(t, "bench", "--spawn", "--json", "--duration", "700ms", "--warmup", "0s", "--concurrency", "2",
		"--scenario", "client-credentials,jwks")
	if code != 0 {
		t.Fatalf("bench --spawn = %d: %s", code, stderr)
	}
	var r BenchReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if r.StartupMS <= 0 || r.Database != "sqlite" || len(r.Scenarios) != 2 {
		t.Fatalf("report = %+v", r)
	}
	for _, s := range r.Scenarios {
		if s.Requests == 0 || len(s.Errors) != 0 || s.CPUPerRequestMS <= 0 || s.PeakRSSMiB <= 0 || s.GoroutinesEnd <= 0 {
			t.Errorf("%s: %+v", s.Name, s)
		}
	}
}

func TestHistogram(t *testing.T) {
	h := newHistogram()
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct{ q, want float64 }{{0.5, 500}, {0.9, 900}, {0.99, 990}} {
		if got := h.quantileMS(tc.q); got < tc.want || got > tc.want*1.02 {
			t.Errorf("quantile %.2f = %.2f ms, want %.0f within 2 %%", tc.q, got, tc.want)
		}
	}
	if newHistogram().quantileMS(0.5) != 0 {
		t.Error("an empty histogram has a quantile")
	}
}
