package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// certCheckInterval is how often the certificate files are looked at (a
// stat of each) for a certificate renewed in place.
const certCheckInterval = time.Second

// loadCertificate reads a PEM certificate (chain) and its private key.
func loadCertificate(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &cert, nil
}

// certReloader serves a certificate from files and re-reads them when
// their modification time or size changes, so that a certificate renewed
// in place is served without a restart. A pair that fails to load (a
// renewal half written, a key that does not match) is logged and the last
// good one kept.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu        sync.Mutex
	cert      *tls.Certificate
	stamp     fileStamp // of the pair last tried, good or bad
	checkedAt time.Time
}

// fileStamp identifies a version of the two files.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// newCertReloader loads the pair once; it fails when that load does.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
	stamp, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := loadCertificate(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	r.cert, r.stamp, r.checkedAt = cert, stamp, r.now()
	return r, nil
}

func (r *certReloader) stat() (fileStamp, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("TLS certificate: %w", err)
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("TLS key: %w", err)
	}
	return fileStamp{certMod: c.ModTime(), keyMod: k.ModTime(), certSize: c.Size(), keySize: k.Size()}, nil
}

// GetCertificate implements tls.Config.GetCertificate: the current pair,
// re-read first when the files changed (looked at once per
// certCheckInterval at most).
func (r *certReloader) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.checkedAt) < certCheckInterval {
		return r.cert, nil
	}
	r.checkedAt = now
	ctx := context.Background()
	if hello != nil && hello.Context() != nil {
		ctx = hello.Context()
	}
	stamp, err := r.stat()
	if err != nil {
		if r.stamp != (fileStamp{}) {
			r.log.WarnContext(ctx, "TLS certificate files unreadable: serving the last good certificate", "err", err)
		}
		r.stamp = fileStamp{}
		return r.cert, nil
	}
	if stamp == r.stamp {
		return r.cert, nil
	}
	r.stamp = stamp
	cert, err := loadCertificate(r.certFile, r.keyFile)
	if err != nil {
		r.log.WarnContext(ctx, "TLS certificate changed but does not load: serving the last good certificate", "err", err)
		return r.cert, nil
	}
	r.cert = cert
	if cert.Leaf != nil {
		r.log.InfoContext(ctx, "TLS certificate reloaded", "cert", r.certFile, "not_after", cert.Leaf.NotAfter)
	}
	return r.cert, nil
}

// tlsConfig is the listeners' TLS configuration: TLS 1.2 at least, the
// certificate from r.
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
}

// serveOn serves srv on ln: HTTPS when srv has a TLS configuration, plain
// HTTP otherwise.
func serveOn(srv *http.Server, ln net.Listener) error {
	if srv.TLSConfig != nil {
		return srv.ServeTLS(ln, "", "")
	}
	return srv.Serve(ln)
}
