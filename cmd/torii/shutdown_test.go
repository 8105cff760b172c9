package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeShutdownDelay runs serve under load on keep-alive connections
// and stops it (SIGTERM) with TORII_SHUTDOWN_DELAY=500ms: /readyz turns 503
// while both listeners go on serving, every answer from then on closes its
// connection, and no request started before the clients saw the 503 (plus
// a margin shorter than the delay, as a load balancer would take to stop
// sending) fails in transport or with a 5xx.
func TestServeShutdownDelay(t *testing.T) {
	const delay = 500 * time.Millisecond
	const margin = 200 * time.Millisecond // clients stop this long after seeing /readyz 503
	db := cliEnv(t)
	secret := strings.Repeat("s", 40)
	if code, _, stderr := torii(t, "clients", "create", "--id", "svc", "--secret", secret,
		"--grant-types", "client_credentials", "--scope", ""); code != 0 {
		t.Fatalf("clients create = %d: %s", code, stderr)
	}

	addr, adminAddr := freeAddr(t), freeAddr(t)
	all := settings()
	for _, s := range all {
		s.value = s.def
	}
	cfg, err := loadConfig(all)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr, cfg.Issuer, cfg.DatabaseURL, cfg.AdminAddr = addr, "http://"+addr, Secret(db), adminAddr
	cfg.ShutdownDelay = delay
	logs := &syncBuffer{}
	a := &app{stdout: io.Discard, stderr: io.Discard, cfg: cfg, log: newLogger(logs, cfg)}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx) }()

	base, admin := "http://"+addr, "http://"+adminAddr
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i > 200 {
			t.Fatalf("server never became ready: %v", err)
		}
		time.Sleep(25 * time.Millisecond)
	}

	// The monitor plays the load balancer's health check.
	notReady := make(chan struct{})
	var notReadyAt time.Time
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			resp, err := http.Get(base + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusServiceUnavailable {
					notReadyAt = time.Now()
					close(notReady)
					return
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	type tally struct {
		requests, duringDelay, closedDuringDelay int
		failures                                 []string
	}
	var mu sync.Mutex
	var total tally
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}, Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()
			var mine tally
			defer func() {
				mu.Lock()
				defer mu.Unlock()
				total.requests += mine.requests
				total.duringDelay += mine.duringDelay
				total.closedDuringDelay += mine.closedDuringDelay
				total.failures = append(total.failures, mine.failures...)
			}()
			for i := w; ; i++ {
				afterNotReady := false
				select {
				case <-notReady:
					if time.Since(notReadyAt) > margin {
						return
					}
					afterNotReady = true
				default:
				}
				var req *http.Request
				switch i % 3 {
				case 0:
					req, _ = http.NewRequest("GET", base+"/healthz", nil)
				case 1:
					req, _ = http.NewRequest("POST", base+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.SetBasicAuth("svc", secret)
				case 2:
					req, _ = http.NewRequest("GET", admin+"/healthz", nil)
				}
				mine.requests++
				resp, err := client.Do(req)
				if err != nil {
					mine.failures = append(mine.failures, fmt.Sprintf("%s %s: %v", req.Method, req.URL, err))
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					mine.failures = append(mine.failures, fmt.Sprintf("%s %s = %d", req.Method, req.URL, resp.StatusCode))
				}
				if afterNotReady {
					mine.duringDelay++
					if resp.Close {
						mine.closedDuringDelay++
					}
				}
			}
		})
	}

	time.Sleep(300 * time.Millisecond) // let the load run on kept-alive connections
	stopped := time.Now()
	stop() // SIGTERM
	wg.Wait()
	select {
	case <-notReady:
	default:
		t.Fatal("/readyz never answered 503 after the signal")
	}
	if err := <-done; err != nil {
		t.Errorf("serve returned %v", err)
	}
	if took := time.Since(stopped); took < delay {
		t.Errorf("serve returned %v after the signal, want at least the delay (%v)", took, delay)
	}

	if len(total.failures) > 0 {
		t.Errorf("%d of %d requests failed across the shutdown, want none; first: %q", len(total.failures), total.requests, total.failures[:min(5, len(total.failures))])
	}
	if total.duringDelay == 0 {
		t.Errorf("no request was served after /readyz turned 503 (of %d)", total.requests)
	}
	if total.closedDuringDelay != total.duringDelay {
		t.Errorf("%d of %d answers after /readyz turned 503 closed their connection, want all", total.closedDuringDelay, total.duringDelay)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the public listener still accepts connections after shutdown")
	}
	if _, err := http.Get(admin + "/healthz"); err == nil {
		t.Error("the admin listener still accepts connections after shutdown")
	}
	if !strings.Contains(logs.String(), "not ready, still serving") || !strings.Contains(logs.String(), "stopped") {
		t.Errorf("no shutdown log lines:\n%s", logs)
	}
	t.Logf("%d requests, %d of them after /readyz turned 503", total.requests, total.duringDelay)
}
