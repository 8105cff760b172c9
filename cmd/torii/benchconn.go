package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// connTransport is the load generator's http.RoundTripper: one keep-alive
// connection, owned by one worker and used by it alone, with each request
// written and its answer read in the caller's goroutine. net/http's
// Transport hands every request to two goroutines of its connection and
// keeps a pool; on a two-core machine that costs the server under test as
// much CPU as the cheapest endpoints need themselves. It speaks plain
// HTTP/1.1 to one host only.
type connTransport struct {
	addr    string // host:port
	timeout time.Duration

	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	last *connBody // the previous answer's body, drained before reuse
}

func newConnTransport(addr string, timeout time.Duration) *connTransport {
	return &connTransport{addr: addr, timeout: timeout}
}

// RoundTrip implements http.RoundTripper.
func (t *connTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" || req.URL.Host != t.addr {
		return nil, fmt.Errorf("bench: this transport reaches only http://%s, not %s://%s", t.addr, req.URL.Scheme, req.URL.Host)
	}
	if t.last != nil {
		// An answer whose body was not read to the end leaves the
		// connection unusable.
		if !t.last.done {
			t.close()
		}
		t.last = nil
	}
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	fresh := t.conn == nil
	resp, err := t.exchange(req, body)
	if err != nil && !fresh {
		// The server may have closed an idle connection: one new try.
		t.close()
		resp, err = t.exchange(req, body)
	}
	if err != nil {
		t.close()
		return nil, err
	}
	return resp, nil
}

func (t *connTransport) exchange(req *http.Request, body []byte) (*http.Response, error) {
	if t.conn == nil {
		c, err := net.DialTimeout("tcp", t.addr, t.timeout)
		if err != nil {
			return nil, err
		}
		t.conn, t.br, t.bw = c, bufio.NewReaderSize(c, 16<<10), bufio.NewWriterSize(c, 8<<10)
	}
	if t.timeout > 0 {
		t.conn.SetDeadline(time.Now().Add(t.timeout))
	}
	w := t.bw
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(req.URL.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(t.addr)
	w.WriteString("\r\n")
	for k, vs := range req.Header {
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	if body != nil || req.Method == http.MethodPost {
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.Itoa(len(body)))
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	w.Write(body)
	if err := w.Flush(); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(t.br, req)
	if err != nil {
		return nil, err
	}
	b := &connBody{r: resp.Body, t: t, closeAfter: resp.Close}
	resp.Body = b
	t.last = b
	return resp, nil
}

func (t *connTransport) close() {
	if t.conn != nil {
		t.conn.Close()
		t.conn = nil
	}
}

// CloseIdleConnections closes the connection; http.Client calls it.
func (t *connTransport) CloseIdleConnections() { t.close() }

// connBody is an answer's body on a connTransport's connection.
type connBody struct {
	r          io.ReadCloser
	t          *connTransport
	done       bool // read to the end: the connection may carry the next request
	closeAfter bool // the server said Connection: close
}

func (b *connBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if errors.Is(err, io.EOF) {
		b.done = true
	}
	return n, err
}

func (b *connBody) Close() error {
	if !b.done {
		// Drain a short remainder to keep the connection.
		if _, err := io.Copy(io.Discard, io.LimitReader(b.r, 64<<10)); err == nil {
			var one [1]byte
			if _, err := b.r.Read(one[:]); errors.Is(err, io.EOF) {
				b.done = true
			}
		}
	}
	if b.closeAfter {
		b.done = false
	}
	return nil
}
