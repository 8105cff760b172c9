package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA issues the test's server certificates; clients trust it.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Torii test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue writes a new key and a certificate for 127.0.0.1 with the given
// serial number to certFile and keyFile, and moves their modification time
// on by a second per serial, so that a rewrite is seen on any file system.
func (ca *testCA) issue(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), serial)
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), serial)
}

func writeFile(t *testing.T, name string, data []byte, serial int64) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	mod := time.Now().Add(time.Duration(serial) * time.Second)
	if err := os.Chtimes(name, mod, mod); err != nil {
		t.Fatal(err)
	}
}

// servedSerial is the serial number of the certificate addr presents in a
// new handshake.
func servedSerial(t *testing.T, addr string, roots *x509.CertPool) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestServeTLS runs serve with TORII_TLS_CERT and TORII_TLS_KEY: both
// listeners speak HTTPS (TLS 1.2 at least), the issuer derived from the
// address is https, the pages' cookies are __Host- and Secure, and a
// certificate renewed in place is served without a restart, while a broken
// rewrite leaves the last good one serving.
func TestServeTLS(t *testing.T) {
	db := cliEnv(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca := newTestCA(t)
	ca.issue(t, certFile, keyFile, 1)

	addr, adminAddr := freeAddr(t), freeAddr(t)
	a := &app{stdout: io.Discard, stderr: io.Discard}
	a.load = func() (Config, error) {
		s := settings()
		for _, x := range s {
			x.value = x.def
			switch x.env {
			case "TORII_ADDR":
				x.value = addr
			case "TORII_ADMIN_ADDR":
				x.value = adminAddr
			case "TORII_DATABASE_URL":
				x.value = db
			case "TORII_TLS_CERT":
				x.value = certFile
			case "TORII_TLS_KEY":
				x.value = keyFile
			}
		}
		return loadConfig(s)
	}
	var err error
	if a.cfg, err = a.load(); err != nil {
		t.Fatal(err)
	}
	if want := "https://" + addr; a.cfg.Issuer != want {
		t.Errorf("issuer with TLS and no TORII_ISSUER = %q, want %q", a.cfg.Issuer, want)
	}
	logs := &syncBuffer{}
	a.log = newLogger(logs, a.cfg)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve() = %v", err)
		}
	})

	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}},
		// Keep the redirects' cookies visible.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(client.CloseIdleConnections)
	base := "https://" + addr
	for i := 0; ; i++ {
		resp, err := client.Get(base + "/readyz")
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if i > 200 {
			t.Fatalf("server never became ready over https: %v\n%s", err, logs)
		}
		time.Sleep(25 * time.Millisecond)
	}

	t.Run("discovery", func(t *testing.T) {
		resp, err := client.Get(base + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc struct {
			Issuer        string `json:"issuer"`
			TokenEndpoint string `json:"token_endpoint"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 {
			t.Fatalf("discovery = %d, %v", resp.StatusCode, err)
		}
		if doc.Issuer != base || !strings.HasPrefix(doc.TokenEndpoint, base+"/") {
			t.Errorf("discovery issuer %q, token endpoint %q; want them under %s", doc.Issuer, doc.TokenEndpoint, base)
		}
		if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
			t.Errorf("discovery was not served over TLS 1.2 or later: %+v", resp.TLS)
		}
		if hsts := resp.Header.Get("Strict-Transport-Security"); hsts == "" {
			t.Error("no Strict-Transport-Security over https")
		}
	})

	t.Run("cookies", func(t *testing.T) {
		for _, path := range []string{"/login", "/forgot"} {
			resp, err := client.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cookies := resp.Cookies()
			if len(cookies) == 0 {
				t.Errorf("GET %s (%d) set no cookie", path, resp.StatusCode)
			}
			for _, c := range cookies {
				if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || c.Path != "/" || c.Domain != "" {
					t.Errorf("GET %s set cookie %s (Secure %v, Path %q, Domain %q); want __Host-, Secure, Path=/, no Domain", path, c.Name, c.Secure, c.Path, c.Domain)
				}
			}
		}
	})

	t.Run("admin listener", func(t *testing.T) {
		resp, err := client.Get("https://" + adminAddr + "/healthz")
		if err != nil {
			t.Fatalf("admin listener over https: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("admin /healthz over https = %d", resp.StatusCode)
		}
	})

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err == nil {
			conn.Close()
			t.Error("a TLS 1.1 handshake succeeded")
		}
	})

	t.Run("renewed in place", func(t *testing.T) {
		waitSerial := func(want int64) {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for got := servedSerial(t, addr, ca.pool); got != want; got = servedSerial(t, addr, ca.pool) {
				if time.Now().After(deadline) {
					t.Fatalf("served certificate serial %d 10s after the files changed, want %d", got, want)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		if got := servedSerial(t, addr, ca.pool); got != 1 {
			t.Fatalf("served certificate serial %d, want 1", got)
		}
		ca.issue(t, certFile, keyFile, 2)
		waitSerial(2)
		if got := servedSerial(t, adminAddr, ca.pool); got != 2 {
			t.Errorf("admin listener serves certificate %d, want the renewed 2", got)
		}

		// A broken rewrite: the last good certificate keeps serving.
		writeFile(t, certFile, []byte("not a certificate"), 3)
		time.Sleep(2*certCheckInterval + 100*time.Millisecond)
		if got := servedSerial(t, addr, ca.pool); got != 2 {
			t.Errorf("after a broken rewrite the server presents %d, want the last good 2", got)
		}
		if !strings.Contains(logs.String(), "serving the last good certificate") {
			t.Errorf("no warning about the broken certificate in the log:\n%s", logs)
		}
		// Repaired: the next pair is served.
		ca.issue(t, certFile, keyFile, 4)
		waitSerial(4)
	})
}

// TestTLSConfig: TORII_TLS_CERT and TORII_TLS_KEY must name a readable,
// matching pair, and the issuer follows them to https; a plain http issuer
// with TLS, or a pair that does not load, stops Torii with status 2.
func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.issue(t, certFile, keyFile, 1)
	otherCert, otherKey := filepath.Join(dir, "other-cert.pem"), filepath.Join(dir, "other-key.pem")
	ca.issue(t, otherCert, otherKey, 2)
	garbage := filepath.Join(dir, "garbage.pem")
	writeFile(t, garbage, []byte("not PEM"), 0)

	errs := []struct {
		name     string
		env      map[string]string
		wantName string
	}{
		{"key of another certificate", map[string]string{"TORII_TLS_CERT": certFile, "TORII_TLS_KEY": otherKey}, "TORII_TLS_CERT"},
		{"garbage certificate", map[string]string{"TORII_TLS_CERT": garbage, "TORII_TLS_KEY": keyFile}, "TORII_TLS_CERT"},
		{"plain http issuer", map[string]string{"TORII_TLS_CERT": certFile, "TORII_TLS_KEY": keyFile, "TORII_ISSUER": "http://127.0.0.1:8080"}, "TORII_ISSUER"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			cliEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, stderr := torii(t, "migrate")
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != 2 || len(lines) != 1 || !strings.Contains(lines[0], tc.wantName) {
				t.Errorf("torii migrate = %d, stderr %q; want 2 and one line naming %s", code, stderr, tc.wantName)
			}
		})
	}

	t.Run("issuer", func(t *testing.T) {
		for _, tc := range []struct{ issuer, want string }{
			{"", "https://127.0.0.1:8443"},
			{"https://id.example.com", "https://id.example.com"},
		} {
			s := settings()
			for _, x := range s {
				x.value = x.def
				switch x.env {
				case "TORII_ADDR":
					x.value = "127.0.0.1:8443"
				case "TORII_ISSUER":
					x.value = tc.issuer
				case "TORII_TLS_CERT":
					x.value = certFile
				case "TORII_TLS_KEY":
					x.value = keyFile
				}
			}
			cfg, err := loadConfig(s)
			if err != nil || cfg.Issuer != tc.want || cfg.TLSCert != certFile || cfg.TLSKey != keyFile {
				t.Errorf("TORII_ISSUER=%q with TLS: issuer %q, cert %q, key %q, %v; want issuer %q", tc.issuer, cfg.Issuer, cfg.TLSCert, cfg.TLSKey, err, tc.want)
			}
		}
	})
}
