package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestConnTransport checks the load generator's transport: one connection
// carries every request of a worker, bodies of every framing are read, and
// a connection the server closes is replaced.
func TestConnTransport(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Auth", r.Header.Get("Authorization"))
			w.Write(b)
		case "/chunked":
			for range 3 {
				w.Write([]byte(strings.Repeat("x", 5000)))
				w.(http.Flusher).Flush()
			}
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		case "/big":
			w.Write([]byte(strings.Repeat("y", 200<<10)))
		}
	}))

	tr := newConnTransport(strings.TrimPrefix(srv.URL, "http://"), 5*time.Second)
	defer tr.close()
	c := &http.Client{Transport: tr}
	get := func(t *testing.T, method, path, body string) (string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.SetBasicAuth("client", "secret")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: read body: %v", method, path, err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: status %d", method, path, resp.StatusCode)
		}
		return string(b), resp.Header
	}

	tests := []struct {
		name, method, path, body string
		wantLen                  int
		wantConns                int32 // connections opened so far
	}{
		{"post with a body", "POST", "/echo", "grant_type=client_credentials", len("grant_type=client_credentials"), 1},
		{"keep-alive reuse", "POST", "/echo", "a=b", 3, 1},
		{"chunked answer", "GET", "/chunked", "", 15000, 1},
		{"same connection after chunks", "GET", "/echo", "", 0, 1},
		{"server closes", "GET", "/close", "", 3, 1},
		{"new connection after close", "GET", "/echo", "", 0, 2},
		{"body larger than the buffer", "GET", "/big", "", 200 << 10, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, h := get(t, tt.method, tt.path, tt.body)
			if len(body) != tt.wantLen {
				t.Errorf("%s %s: body of %d bytes, want %d", tt.method, tt.path, len(body), tt.wantLen)
			}
			if tt.path == "/echo" && h.Get("X-Auth") == "" {
				t.Errorf("%s %s: the Authorization header did not arrive", tt.method, tt.path)
			}
			if got := conns.Load(); got != tt.wantConns {
				t.Errorf("after %s %s: %d connections opened, want %d", tt.method, tt.path, got, tt.wantConns)
			}
		})
	}

	t.Run("idle connection closed by the server", func(t *testing.T) {
		srv.CloseClientConnections()
		time.Sleep(50 * time.Millisecond)
		before := conns.Load()
		if body, _ := get(t, "POST", "/echo", "retry"); body != "retry" {
			t.Errorf("after the server closed the connection: body %q, want %q", body, "retry")
		}
		if got := conns.Load(); got != before+1 {
			t.Errorf("%d new connections, want 1", got-before)
		}
	})

	t.Run("unread body", func(t *testing.T) {
		resp, err := c.Get(srv.URL + "/big")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // 200 KiB left unread: more than Close drains
		before := conns.Load()
		get(t, "GET", "/echo", "")
		if got := conns.Load(); got != before+1 {
			t.Errorf("%d new connections after an unread body, want 1", got-before)
		}
	})

	t.Run("another host", func(t *testing.T) {
		if _, err := c.Get("http://example.com/"); err == nil {
			t.Error("a request to another host went through")
		}
	})
}

// TestConnTransportDo checks the lean request path the scenarios use.
func TestConnTransportDo(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/form":
			if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.Header.Get("Authorization") != "Basic abc" {
				http.Error(w, "bad headers", http.StatusBadRequest)
				return
			}
			w.Write(b)
		case "/chunked":
			w.Write([]byte("first-"))
			w.(http.Flusher).Flush()
			w.Write([]byte("second"))
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		case "/missing":
			http.Error(w, "nothing here", http.StatusNotFound)
		}
	}))
	tr := newConnTransport(strings.TrimPrefix(srv.URL, "http://"), 5*time.Second)
	defer tr.close()

	tests := []struct {
		name, method, path, auth, body string
		wantStatus                     int
		wantBody                       string
		wantConns                      int32
	}{
		{"form post", "POST", "/form", "Basic abc", "grant_type=client_credentials", 200, "grant_type=client_credentials", 1},
		{"chunked", "GET", "/chunked", "", "", 200, "first-second", 1},
		{"error status", "GET", "/missing", "", "", 404, "nothing here\n", 1},
		{"connection close", "GET", "/close", "", "", 200, "bye", 1},
		{"reconnects", "POST", "/form", "Basic abc", "a=b", 200, "a=b", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, err := tr.do(tt.method, tt.path, tt.auth, tt.body)
			if err != nil {
				t.Fatalf("do(%s %s): %v", tt.method, tt.path, err)
			}
			if status != tt.wantStatus || string(body) != tt.wantBody {
				t.Errorf("do(%s %s) = %d %q, want %d %q", tt.method, tt.path, status, body, tt.wantStatus, tt.wantBody)
			}
			if got := conns.Load(); got != tt.wantConns {
				t.Errorf("%d connections opened, want %d", got, tt.wantConns)
			}
		})
	}
	t.Run("server closed the idle connection", func(t *testing.T) {
		srv.CloseClientConnections()
		time.Sleep(50 * time.Millisecond)
		status, body, err := tr.do("POST", "/form", "Basic abc", "again")
		if err != nil || status != 200 || string(body) != "again" {
			t.Errorf("do after the server closed = %d %q %v, want 200 \"again\"", status, body, err)
		}
	})
}

// countingServer starts a test server for h and counts the connections
// made to it.
func countingServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int32) {
	conns := new(atomic.Int32)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, conns
}
