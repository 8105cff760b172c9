// Command torii is an OAuth 2.0 and OpenID Connect identity provider.
//
// Run "torii serve" to start the server on the embedded SQLite database, or
// "torii --help" for every command.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/storage"
)

// defaultMemoryLimit is the Go runtime's soft memory limit in serve unless
// GOMEMLIMIT says otherwise: a base for everything but password hashing,
// plus room for the argon2id computations that may run at once (one per
// core, 19 MiB each, see account.Config.MaxConcurrentHashes).
func defaultMemoryLimit() int64 {
	return 48<<20 + int64(runtime.GOMAXPROCS(0))*20<<20
}

// defaultGCPercent is the collector's heap growth target in serve unless
// GOGC says otherwise.
const defaultGCPercent = 400

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit status: 0 on success,
// 2 for bad configuration or usage, or a database migrated by a newer Torii,
// 1 for any other failure.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "torii:", err)
	var ce *configError
	var ue usageError
	var newer *storage.SchemaNewerError
	if errors.As(err, &ce) || errors.As(err, &ue) || errors.As(err, &newer) {
		return 2
	}
	return 1
}

// usageError marks a mistake in how a command was called.
type usageError struct{ error }

// app is what every command shares: the configuration loader, the logger,
// and the output streams.
type app struct {
	load   func() (Config, error)
	cfg    Config
	log    *slog.Logger
	stdout io.Writer
	stderr io.Writer
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "torii",
		Short: "Torii is an OAuth 2.0 and OpenID Connect identity provider",
		Long: `Torii is an OAuth 2.0 and OpenID Connect identity provider: one binary that
relying-party applications trust for sign-in.

Every setting can be given as a flag or as the TORII_* environment variable
shown in its help; a flag wins. With no settings at all, "torii serve" runs on
a SQLite file torii.db in the working directory at http://127.0.0.1:8080.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.load()
			if err != nil {
				return err
			}
			a.cfg = cfg
			a.log = newLogger(stderr, cfg)
			if cmd.Name() != "serve" {
				// Audit events of admin commands name the CLI as actor.
				cmd.SetContext(storage.WithAuditActor(cmd.Context(), "cli"))
			}
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	a.load = configFlags(root.PersistentFlags())
	root.AddCommand(a.serveCmd(), a.migrateCmd(), a.versionCmd(), a.clientsCmd(), a.usersCmd(), a.keysCmd(), a.auditCmd(), a.benchCmd(), a.backupCmd())
	return root
}

// newLogger returns the slog logger the configuration asks for, adding the
// request ID to records logged with a request's context.
func newLogger(w io.Writer, cfg Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(contextHandler{h})
}

func (a *app) serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the server (applies pending database migrations first)",
		Long: `Run the server (applies pending database migrations first) until SIGINT or
SIGTERM. Then /readyz answers 503 while both listeners keep serving for
TORII_SHUTDOWN_DELAY, so that a load balancer stops sending traffic first;
then the listeners close and requests in flight get TORII_SHUTDOWN_TIMEOUT to
finish.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.serve(cmd.Context())
		},
	}
}

// serve runs the server until ctx ends (SIGINT or SIGTERM), then shuts down
// gracefully: readiness turns 503 at once and both listeners go on serving
// for the shutdown delay, answering with "Connection: close" so that clients
// leave their kept-alive connections; then no new connections are taken and
// in-flight requests finish within the shutdown timeout.
func (a *app) serve(ctx context.Context) error {
	start := time.Now()
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft memory limit keeps bursts of password hashing (19 MiB of
		// garbage each) from growing the heap far beyond what is live; the
		// GOMEMLIMIT environment variable overrides it.
		debug.SetMemoryLimit(defaultMemoryLimit())
	}
	if os.Getenv("GOGC") == "" {
		// Torii's live heap is small (a few MiB): at Go's default the
		// collector would run every few MiB of garbage, hundreds of times
		// a second under load. Bounded by the soft limit above, a larger
		// heap goal costs little memory and spares that CPU (introspection
		// +20 %, measured with torii bench); GOGC overrides it.
		debug.SetGCPercent(defaultGCPercent)
	}
	srv, err := newServer(ctx, a.cfg, a.log, serverOptions{})
	if err != nil {
		return err
	}
	defer srv.close()
	// TLS without a proxy (TORII_TLS_CERT): both listeners, one certificate.
	var tlsConfig *tls.Config
	if a.cfg.TLSCert != "" {
		certs, err := newCertReloader(a.cfg.TLSCert, a.cfg.TLSKey, a.log)
		if err != nil {
			return err
		}
		tlsConfig = certs.tlsConfig()
	}

	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Addr, err)
	}
	httpSrv := &http.Server{
		Handler:           srv.draining(srv.handler),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         tlsConfig,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	cleanupCtx, stopCleanup := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCleanup()
	go srv.cleanup(cleanupCtx, a.cfg.CleanupInterval)
	if a.cfg.KeyRotation > 0 {
		go rotateKeys(cleanupCtx, srv.provider.Keys(), a.log, a.cfg.KeyRotation, time.Hour)
	}
	outboxDone := make(chan struct{})
	go func() {
		defer close(outboxDone)
		srv.outbox.Run(cleanupCtx)
	}()

	if a.cfg.PprofAddr != "" {
		_, stopPprof, err := a.servePprof()
		if err != nil {
			return err
		}
		defer stopPprof()
	}

	served := make(chan error, 3)
	var adminSrv *http.Server
	if a.cfg.AdminAddr != "" {
		adminLn, err := net.Listen("tcp", a.cfg.AdminAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s (TORII_ADMIN_ADDR): %w", a.cfg.AdminAddr, err)
		}
		adminSrv = &http.Server{
			Handler: srv.draining(srv.adminHandler), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
			TLSConfig:   tlsConfig.Clone(), // each server adds its protocols to its own
			ErrorLog:    slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
			BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		}
		go func() { served <- serveOn(adminSrv, adminLn) }()
		a.log.Info("admin API is serving", "addr", adminLn.Addr().String())
	}
	if a.cfg.MetricsAddr != "" {
		metricsLn, err := net.Listen("tcp", a.cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s (TORII_METRICS_ADDR): %w", a.cfg.MetricsAddr, err)
		}
		mm := http.NewServeMux()
		mm.Handle("GET /metrics", srv.metricsHandler)
		metricsSrv := &http.Server{Handler: mm, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
		go func() { served <- metricsSrv.Serve(metricsLn) }()
		defer metricsSrv.Close()
		a.log.Info("metrics are served", "addr", metricsLn.Addr().String())
	}
	go func() { served <- serveOn(httpSrv, ln) }()
	a.log.Info("torii is serving", "addr", ln.Addr().String(), "issuer", a.cfg.Issuer, "tls", tlsConfig != nil,
		"database", string(srv.store.Dialect()), "version", version, "startup", time.Since(start).Round(time.Millisecond))

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Readiness turns 503 first, while requests are still served, so that
	// a load balancer takes this node out before its listeners close.
	srv.ready.Store(false)
	if d := a.cfg.ShutdownDelay; d > 0 {
		a.log.Info("shutting down: not ready, still serving", "delay", d)
		select {
		case err := <-served:
			return fmt.Errorf("serve: %w", err)
		case <-time.After(d):
		}
	}
	a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout)
	stopCleanup()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if adminSrv != nil {
		if err := adminSrv.Shutdown(shutdownCtx); err != nil {
			return fmt.Errorf("shutdown of the admin listener: %w", err)
		}
	}
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	// Deliver what the last requests queued; what fails stays queued for
	// the next start.
	<-outboxDone
	if err := srv.outbox.Flush(shutdownCtx); err != nil {
		a.log.Warn("outbox: final flush", "err", err)
	}
	a.log.Info("stopped")
	return nil
}

// servePprof serves Go's profiles on the configured loopback address, apart
// from the public listener, until the returned function is called; it
// returns the address it listens on.
func (a *app) servePprof() (string, func(), error) {
	ln, err := net.Listen("tcp", a.cfg.PprofAddr)
	if err != nil {
		return "", nil, fmt.Errorf("listen on %s (TORII_PPROF_ADDR): %w", a.cfg.PprofAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	a.log.Info("profiles served", "addr", ln.Addr().String())
	return ln.Addr().String(), func() { srv.Close() }, nil
}

func (a *app) migrateCmd() *cobra.Command {
	var status bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations and exit (--status: list them, change nothing)",
		Long: `Apply pending database migrations and exit. Each migration runs in a
transaction of its own. On PostgreSQL, nodes migrating at once take turns.

With --status nothing is changed: the applied migrations (with the time each
was applied), the pending ones and the unknown ones are printed as JSON. An
unknown migration was applied by a newer Torii than this binary: then serve,
migrate, clients, users and keys refuse to run, with exit status 2 (backup
still copies the database).`,
		Example: `  torii migrate
  torii migrate --status`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := storage.Open(cmd.Context(), a.cfg.DatabaseURL.Reveal(), storage.Options{})
			if err != nil {
				return err
			}
			defer store.Close()
			if status {
				return a.migrationStatus(cmd.Context(), store)
			}
			applied, err := migrate(cmd.Context(), store, a.log)
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintln(a.stdout, "database is up to date")
				return nil
			}
			for _, m := range applied {
				fmt.Fprintln(a.stdout, "applied", m)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&status, "status", false, "print applied, pending and unknown migrations as JSON and change nothing")
	return cmd
}

// migrationJSON is one applied migration in migrate --status.
type migrationJSON struct {
	Name      string    `json:"name"`
	AppliedAt time.Time `json:"applied_at"`
}

// migrationStatus prints the database's migrations as JSON.
func (a *app) migrationStatus(ctx context.Context, store *storage.Store) error {
	st, err := store.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	out := struct {
		Applied []migrationJSON `json:"applied"`
		Pending []string        `json:"pending"`
		Unknown []migrationJSON `json:"unknown"`
	}{Applied: []migrationJSON{}, Pending: []string{}, Unknown: []migrationJSON{}}
	for _, m := range st.Applied {
		out.Applied = append(out.Applied, migrationJSON(m))
	}
	out.Pending = append(out.Pending, st.Pending...)
	for _, m := range st.Unknown {
		out.Unknown = append(out.Unknown, migrationJSON(m))
	}
	return a.printJSON(out)
}

// migrate applies pending migrations to store, then fills in what SQL
// cannot compute: the email skeletons of users from before they existed.
func migrate(ctx context.Context, store *storage.Store, log *slog.Logger) ([]string, error) {
	applied, err := store.Migrate(ctx)
	if err != nil {
		return nil, err
	}
	if err := account.FillEmailSkeletons(ctx, store, log); err != nil {
		return applied, err
	}
	return applied, nil
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, commit := version, ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
					v = bi.Main.Version
				}
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						commit = s.Value
					}
				}
				fmt.Fprintf(a.stdout, "torii %s %s %s\n", v, bi.GoVersion, commit)
				return nil
			}
			fmt.Fprintf(a.stdout, "torii %s\n", v)
			return nil
		},
	}
}
