package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/torii-idp/torii/login/api"
	"github.com/torii-idp/torii/login/iplimit"
	"github.com/torii-idp/torii/storage"
)

// maxBodyBytes bounds every request body; larger ones get 413.
const maxBodyBytes = 1 << 20

type requestIDKey struct{}

// requestID gives every request an ID, echoed in X-Request-Id and added to
// log lines through the context.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := rand.Text()
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// auditMeta puts the request's client IP (behind trusted proxies), user
// agent and request ID in the context, for the audit events the request
// records (storage.RecordAudit). It runs after requestID.
func auditMeta(proxies iplimit.Proxies) mux.MiddlewareFunc {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m := storage.AuditMeta{UserAgent: r.UserAgent()}
			if ip := proxies.ClientIP(r); ip.IsValid() {
				m.IP = ip.String()
			}
			m.RequestID, _ = r.Context().Value(requestIDKey{}).(string)
			next.ServeHTTP(w, r.WithContext(storage.WithAuditMeta(r.Context(), m)))
		})
	}
}

// contextHandler adds the request ID to every log record made with a
// context.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		rec.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, rec)
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(as)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}

// statusWriter records the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// metrics are the HTTP server's Prometheus metrics.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// limited counts 429 answers (per-IP, per-account and token failure
	// limits) by route template.
	limited *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "torii_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "torii_http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "torii_rate_limited_total",
			Help: "Requests refused with 429 by a rate or failure limit, by route.",
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration, m.limited)
	return m
}

// observe logs and measures each request. Routes are labelled by their
// template, never by the raw path (no user data in labels); query strings
// are never logged.
func observe(log *slog.Logger, m *metrics) mux.MiddlewareFunc {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			route := "unmatched"
			if cur := mux.CurrentRoute(r); cur != nil {
				if tpl, err := cur.GetPathTemplate(); err == nil {
					route = tpl
				}
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			d := time.Since(start)
			m.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
			if sw.status == http.StatusTooManyRequests {
				m.limited.WithLabelValues(route).Inc()
			}
			m.duration.WithLabelValues(route).Observe(d.Seconds())
			log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", sw.status),
				slog.Int("bytes", sw.bytes), slog.Duration("duration", d))
		})
	}
}

// recoverPanics turns a panic into a 500 and a log line, never a dropped
// connection with a stack trace to the client.
func recoverPanics(log *slog.Logger) mux.MiddlewareFunc {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.ErrorContext(r.Context(), "panic serving request", "panic", v, "path", r.URL.Path, "stack", string(debug.Stack()))
					if strings.HasPrefix(r.URL.Path, api.Prefix+"/") {
						api.Internal(w, r)
						return
					}
					http.Error(w, "internal server error", http.StatusInternalServerError)
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// limitBody refuses bodies over maxBodyBytes with 413, whether announced by
// Content-Length or discovered while reading a chunked body. Bodies within
// the limit are buffered, so handlers never see a truncated form. The exempt
// paths (the avatar upload) enforce a limit of their own, with a page that
// says so next to the form field.
func limitBody(exempt ...string) mux.MiddlewareFunc {
	return func(next http.Handler) http.Handler {
		return limitBodyHandler(next, exempt)
	}
}

func limitBodyHandler(next http.Handler, exempt []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.Method == http.MethodGet || r.Method == http.MethodHead ||
			slices.ContainsFunc(exempt, func(pattern string) bool { return pathMatches(pattern, r.URL.Path) }) {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > maxBodyBytes {
			tooLarge(w, r)
			return
		}
		buf, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			tooLarge(w, r)
			return
		} else if err != nil {
			if strings.HasPrefix(r.URL.Path, api.Prefix+"/") {
				api.Unreadable(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"invalid_request","error_description":"The request body could not be read."}` + "\n"))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(buf))
		next.ServeHTTP(w, r)
	})
}

// pathMatches reports whether path fits pattern, a path whose "{name}"
// segments match any one segment.
func pathMatches(pattern, path string) bool {
	ps, ss := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(ss) {
		return false
	}
	for i, p := range ps {
		if p != ss[i] && !(strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") && ss[i] != "") {
			return false
		}
	}
	return true
}

func tooLarge(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close")
	if strings.HasPrefix(r.URL.Path, api.Prefix+"/") {
		api.TooLarge(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	io.WriteString(w, `{"error":"invalid_request","error_description":"The request body is larger than 1 MiB."}`+"\n")
}

// baseHeaders sets the headers every response carries.
func baseHeaders(https bool) mux.MiddlewareFunc {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			if https {
				h.Set("Strict-Transport-Security", "max-age=31536000")
			}
			next.ServeHTTP(w, r)
		})
	}
}
