package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
)

// telemetry is Torii's domain metrics (besides the HTTP ones in
// middleware.go). Every label takes values from a small fixed set: grant
// types, token formats, channels, algorithms, outcomes. No label ever
// holds a user, an address, a client ID or a token: client IDs are chosen
// by operators and unbounded in number, so they would make a series per
// client (and per-client counts belong in the audit trail, not metrics).
type telemetry struct {
	tokens     *prometheus.CounterVec
	signIns    *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	signatures *prometheus.CounterVec
	reuse      prometheus.Counter
}

var _ provider.Observer = (*telemetry)(nil)

func newTelemetry(reg prometheus.Registerer, store *storage.Store, log *slog.Logger) *telemetry {
	t := &telemetry{
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "torii_tokens_issued_total",
			Help: "Successful token responses by grant type and access token format.",
		}, []string{"grant_type", "format"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "torii_sign_ins_total",
			Help: "Sign-ins (pages and the password grant) by method (password, federated) and how they ended: success, wrong_credentials, locked, wrong_code, unverified; federated also bad_state, cancelled, upstream_error, no_email, not_linked, disabled.",
		}, []string{"method", "outcome"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "torii_outbox_deliveries_total",
			Help: "Delivery attempts of codes, links and notices by channel (email, sms) and outcome (sent, retry, failed).",
		}, []string{"channel", "outcome"}),
		signatures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "torii_signatures_total",
			Help: "JWS signatures made (ID tokens, JWT access tokens) by algorithm.",
		}, []string{"alg"}),
		reuse: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "torii_refresh_token_reuse_total",
			Help: "Refresh tokens presented again after rotation; each revoked its token family.",
		}),
	}
	reg.MustRegister(t.tokens, t.signIns, t.deliveries, t.signatures, t.reuse,
		collectors.NewDBStatsCollector(store.DB().DB, "torii"),
		&outboxCollector{store: store, log: log,
			pending: prometheus.NewDesc("torii_outbox_pending", "Messages waiting to be sent (due now or waiting for a retry).", nil, nil),
			oldest:  prometheus.NewDesc("torii_outbox_oldest_due_seconds", "How long the oldest due message has waited past its due time; 0 when none is due.", nil, nil),
		})
	return t
}

func (t *telemetry) TokenIssued(grantType, format string) {
	t.tokens.WithLabelValues(grantType, format).Inc()
	if grantType == "password" || grantType == provider.GrantTypeMFAOTP {
		t.signIn("success")
	}
}

func (t *telemetry) RefreshReuse()     { t.reuse.Inc() }
func (t *telemetry) Signed(alg string) { t.signatures.WithLabelValues(alg).Inc() }

// signIn counts a password sign-in's end.
func (t *telemetry) signIn(outcome string) { t.signIns.WithLabelValues("password", outcome).Inc() }

// SignIn is login.Deps.SignIns.
func (t *telemetry) SignIn(method, outcome string) { t.signIns.WithLabelValues(method, outcome).Inc() }

// Delivered is notify.Config.Observe.
func (t *telemetry) Delivered(channel, outcome string) {
	t.deliveries.WithLabelValues(channel, outcome).Inc()
}

// observedAccounts is the password grant's credential check with its
// failures counted as sign-ins (successes are counted as tokens issued:
// TokenIssued).
type observedAccounts struct {
	*account.Service
	t *telemetry
}

func (a observedAccounts) Authenticate(ctx context.Context, login, password string) (*storage.User, error) {
	u, err := a.Service.Authenticate(ctx, login, password)
	var locked *account.LockedError
	switch {
	case errors.As(err, &locked):
		a.t.signIn("locked")
	case errors.Is(err, account.ErrInvalidCredentials):
		a.t.signIn("wrong_credentials")
	}
	return u, err
}

// outboxCollector reads the outbox's backlog at each scrape, within a
// second; a scrape during a database outage reports nothing for it.
type outboxCollector struct {
	store           *storage.Store
	log             *slog.Logger
	pending, oldest *prometheus.Desc
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.oldest
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n, oldest, err := c.store.OutboxBacklog(ctx)
	if err != nil {
		c.log.WarnContext(ctx, "metrics: outbox backlog unavailable", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, oldest.Seconds())
}
