package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/torii-idp/torii/login"
	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/login/api"
	"github.com/torii-idp/torii/login/iplimit"
	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
)

// server is a wired Torii: the store, the domain services and the HTTP
// handler. serve and the end-to-end tests build it the same way.
type server struct {
	cfg      Config
	log      *slog.Logger
	store    *storage.Store
	accounts *account.Service
	provider *provider.Provider
	outbox   *notify.Outbox
	handler  http.Handler
	// router is handler before any wrapping: tests walk its routes.
	router *mux.Router
	// adminHandler serves the admin API's listener, and adminRouter is it
	// unwrapped; nil when the admin API is off.
	adminHandler http.Handler
	adminRouter  *mux.Router
	// metricsHandler serves /metrics: on the public router, or alone on
	// TORII_METRICS_ADDR's listener.
	metricsHandler http.Handler
	ready          atomic.Bool
}

// serverOptions holds what tests may change; serve uses the zero value.
type serverOptions struct {
	// Keys overrides the signing-key settings.
	Keys provider.KeysConfig
	// Registry receives the metrics; nil means a fresh registry.
	Registry *prometheus.Registry
	// SMTPRootCAs trusts a test mail server's certificate.
	SMTPRootCAs *x509.CertPool
}

// newServer opens the database, applies pending migrations, and wires the
// HTTP handler.
func newServer(ctx context.Context, cfg Config, log *slog.Logger, opts serverOptions) (*server, error) {
	store, err := storage.Open(ctx, cfg.DatabaseURL.Reveal(), storage.Options{AuditLog: log})
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			store.Close()
		}
	}()
	applied, err := migrate(ctx, store, log)
	if err != nil {
		return nil, err
	}
	if len(applied) > 0 {
		log.InfoContext(ctx, "applied database migrations", "migrations", applied)
	}

	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	tel := newTelemetry(reg, store, log)

	outbox, err := notify.New(store, notify.Config{
		SMTPURL: cfg.SMTPURL.Reveal(), From: cfg.MailFrom, SMSURL: cfg.SMSURL.Reveal(),
		TwilioBaseURL: cfg.TwilioURL, RootCAs: opts.SMTPRootCAs, Observe: tel.Delivered,
	}, log)
	if err != nil {
		return nil, err
	}
	accounts := account.New(store, account.Config{
		Notifier:           outbox,
		Issuer:             cfg.Issuer,
		LockoutThreshold:   cfg.LockoutThreshold,
		OTPLifetime:        cfg.OTPTTL,
		RememberLifetime:   cfg.RememberDevice,
		ResendInterval:     resendInterval(cfg.OTPResendInterval),
		ResendWindow:       cfg.OTPResendLimit.Per,
		ResendMax:          cfg.OTPResendLimit.N,
		RequireComposition: cfg.PasswordComposition,
		DefaultLanguage:    cfg.DefaultLanguage,
	})
	// Per-IP budgets: in the database every node shares on PostgreSQL, in
	// memory on SQLite (one node).
	var limits iplimit.Shared
	tokenFailures := iplimit.NewFailures(iplimit.Limit(cfg.TokenFailureLimit), cfg.TrustedProxies, nil)
	if store.Dialect() == storage.Postgres {
		limits = store
		tokenFailures = iplimit.NewSharedFailures("token.failures", iplimit.Limit(cfg.TokenFailureLimit), cfg.TrustedProxies, store, nil)
	}
	fed, err := newFederation(ctx, cfg, store)
	if err != nil {
		return nil, err
	}
	loginCfg := login.Config{
		Issuer:          cfg.Issuer,
		OTP:             cfg.OTP,
		IPRateLimit:     login.Limit(cfg.IPRateLimit),
		IPFailureLimit:  login.Limit(cfg.IPFailureLimit),
		TrustedProxies:  cfg.TrustedProxies,
		FederatedOTP:    cfg.Federation.OTP,
		SiteName:        cfg.SiteName,
		Logo:            cfg.Logo,
		LogoType:        cfg.LogoType,
		ThemeCSS:        cfg.ThemeCSS,
		DefaultLanguage: cfg.DefaultLanguage,
	}
	loginHandler, err := login.New(ctx, loginCfg, login.Deps{Store: store, Accounts: accounts, Logger: log, SignIns: tel.SignIn, Federation: fed, Limits: limits})
	if err != nil {
		return nil, err
	}
	prov, err := provider.New(ctx, provider.Config{
		Issuer:               cfg.Issuer,
		Brand:                loginCfg.Brand(),
		DefaultLanguage:      cfg.DefaultLanguage,
		AccessTokenLifetime:  cfg.AccessTokenTTL,
		RefreshTokenLifetime: cfg.RefreshTokenTTL,
		IDTokenLifetime:      cfg.IDTokenTTL,
		CodeLifetime:         cfg.CodeTTL,
		SecondFactor:         cfg.OTP != login.OTPOff,
		CodeStepLifetime:     cfg.OTPTTL,
		Keys:                 opts.Keys,
	}, provider.Deps{
		Store:             store,
		Browser:           loginHandler,
		Accounts:          observedAccounts{accounts, tel},
		IsCredentialError: func(err error) bool { return errors.Is(err, account.ErrInvalidCredentials) },
		TokenFailures:     tokenFailures,
		CodeStep:          codeStep{accounts, tel},
		Observer:          tel,
		Logger:            log,
	})
	if err != nil {
		return nil, err
	}

	cursorKey, err := store.Secret(ctx, "admin-cursor")
	if err != nil {
		return nil, err
	}
	apiHandler, err := api.New(api.Config{
		Issuer:         cfg.Issuer,
		IPRateLimit:    iplimit.Limit(cfg.IPRateLimit),
		IPFailureLimit: iplimit.Limit(cfg.IPFailureLimit),
		TrustedProxies: cfg.TrustedProxies,
		CursorKey:      cursorKey,
	}, api.Deps{Accounts: accounts, Tokens: prov, Admin: prov, Logger: log, Limits: limits})
	if err != nil {
		return nil, err
	}
	docs, err := api.NewDocs(ctx)
	if err != nil {
		return nil, err
	}

	s := &server{cfg: cfg, log: log, store: store, accounts: accounts, provider: prov, outbox: outbox}

	metrics := newMetrics(reg)
	r := mux.NewRouter()
	common := []mux.MiddlewareFunc{recoverPanics(log), requestID, auditMeta(cfg.TrustedProxies), observe(log, metrics), baseHeaders(strings.HasPrefix(cfg.Issuer, "https://"))}
	r.Use(append(common, limitBody(login.AccountPath+"/avatar", api.PicturePath))...)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Write([]byte("ok\n"))
	}).Methods("GET", "HEAD")
	r.HandleFunc("/readyz", s.readyz).Methods("GET", "HEAD")
	s.metricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if cfg.MetricsAddr == "" {
		r.Handle("/metrics", s.metricsHandler).Methods("GET")
	}
	prov.Routes(r)
	loginHandler.Routes(r)
	apiHandler.Routes(r)
	docs.Routes(r)
	apiErrors(r, common, http.HandlerFunc(loginHandler.NotFound), http.HandlerFunc(loginHandler.MethodNotAllowed))
	s.handler, s.router = r, r
	if cfg.AdminAddr != "" {
		// The admin API's own router: only its routes and the probes, so
		// that it can listen on an operator network apart from the
		// public listener, which answers 404 under /api/v1/admin.
		ar := mux.NewRouter()
		ar.Use(append(common, limitBody(api.AdminPicturePath))...)
		ar.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			w.Write([]byte("ok\n"))
		}).Methods("GET", "HEAD")
		apiHandler.AdminRoutes(ar)
		docs.Routes(ar)
		apiErrors(ar, common, http.NotFoundHandler(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		}))
		s.adminHandler, s.adminRouter = ar, ar
	}
	s.ready.Store(true)
	ok = true
	return s, nil
}

// apiErrors makes r answer unknown paths and methods under /api/v1 with
// problems, and others with notFound and notAllowed; mw, the router's
// middleware (which mux does not run for unmatched requests), wraps them
// too, so they get the same headers, logs and metrics.
func apiErrors(r *mux.Router, mw []mux.MiddlewareFunc, notFound, notAllowed http.Handler) {
	wrap := func(problem, other http.Handler) http.Handler {
		var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, api.Prefix+"/") {
				problem.ServeHTTP(w, r)
				return
			}
			other.ServeHTTP(w, r)
		})
		for i := len(mw) - 1; i >= 0; i-- {
			h = mw[i](h)
		}
		return h
	}
	r.NotFoundHandler = wrap(http.HandlerFunc(api.NotFound), notFound)
	r.MethodNotAllowedHandler = wrap(http.HandlerFunc(api.MethodNotAllowed), notAllowed)
}

// readyz answers 200 while the server takes traffic and the database
// answers, 503 otherwise (and from the moment shutdown begins).
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !s.ready.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "readiness: database unreachable", "err", err)
		http.Error(w, "database unreachable", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ok\n"))
}

// draining wraps a listener's handler: once the server is no longer ready
// (shutdown has begun), every answer carries "Connection: close", so that a
// client's next request opens a new connection (reaching a node that is
// staying, behind a load balancer) instead of being written on a kept-alive
// one that the shutdown may close under it.
func (s *server) draining(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// cleanup deletes expired codes, tokens, sessions and pending requests, and
// retired signing keys, every interval until ctx ends.
func (s *server) cleanup(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.store.DeleteExpired(ctx, 1000)
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "clean-up of expired rows failed", "err", err)
		}
		var total int64
		for _, c := range n {
			total += c
		}
		audit, err := s.store.DeleteAuditBefore(ctx, time.Now().Add(-s.cfg.AuditRetention), 1000)
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "clean-up of old audit events failed", "err", err)
		}
		total += audit
		keys, err := s.provider.Keys().DeleteRetired(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "clean-up of retired keys failed", "err", err)
		}
		if total > 0 || keys > 0 {
			s.log.InfoContext(ctx, "cleaned up expired rows", "rows", total, "keys", keys)
		}
	}
}

// close releases the database.
func (s *server) close() error {
	if err := s.store.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// resendInterval maps the configured interval to account.Config's: there a
// zero means the default, so "no wait" is negative.
func resendInterval(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
