package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
)

// Scenarios torii bench knows, in report order.
var benchScenarios = []string{
	"client-credentials", "client-credentials-jwt", "refresh", "authcode", "introspect",
	"userinfo", "discovery", "jwks", "signin-page", "password",
}

// benchOptions are the flags of torii bench.
type benchOptions struct {
	target      string
	spawn       bool
	scenarios   []string
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	json        bool
	allowRemote bool
	idTokenAlg  string
}

func (a *app) benchCmd() *cobra.Command {
	var o benchOptions
	var scenarios string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load a running Torii (or one it starts with --spawn) and report throughput, latency and errors",
		Long: `bench loads a Torii with bounded concurrency for a fixed time per scenario and reports
requests per second, p50/p90/p99 latency and errors by kind (any non-2xx answer, and a
2xx answer that is not what the scenario expects, is an error, never throughput). With
--spawn it starts Torii itself on a fresh temporary SQLite database (or the given
--database-url), measures its start-up on the existing database, and reports the
server's CPU time per request, its peak RSS in each scenario, and its RSS and goroutine
count at the start and end of each scenario.

It creates the clients and the user it needs in the target's database (--database-url /
TORII_DATABASE_URL) and deletes them afterwards. Scenarios: ` + strings.Join(benchScenarios, ", ") + `.
The password, refresh, userinfo and authcode scenarios sign in without a one-time code
(the password grant, the login form), and so need a server with TORII_OTP=off (--spawn
sets it).`,
		Example: `  torii bench --spawn --duration 10s
  torii bench --spawn --scenario client-credentials,introspect --concurrency 64 --json
  TORII_DATABASE_URL=postgres://... torii bench --target http://127.0.0.1:8080 --scenario jwks`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.scenarios, err = parseScenarios(scenarios); err != nil {
				return usageError{err}
			}
			if o.concurrency < 1 || o.concurrency > 4096 {
				return usageError{errors.New("--concurrency must be between 1 and 4096")}
			}
			if !provider.ValidAlg(o.idTokenAlg) {
				return usageError{fmt.Errorf("--id-token-alg must be one of %s", strings.Join(provider.Algorithms, ", "))}
			}
			if o.duration <= 0 || o.warmup < 0 {
				return usageError{errors.New("--duration must be positive and --warmup not negative")}
			}
			dbChanged := cmd.Flags().Changed("database-url") || os.Getenv("TORII_DATABASE_URL") != ""
			report, err := a.runBench(cmd.Context(), o, dbChanged)
			if err != nil {
				return err
			}
			if o.json {
				return a.printJSON(report)
			}
			report.writeTable(a.stdout)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.target, "target", "http://127.0.0.1:8080", "base URL of the Torii to load (ignored with --spawn)")
	f.BoolVar(&o.spawn, "spawn", false, "start a Torii for the run, on a temporary SQLite database unless --database-url is given")
	f.StringVar(&scenarios, "scenario", "all", "comma-separated scenarios, or all")
	f.IntVar(&o.concurrency, "concurrency", 32, "concurrent connections")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "how long each scenario runs")
	f.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each scenario")
	f.BoolVar(&o.json, "json", false, "print the report as JSON")
	f.BoolVar(&o.allowRemote, "allow-remote", false, "allow a target that is not a loopback address")
	f.StringVar(&o.idTokenAlg, "id-token-alg", provider.AlgRS256, "ID token algorithm of the refresh and authcode scenarios' client: RS256, ES256 or EdDSA")
	return cmd
}

func parseScenarios(s string) ([]string, error) {
	if s == "" || s == "all" {
		return benchScenarios, nil
	}
	var out []string
	for _, name := range splitList(s, ",") {
		if !slices.Contains(benchScenarios, name) {
			return nil, fmt.Errorf("unknown scenario %q (want some of %s, or all)", name, strings.Join(benchScenarios, ", "))
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// checkLoopback refuses a target whose host is not a loopback address.
func checkLoopback(ctx context.Context, target string) error {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--target %q is not an http(s) URL", target)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("--target: resolve %s: %w", host, err)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return fmt.Errorf("--target %s is not a loopback address; pass --allow-remote to load another host on purpose", host)
		}
	}
	return nil
}

// BenchReport is what torii bench prints.
type BenchReport struct {
	Target      string           `json:"target"`
	Database    string           `json:"database"`
	Concurrency int              `json:"concurrency"`
	Duration    string           `json:"duration"`
	IDTokenAlg  string           `json:"id_token_alg"`
	StartupMS   float64          `json:"startup_ms,omitempty"`
	IdleRSSMiB  float64          `json:"idle_rss_mib,omitempty"`
	Scenarios   []ScenarioResult `json:"scenarios"`
	Started     time.Time        `json:"started"`
}

// ScenarioResult is one scenario's measurements.
type ScenarioResult struct {
	Name     string         `json:"name"`
	Requests int64          `json:"requests"`
	RPS      float64        `json:"requests_per_second"`
	P50MS    float64        `json:"p50_ms"`
	P90MS    float64        `json:"p90_ms"`
	P99MS    float64        `json:"p99_ms"`
	Errors   map[string]int `json:"errors"`
	// Server measurements, only when bench started the server.
	CPUPerRequestMS float64 `json:"server_cpu_ms_per_request,omitempty"`
	PeakRSSMiB      float64 `json:"server_peak_rss_mib,omitempty"`
	RSSStartMiB     float64 `json:"server_rss_start_mib,omitempty"`
	RSSEndMiB       float64 `json:"server_rss_end_mib,omitempty"`
	GoroutinesStart int     `json:"server_goroutines_start,omitempty"`
	GoroutinesEnd   int     `json:"server_goroutines_end,omitempty"`
	// HashMS is the cost of one argon2id verification (password scenario).
	HashMS float64 `json:"argon2id_ms,omitempty"`
	// Note says why a scenario could not run.
	Note string `json:"note,omitempty"`
}

func (r *BenchReport) writeTable(w io.Writer) {
	fmt.Fprintf(w, "target %s, database %s, %d connections, %s per scenario, ID tokens %s\n", r.Target, r.Database, r.Concurrency, r.Duration, r.IDTokenAlg)
	if r.StartupMS > 0 {
		fmt.Fprintf(w, "start-up to ready on the existing database: %.0f ms; idle RSS %.1f MiB\n", r.StartupMS, r.IdleRSSMiB)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\treq/s\tp50 ms\tp90 ms\tp99 ms\terrors\tcpu ms/req\tpeak RSS MiB\tRSS MiB\tgoroutines\t")
	for _, s := range r.Scenarios {
		if s.Note != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t\n", s.Name)
			continue
		}
		errs := 0
		for _, n := range s.Errors {
			errs += n
		}
		gor, rss := "n/a", "n/a"
		if s.GoroutinesEnd > 0 {
			gor = fmt.Sprintf("%d→%d", s.GoroutinesStart, s.GoroutinesEnd)
		}
		if s.RSSEndMiB > 0 {
			rss = fmt.Sprintf("%.1f→%.1f", s.RSSStartMiB, s.RSSEndMiB)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t%s\t%s\t%s\t%s\t\n", s.Name, s.RPS, s.P50MS, s.P90MS, s.P99MS, errs,
			optional(s.CPUPerRequestMS, "%.3f"), optional(s.PeakRSSMiB, "%.1f"), rss, gor)
	}
	tw.Flush()
	for _, s := range r.Scenarios {
		if s.Note != "" {
			fmt.Fprintf(w, "%s: %s\n", s.Name, s.Note)
		}
		for kind, n := range s.Errors {
			fmt.Fprintf(w, "%s: %d × %s\n", s.Name, n, kind)
		}
		if s.HashMS > 0 {
			fmt.Fprintf(w, "%s: bounded by argon2id by design: one verification costs %.1f ms of one core\n", s.Name, s.HashMS)
		}
	}
}

func optional(v float64, format string) string {
	if v == 0 {
		return "n/a"
	}
	return fmt.Sprintf(format, v)
}

// benchServer is the Torii under load: a URL, and the child process when
// bench started it.
type benchServer struct {
	url  string
	proc *os.Process
	done chan error
}

// runBench sets up, runs every scenario, and tears down.
func (a *app) runBench(ctx context.Context, o benchOptions, dbGiven bool) (*BenchReport, error) {
	report := &BenchReport{Concurrency: o.concurrency, Duration: o.duration.String(), IDTokenAlg: o.idTokenAlg, Started: time.Now().UTC()}
	dbURL := a.cfg.DatabaseURL.Reveal()
	var srv *benchServer
	if o.spawn {
		dir, err := os.MkdirTemp("", "torii-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if !dbGiven {
			dbURL = "sqlite:" + filepath.Join(dir, "bench.db")
		}
		if srv, err = spawnTorii(ctx, dbURL); err != nil {
			return nil, err
		}
		// Start again on the now existing database: that start-up is
		// the one measured.
		srv.stop()
		began := time.Now()
		if srv, err = spawnTorii(ctx, dbURL); err != nil {
			return nil, err
		}
		report.StartupMS = float64(time.Since(began).Microseconds()) / 1000
		defer srv.stop()
		report.IdleRSSMiB = procStatus(srv.proc.Pid, "VmRSS")
		o.target = srv.url
	} else if !o.allowRemote {
		if err := checkLoopback(ctx, o.target); err != nil {
			return nil, usageError{err}
		}
	}
	report.Target = o.target
	dialect, _, _ := storage.ParseURL(dbURL)
	report.Database = string(dialect)

	store, err := storage.Open(ctx, dbURL, storage.Options{MaxOpenConns: 2})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	fx, err := newBenchFixture(ctx, store, o.target, o.idTokenAlg)
	if err != nil {
		return nil, err
	}
	defer fx.cleanup(context.WithoutCancel(ctx))

	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: o.concurrency * 2, MaxIdleConnsPerHost: o.concurrency * 2, MaxConnsPerHost: o.concurrency * 2,
			IdleConnTimeout: 90 * time.Second, DisableCompression: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for _, name := range o.scenarios {
		if ctx.Err() != nil {
			break
		}
		res := a.runScenario(ctx, name, o, fx, client, srv)
		report.Scenarios = append(report.Scenarios, res)
	}
	return report, nil
}

// spawnTorii starts this program's serve command on a free loopback port
// and waits until it is ready.
func spawnTorii(ctx context.Context, dbURL string) (*benchServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(exe, "serve")
	cmd.Env = append(os.Environ(),
		"TORII_ADDR="+addr, "TORII_ISSUER=http://"+addr, "TORII_DATABASE_URL="+dbURL,
		"TORII_LOG_LEVEL=error", "TORII_OTP=off", "TORII_SMTP_URL=", "TORII_SMS_URL=",
		// Only the public listener: the admin API's default port may be
		// taken, and the load never calls it.
		"TORII_ADMIN_ADDR=off", "TORII_METRICS_ADDR=",
		"TORII_IP_RATE_LIMIT=1000000/1s", "TORII_IP_FAILURE_LIMIT=1000000/1s",
		benchChildEnv+"=1")
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start torii: %w", err)
	}
	s := &benchServer{url: "http://" + addr, proc: cmd.Process, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("torii exited before it was ready: %v", err)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("torii did not become ready within 30 s")
		}
	}
}

// benchChildEnv marks a process bench started (tests use it to run the
// test binary as torii).
const benchChildEnv = "TORII_BENCH_CHILD"

func (s *benchServer) stop() {
	if s == nil || s.proc == nil {
		return
	}
	s.proc.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.proc.Kill()
		<-s.done
	}
}

// procStatus reads a memory line (VmRSS, VmHWM) of /proc/PID/status in MiB;
// 0 where /proc is not there.
func procStatus(pid int, field string) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// resetPeakRSS sets the process's VmHWM back to its current RSS (Linux
// clear_refs), so that the next peak read is that of what follows. Where
// that is not allowed, peaks stay the process's whole-life ones.
func resetPeakRSS(pid int) {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// procCPU returns the CPU seconds (user + system) the process used.
func procCPU(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(raw)
	// Fields after the command name (which may hold spaces) in parentheses.
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// goroutines reads go_goroutines from the server's metrics.
func goroutines(c *http.Client, base string) int {
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			n, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return int(n)
		}
	}
	return 0
}

// benchFixture is what the scenarios use: clients and a user, created for
// the run.
type benchFixture struct {
	store    *storage.Store
	base     string
	prefix   string
	password string
	email    string
	userID   string
	secrets  map[string]string // client ID → secret
	redirect string
	// extraUsers are the password scenario's users.
	extraUsers []string
}

func newBenchFixture(ctx context.Context, store *storage.Store, base, idTokenAlg string) (*benchFixture, error) {
	fx := &benchFixture{store: store, base: strings.TrimSuffix(base, "/"), prefix: "bench-" + strings.ToLower(rand.Text()[:8]),
		password: "bench " + rand.Text(), secrets: map[string]string{}, redirect: "http://127.0.0.1/bench-callback"}
	fx.email = fx.prefix + "@bench.example"
	clients, err := provider.NewClients(ctx, store)
	if err != nil {
		return nil, err
	}
	specs := []provider.ClientSpec{
		{ID: fx.prefix + "-cc", GrantTypes: []string{"client_credentials"}, Scopes: []string{}},
		{ID: fx.prefix + "-ccjwt", GrantTypes: []string{"client_credentials"}, Scopes: []string{}, TokenFormat: provider.FormatJWT, IDTokenAlg: provider.AlgES256},
		{ID: fx.prefix + "-web", SkipConsent: true, RedirectURIs: []string{fx.redirect}, IDTokenAlg: idTokenAlg,
			GrantTypes: []string{"authorization_code", "refresh_token", "password"}},
	}
	for _, spec := range specs {
		c, secret, err := clients.Register(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("bench: create client: %w", err)
		}
		fx.secrets[c.ID] = secret
	}
	u, err := account.New(store, account.Config{}).Create(ctx, account.NewUser{Email: fx.email, Password: fx.password, EmailVerified: true})
	if err != nil {
		fx.cleanup(ctx)
		return nil, fmt.Errorf("bench: create user: %w", err)
	}
	fx.userID = u.ID
	return fx, nil
}

func (fx *benchFixture) cleanup(ctx context.Context) {
	for id := range fx.secrets {
		fx.store.DeleteClient(ctx, id)
	}
	for _, id := range append(fx.extraUsers, fx.userID) {
		if id != "" {
			fx.store.DeleteUser(ctx, id)
		}
	}
}

// outcome classifies one request: "" for success, else the error kind.
type outcome string

// post posts a form to path with client id's credentials and returns
// the JSON answer.
func (fx *benchFixture) post(ctx context.Context, c *http.Client, path, clientID string, form url.Values) (map[string]any, outcome) {
	body, out := fx.send(ctx, c, http.MethodPost, path, fx.basicAuth(clientID), form.Encode())
	if out != "" {
		return nil, out
	}
	var m map[string]any
	if len(body) > 0 && body[0] == '{' {
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, "bad body"
		}
	}
	return m, ""
}

// basicAuth is the Authorization header of client id (RFC 6749 §2.3.1).
func (fx *benchFixture) basicAuth(clientID string) string {
	cred := url.QueryEscape(clientID) + ":" + url.QueryEscape(fx.secrets[clientID])
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(cred))
}

// send makes one request and returns the body of a 2xx answer; any other
// answer is an error outcome. A worker's client (on a connTransport) takes
// the lean path, where the body is valid until its next request.
func (fx *benchFixture) send(ctx context.Context, c *http.Client, method, path, auth, form string) ([]byte, outcome) {
	var status int
	var body []byte
	if ct, ok := c.Transport.(*connTransport); ok {
		var err error
		if status, body, err = ct.do(method, path, auth, form); err != nil {
			if ctx.Err() != nil {
				return nil, "canceled"
			}
			return nil, "transport error"
		}
	} else {
		var rd io.Reader
		if method == http.MethodPost {
			rd = strings.NewReader(form)
		}
		req, err := http.NewRequestWithContext(ctx, method, fx.base+path, rd)
		if err != nil {
			return nil, "bad request"
		}
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, "canceled"
			}
			return nil, "transport error"
		}
		body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, "transport error"
		}
		status = resp.StatusCode
	}
	if status < 200 || status > 299 {
		return nil, outcome(fmt.Sprintf("HTTP %d", status))
	}
	return body, ""
}

// get fetches path and checks for a 2xx answer with a body; the body is
// not parsed.
func (fx *benchFixture) get(ctx context.Context, c *http.Client, path, bearer string) outcome {
	auth := ""
	if bearer != "" {
		auth = "Bearer " + bearer
	}
	body, out := fx.send(ctx, c, http.MethodGet, path, auth, "")
	if out == "" && len(body) == 0 {
		return "bad body"
	}
	return out
}

// passwordTokens gets tokens through the password grant.
func (fx *benchFixture) passwordTokens(ctx context.Context, c *http.Client, scope string) (map[string]any, outcome) {
	return fx.post(ctx, c, "/oauth2/token", fx.prefix+"-web", url.Values{"grant_type": {"password"}, "username": {fx.email},
		"password": {fx.password}, "scope": {scope}})
}

// worker is one connection's state in a scenario.
type worker struct {
	client  *http.Client
	browser *http.Client // with a cookie jar (authcode)
	refresh string
	access  string
	email   string
}

// scenario is a named load: prepare makes a worker ready (its error
// makes the scenario unrunnable), op makes one request or flow.
type scenario struct {
	prepare func(ctx context.Context, w *worker) error
	op      func(ctx context.Context, w *worker) outcome
}

func (fx *benchFixture) scenario(name string, c *http.Client, introspect []string, next *atomic.Int64) scenario {
	cc := url.Values{"grant_type": {"client_credentials"}}
	webAuth := fx.basicAuth(fx.prefix + "-web")
	switch name {
	case "client-credentials", "client-credentials-jwt":
		id := fx.prefix + "-cc"
		if name == "client-credentials-jwt" {
			id = fx.prefix + "-ccjwt"
		}
		auth, form := fx.basicAuth(id), cc.Encode()
		return scenario{op: func(ctx context.Context, w *worker) outcome {
			body, out := fx.send(ctx, w.client, http.MethodPost, "/oauth2/token", auth, form)
			if out == "" && !bytes.Contains(body, []byte(`"access_token":"`)) {
				return "bad body"
			}
			return out
		}}
	case "refresh":
		return scenario{
			prepare: func(ctx context.Context, w *worker) error {
				m, out := fx.passwordTokens(ctx, w.client, "openid offline_access")
				if out != "" {
					return fmt.Errorf("get a refresh token with the password grant: %s (the server needs TORII_OTP=off)", out)
				}
				w.refresh, _ = m["refresh_token"].(string)
				return nil
			},
			op: func(ctx context.Context, w *worker) outcome {
				body, out := fx.send(ctx, w.client, http.MethodPost, "/oauth2/token", webAuth,
					url.Values{"grant_type": {"refresh_token"}, "refresh_token": {w.refresh}}.Encode())
				if out != "" {
					return out
				}
				var answer struct {
					RefreshToken string `json:"refresh_token"`
				}
				if json.Unmarshal(body, &answer) != nil || answer.RefreshToken == "" {
					return "bad body"
				}
				w.refresh = answer.RefreshToken
				return ""
			},
		}
	case "password":
		// One user per worker: a burst of parallel sign-ins on one account
		// is exactly what the lockout stops.
		return scenario{
			prepare: func(ctx context.Context, w *worker) error {
				email := fx.prefix + "-" + strings.ToLower(rand.Text()[:6]) + "@bench.example"
				u, err := account.New(fx.store, account.Config{}).Create(ctx, account.NewUser{Email: email, Password: fx.password, EmailVerified: true})
				if err != nil {
					return fmt.Errorf("create a user: %w", err)
				}
				fx.extraUsers = append(fx.extraUsers, u.ID)
				w.email = email
				return nil
			},
			op: func(ctx context.Context, w *worker) outcome {
				_, out := fx.post(ctx, w.client, "/oauth2/token", fx.prefix+"-web", url.Values{"grant_type": {"password"},
					"username": {w.email}, "password": {fx.password}, "scope": {"openid"}})
				return out
			},
		}
	case "userinfo":
		return scenario{
			prepare: func(ctx context.Context, w *worker) error {
				m, out := fx.passwordTokens(ctx, w.client, "openid email profile")
				if out != "" {
					return fmt.Errorf("get an access token with the password grant: %s (the server needs TORII_OTP=off)", out)
				}
				w.access, _ = m["access_token"].(string)
				return nil
			},
			op: func(ctx context.Context, w *worker) outcome { return fx.get(ctx, w.client, "/userinfo", w.access) },
		}
	case "introspect":
		auth := fx.basicAuth(fx.prefix + "-cc")
		forms := make([]string, len(introspect))
		for i, tok := range introspect {
			forms[i] = url.Values{"token": {tok}}.Encode()
		}
		return scenario{op: func(ctx context.Context, w *worker) outcome {
			body, out := fx.send(ctx, w.client, http.MethodPost, "/oauth2/introspect", auth, forms[int(next.Add(1))%len(forms)])
			if out == "" && !bytes.Contains(body, []byte(`"active":true`)) {
				return "inactive token"
			}
			return out
		}}
	case "discovery":
		return scenario{op: func(ctx context.Context, w *worker) outcome {
			return fx.get(ctx, w.client, "/.well-known/openid-configuration", "")
		}}
	case "jwks":
		return scenario{op: func(ctx context.Context, w *worker) outcome {
			return fx.get(ctx, w.client, "/.well-known/jwks.json", "")
		}}
	case "signin-page":
		// The sign-in form: spends from the client IP's request budget
		// (shared by every node on PostgreSQL) and renders the page.
		return scenario{op: func(ctx context.Context, w *worker) outcome {
			body, out := fx.send(ctx, w.client, http.MethodGet, "/login", "", "")
			if out == "" && !bytes.Contains(body, []byte(`name="password"`)) {
				return "bad body"
			}
			return out
		}}
	case "authcode":
		return scenario{
			prepare: func(ctx context.Context, w *worker) error { return fx.signIn(ctx, w) },
			op:      func(ctx context.Context, w *worker) outcome { return fx.authcodeFlow(ctx, w) },
		}
	}
	panic("unknown scenario " + name)
}

// authorizeURL is an authorization request of the web client with PKCE.
func (fx *benchFixture) authorizeURL(verifier string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {fx.prefix + "-web"}, "redirect_uri": {fx.redirect},
		"scope": {"openid"}, "state": {"bench-state-" + rand.Text()[:8]}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)},
		"code_challenge_method": {"S256"}}
	return fx.base + "/oauth2/auth?" + q.Encode()
}

// signIn signs the worker's browser in through the login form.
func (fx *benchFixture) signIn(ctx context.Context, w *worker) error {
	v := oauth2.GenerateVerifier()
	resp, err := w.browser.Get(fx.authorizeURL(v))
	if err != nil {
		return err
	}
	resp.Body.Close()
	loginURL := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loginURL, "/login") {
		return fmt.Errorf("authorize answered %d, not the login page", resp.StatusCode)
	}
	resp, err = w.browser.Get(fx.base + loginURL)
	if err != nil {
		return err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf := between(string(page), `name="csrf" value="`, `"`)
	req := between(string(page), `name="req" value="`, `"`)
	resp, err = w.browser.PostForm(fx.base+"/login", url.Values{"csrf": {csrf}, "req": {req}, "username": {fx.email}, "password": {fx.password}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Location"), "/login/code") {
		return errors.New("the server asks for a one-time code at sign-in (run it with TORII_OTP=off)")
	}
	if resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("sign-in answered %d", resp.StatusCode)
	}
	return nil
}

func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}

// authcodeFlow is /oauth2/auth with a signed-in session, then the code
// redemption: one flow.
func (fx *benchFixture) authcodeFlow(ctx context.Context, w *worker) outcome {
	v := oauth2.GenerateVerifier()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fx.authorizeURL(v), nil)
	resp, err := w.browser.Do(req)
	if err != nil {
		return "transport error"
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || err != nil || loc.Query().Get("code") == "" {
		return outcome(fmt.Sprintf("authorize HTTP %d without a code", resp.StatusCode))
	}
	_, out := fx.post(ctx, w.client, "/oauth2/token", fx.prefix+"-web", url.Values{"grant_type": {"authorization_code"},
		"code": {loc.Query().Get("code")}, "redirect_uri": {fx.redirect}, "code_verifier": {v}})
	return out
}

// runScenario runs one scenario: workers loop until the duration is over.
func (a *app) runScenario(ctx context.Context, name string, o benchOptions, fx *benchFixture, c *http.Client, srv *benchServer) ScenarioResult {
	res := ScenarioResult{Name: name, Errors: map[string]int{}}
	var introspect []string
	if name == "introspect" {
		for range 200 {
			m, out := fx.post(ctx, c, "/oauth2/token", fx.prefix+"-cc", url.Values{"grant_type": {"client_credentials"}})
			if out != "" {
				res.Note = "cannot get tokens to introspect: " + string(out)
				return res
			}
			introspect = append(introspect, m["access_token"].(string))
		}
	}
	var next atomic.Int64
	sc := fx.scenario(name, c, introspect, &next)
	workers := make([]*worker, o.concurrency)
	for i := range workers {
		// Each worker has a connection of its own, read and written in
		// its goroutine (connTransport), so the load generator leaves the
		// CPU to the server it measures. An https target goes through
		// net/http's pool.
		var t http.RoundTripper = c.Transport
		if targetHost, plain := strings.CutPrefix(fx.base, "http://"); plain {
			ct := newConnTransport(targetHost, c.Timeout)
			defer ct.close()
			t = ct
		}
		timeout := c.Timeout
		if _, own := t.(*connTransport); own {
			timeout = 0 // the connection's deadline bounds each request, without a timer per request
		}
		w := &worker{client: &http.Client{Transport: t, Timeout: timeout, CheckRedirect: c.CheckRedirect}}
		if name == "authcode" {
			w.browser = &http.Client{Jar: newJar(), Transport: t, Timeout: timeout, CheckRedirect: c.CheckRedirect}
		}
		if sc.prepare != nil {
			if err := sc.prepare(ctx, w); err != nil {
				res.Note = err.Error()
				return res
			}
		}
		workers[i] = w
	}
	if name == "password" {
		res.HashMS = float64(account.HashCost().Microseconds()) / 1000
	}

	load := func(d time.Duration) (int64, *histogram, map[string]int) {
		hist := newHistogram()
		errs := map[string]int{}
		var mu sync.Mutex
		var total atomic.Int64
		runCtx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Go(func() {
				local := newHistogram()
				localErrs := map[string]int{}
				for runCtx.Err() == nil {
					start := time.Now()
					// The request itself is not cut off at the deadline: a
					// refresh answered but never read would be reused.
					out := sc.op(ctx, w)
					if out == "canceled" {
						break
					}
					if out != "" {
						localErrs[string(out)]++
						continue
					}
					local.record(time.Since(start))
					total.Add(1)
				}
				mu.Lock()
				hist.merge(local)
				for k, v := range localErrs {
					errs[k] += v
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		return total.Load(), hist, errs
	}
	if srv != nil {
		// The peak RSS reported is this scenario's own, warm-up included.
		resetPeakRSS(srv.proc.Pid)
	}
	if o.warmup > 0 {
		load(o.warmup)
	}
	var cpu0 float64
	if srv != nil {
		cpu0 = procCPU(srv.proc.Pid)
		res.RSSStartMiB = procStatus(srv.proc.Pid, "VmRSS")
		res.GoroutinesStart = goroutines(c, srv.url)
	}
	start := time.Now()
	n, hist, errs := load(o.duration)
	elapsed := time.Since(start)
	res.Requests = n
	res.RPS = float64(n) / elapsed.Seconds()
	res.P50MS, res.P90MS, res.P99MS = hist.quantileMS(0.50), hist.quantileMS(0.90), hist.quantileMS(0.99)
	res.Errors = errs
	if srv != nil {
		total := n
		for _, e := range errs {
			total += int64(e)
		}
		if total > 0 {
			res.CPUPerRequestMS = (procCPU(srv.proc.Pid) - cpu0) * 1000 / float64(total)
		}
		res.PeakRSSMiB = procStatus(srv.proc.Pid, "VmHWM")
		res.RSSEndMiB = procStatus(srv.proc.Pid, "VmRSS")
		res.GoroutinesEnd = goroutines(c, srv.url)
	}
	return res
}

// histogram records latencies in log-linear buckets (64 per power of two,
// about 1.5 % precision) in a fixed array: cheap enough not to slow the
// load it measures.
type histogram struct {
	counts [histBuckets]int64
	total  int64
}

const histBuckets = 64 * 48

func newHistogram() *histogram { return &histogram{} }

// bucketOf maps nanoseconds to a bucket: exact below 128, else the top 7
// bits of the value and its magnitude.
func bucketOf(d time.Duration) int {
	v := uint64(max(d.Nanoseconds(), 0))
	if v < 128 {
		return int(v)
	}
	e := bits.Len64(v) - 7
	return min(e*64+int(v>>e), histBuckets-1)
}

// bucketUpper is the largest value of bucket b, in nanoseconds.
func bucketUpper(b int) float64 {
	if b < 128 {
		return float64(b)
	}
	e := b/64 - 1
	m := b - e*64
	return float64((uint64(m)+1)<<e) - 1
}

func (h *histogram) record(d time.Duration) {
	h.counts[bucketOf(d)]++
	h.total++
}

func (h *histogram) merge(o *histogram) {
	for b, n := range o.counts {
		h.counts[b] += n
	}
	h.total += o.total
}

// quantileMS returns the q-quantile in milliseconds (the bucket's upper
// edge).
func (h *histogram) quantileMS(q float64) float64 {
	if h.total == 0 {
		return 0
	}
	want := int64(math.Ceil(q * float64(h.total)))
	var seen int64
	for b, n := range h.counts {
		seen += n
		if seen >= want {
			return bucketUpper(b) / 1e6
		}
	}
	return 0
}

func newJar() http.CookieJar {
	jar, _ := cookiejar.New(nil)
	return jar
}
