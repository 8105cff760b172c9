package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
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
	buf  []byte    // the body do returned last
}

func newConnTransport(addr string, timeout time.Duration) *connTransport {
	return &connTransport{addr: addr, timeout: timeout}
}

// RoundTrip implements http.RoundTripper.
func (t *connTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" || req.URL.Host != t.addr {
		return nil, fmt.Errorf("bench: this transport reaches only http://%s, not %s://%s", t.addr, req.URL.Scheme, req.URL.Host)
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
	var resp *http.Response
	err := t.retrying(func() (err error) {
		resp, err = t.exchange(req, body)
		return err
	})
	return resp, err
}

// retrying runs one exchange on the connection, after dropping a
// connection whose previous answer was not read to the end, and once more
// on a new connection when a reused one fails (the server may have closed
// it while idle). A failed connection is closed.
func (t *connTransport) retrying(exchange func() error) error {
	if t.last != nil {
		if !t.last.done {
			t.close()
		}
		t.last = nil
	}
	fresh := t.conn == nil
	err := exchange()
	if err != nil && !fresh {
		t.close()
		err = exchange()
	}
	if err != nil {
		t.close()
	}
	return err
}

// startRequest connects if needed, sets the request's deadline and writes
// the request line and Host header.
func (t *connTransport) startRequest(method, uri string) error {
	if t.conn == nil {
		c, err := net.DialTimeout("tcp", t.addr, t.timeout)
		if err != nil {
			return err
		}
		t.conn, t.br, t.bw = c, bufio.NewReaderSize(c, 16<<10), bufio.NewWriterSize(c, 8<<10)
	}
	if t.timeout > 0 {
		t.conn.SetDeadline(time.Now().Add(t.timeout))
	}
	w := t.bw
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(uri)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(t.addr)
	w.WriteString("\r\n")
	return nil
}

func (t *connTransport) exchange(req *http.Request, body []byte) (*http.Response, error) {
	if err := t.startRequest(req.Method, req.URL.RequestURI()); err != nil {
		return nil, err
	}
	w := t.bw
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

// do sends one request (method, path, an Authorization value or "", and a
// form body for POST) and reads the answer without net/http: the status
// and the body, which stays valid until the next call. It is the lean
// path of the scenarios' requests; the answer's headers are not kept.
func (t *connTransport) do(method, path, auth, body string) (status int, answer []byte, err error) {
	err = t.retrying(func() (err error) {
		status, answer, err = t.doOnce(method, path, auth, body)
		return err
	})
	return status, answer, err
}

func (t *connTransport) doOnce(method, path, auth, body string) (int, []byte, error) {
	if err := t.startRequest(method, path); err != nil {
		return 0, nil, err
	}
	w := t.bw
	w.WriteString("User-Agent: torii-bench\r\n")
	if auth != "" {
		w.WriteString("Authorization: ")
		w.WriteString(auth)
		w.WriteString("\r\n")
	}
	if method == http.MethodPost {
		w.WriteString("Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ")
		w.WriteString(strconv.Itoa(len(body)))
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	w.WriteString(body)
	if err := w.Flush(); err != nil {
		return 0, nil, err
	}
	return t.readAnswer()
}

// readAnswer reads a status line, the headers it needs (Content-Length,
// Transfer-Encoding, Connection) and the body.
func (t *connTransport) readAnswer() (int, []byte, error) {
	line, err := t.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, fmt.Errorf("bench: malformed status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, fmt.Errorf("bench: malformed status line %q", line)
	}
	length, chunked, closeAfter := -1, false, false
	for {
		line, err := t.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, nil, fmt.Errorf("bench: malformed header %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, nil, fmt.Errorf("bench: bad Content-Length %q", value)
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "Connection"):
			closeAfter = asciiEqualFold(value, "close")
		}
	}
	t.buf = t.buf[:0]
	switch {
	case chunked:
		for {
			line, err := t.br.ReadSlice('\n')
			if err != nil {
				return 0, nil, err
			}
			size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
			n, err := strconv.ParseInt(string(size), 16, 32)
			if err != nil || n < 0 {
				return 0, nil, fmt.Errorf("bench: bad chunk size %q", size)
			}
			if n == 0 {
				// Trailers, then the blank line.
				for {
					l, err := t.br.ReadSlice('\n')
					if err != nil {
						return 0, nil, err
					}
					if len(bytes.TrimRight(l, "\r\n")) == 0 {
						break
					}
				}
				break
			}
			if t.buf, err = readN(t.br, t.buf, int(n)+2); err != nil {
				return 0, nil, err
			}
			t.buf = t.buf[:len(t.buf)-2] // the chunk's CRLF
		}
	case length >= 0:
		if t.buf, err = readN(t.br, t.buf, length); err != nil {
			return 0, nil, err
		}
	default:
		// Neither: the body runs to the end of the connection.
		b, err := io.ReadAll(t.br)
		if err != nil {
			return 0, nil, err
		}
		t.buf = append(t.buf, b...)
		closeAfter = true
	}
	if closeAfter {
		t.close()
	}
	return status, t.buf, nil
}

// readN appends n bytes from r to buf.
func readN(r io.Reader, buf []byte, n int) ([]byte, error) {
	start := len(buf)
	buf = slices.Grow(buf, n)[:start+n]
	if _, err := io.ReadFull(r, buf[start:]); err != nil {
		return nil, err
	}
	return buf, nil
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i]|0x20, s[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}
