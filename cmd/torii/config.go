package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/templates"
)

// Config is Torii's whole configuration, read once from TORII_* environment
// variables and matching flags (a flag wins), validated, then handed down as
// plain values.
type Config struct {
	Addr        string
	Issuer      string
	DatabaseURL Secret
	SMTPURL     Secret
	MailFrom    string
	SMSURL      Secret
	LogFormat   string
	LogLevel    slog.Level

	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	IDTokenTTL      time.Duration
	CodeTTL         time.Duration
	CleanupInterval time.Duration
	// AuditRetention is how long audit events are kept.
	AuditRetention  time.Duration
	ShutdownTimeout time.Duration
	// ShutdownDelay is how long serve keeps serving after SIGTERM with
	// /readyz answering 503, so that load balancers stop sending traffic
	// before the listeners close; 0 closes them at once.
	ShutdownDelay time.Duration

	// OTP is "always" (every sign-in needs a one-time code) or "off".
	OTP    string
	OTPTTL time.Duration
	// RememberDevice is how long a browser whose user chose "don't ask
	// for a code on this device" skips the code step; 0 hides the choice.
	RememberDevice      time.Duration
	OTPResendInterval   time.Duration
	OTPResendLimit      RateLimit
	LockoutThreshold    int
	IPRateLimit         RateLimit
	IPFailureLimit      RateLimit
	TokenFailureLimit   RateLimit
	TrustedProxies      []netip.Prefix
	PasswordComposition bool
	TwilioURL           string

	// PprofAddr is a loopback host:port for Go's profiling endpoints, or
	// empty (off).
	PprofAddr string
	// AdminAddr is the host:port of the admin API's own listener, or
	// empty (TORII_ADMIN_ADDR=off).
	AdminAddr string
	// MetricsAddr is the host:port of a listener serving only /metrics,
	// or empty: /metrics is then on the public listener.
	MetricsAddr string

	// TLSCert and TLSKey are the PEM files of the certificate (chain) and
	// private key that the public and admin listeners serve HTTPS with,
	// re-read when they change; both empty: plain HTTP (behind a proxy).
	TLSCert, TLSKey string
	// KeyRotation is the age at which a signing key is rotated on a
	// schedule; zero is off (TORII_KEY_ROTATION=off).
	KeyRotation time.Duration
	// Federation configures sign-in through Google, GitHub, Facebook and
	// an OpenID Connect provider.
	Federation FederationConfig
	// federationClient, set by tests only, reaches fake providers.
	federationClient *http.Client

	// SiteName names the service on every page ("" is Torii).
	SiteName string
	// Logo is TORII_LOGO_FILE's image, read at start, and its content
	// type; nil for none.
	Logo     []byte
	LogoType string
	// AccentColor is TORII_ACCENT_COLOR (#rrggbb, contrast-checked), or
	// ""; ThemeCSS is the stylesheet that applies it.
	AccentColor, ThemeCSS string
	// DefaultLanguage is TORII_DEFAULT_LANGUAGE: one of
	// templates.Languages.
	DefaultLanguage string
}

// RateLimit is N events per duration, written "N/duration" (e.g. 60/1m).
type RateLimit struct {
	N   int
	Per time.Duration
}

// String formats the limit as it is written.
func (l RateLimit) String() string { return fmt.Sprintf("%d/%s", l.N, l.Per) }

// parseRateLimit reads "N/duration".
func parseRateLimit(s string) (RateLimit, error) {
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return RateLimit{}, fmt.Errorf("%q must look like 60/1m (count/duration)", s)
	}
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || count < 1 || count > 1_000_000 {
		return RateLimit{}, fmt.Errorf("%q: the count must be a whole number from 1 to 1000000", s)
	}
	d, err := time.ParseDuration(strings.TrimSpace(per))
	if err != nil || d < time.Second || d > 24*time.Hour {
		return RateLimit{}, fmt.Errorf("%q: the duration must be from 1s to 24h (e.g. 1m, 15m)", s)
	}
	return RateLimit{N: count, Per: d}, nil
}

// Secret is a string that never prints itself: logs and errors show
// REDACTED.
type Secret string

// String implements fmt.Stringer.
func (Secret) String() string { return "REDACTED" }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// setting is one configuration item: its environment variable, its flag,
// its default and its help text.
type setting struct {
	env, flag, def, usage string
	value                 string
}

// settings lists every configuration item, in --help order.
func settings() []*setting {
	return append([]*setting{
		{env: "TORII_ADDR", flag: "addr", def: "127.0.0.1:8080", usage: "address to listen on (host:port)"},
		{env: "TORII_ISSUER", flag: "issuer", def: "", usage: "public base URL, the \"iss\" of every token (default http://ADDR, or https://ADDR with --tls-cert)"},
		{env: "TORII_DATABASE_URL", flag: "database-url", def: "sqlite:torii.db", usage: "database: sqlite:PATH, sqlite::memory: or postgres://USER:PASSWORD@HOST/DB"},
		{env: "TORII_SMTP_URL", flag: "smtp-url", def: "", usage: "mail server: smtp://USER:PASSWORD@HOST:PORT or smtps://... (unset: mails are written to the log)"},
		{env: "TORII_MAIL_FROM", flag: "mail-from", def: "", usage: "sender address of Torii's mails (default torii@ISSUER-HOST)"},
		{env: "TORII_SMS_URL", flag: "sms-url", def: "", usage: "SMS gateway: an http(s) URL, or twilio://ACCOUNT_SID:AUTH_TOKEN@FROM_NUMBER"},
		{env: "TORII_LOG_FORMAT", flag: "log-format", def: "text", usage: "log format: text or json"},
		{env: "TORII_LOG_LEVEL", flag: "log-level", def: "info", usage: "log level: debug, info, warn or error"},
		{env: "TORII_ACCESS_TOKEN_TTL", flag: "access-token-ttl", def: "1h", usage: "access token lifetime"},
		{env: "TORII_REFRESH_TOKEN_TTL", flag: "refresh-token-ttl", def: "720h", usage: "refresh token lifetime, counted from sign-in (rotation does not extend it)"},
		{env: "TORII_ID_TOKEN_TTL", flag: "id-token-ttl", def: "1h", usage: "ID token lifetime"},
		{env: "TORII_CODE_TTL", flag: "code-ttl", def: "10m", usage: "authorization code lifetime (at most 10m)"},
		{env: "TORII_CLEANUP_INTERVAL", flag: "cleanup-interval", def: "10m", usage: "how often expired codes, tokens and sessions are deleted"},
		{env: "TORII_AUDIT_RETENTION", flag: "audit-retention", def: "2160h", usage: "how long audit events are kept (1h to 87600h)"},
		{env: "TORII_SHUTDOWN_TIMEOUT", flag: "shutdown-timeout", def: "20s", usage: "how long in-flight requests may run on shutdown"},
		{env: "TORII_SHUTDOWN_DELAY", flag: "shutdown-delay", def: "5s", usage: "on SIGTERM, how long /readyz answers 503 while requests are still served, before the shutdown (0s to 60s; 0s: none)"},
		{env: "TORII_OTP", flag: "otp", def: "always", usage: "one-time-code step at sign-in: always, or off (a client may still ask for it with acr_values=mfa)"},
		{env: "TORII_OTP_TTL", flag: "otp-ttl", def: "10m", usage: "lifetime of a one-time code"},
		{env: "TORII_REMEMBER_DEVICE", flag: "remember-device", def: "720h", usage: "how long \"don't ask for a code on this device\" skips the code step (1h to 8760h), or 0 to hide the choice"},
		{env: "TORII_OTP_RESEND_INTERVAL", flag: "otp-resend-interval", def: "30s", usage: "least time between two codes sent to one account"},
		{env: "TORII_OTP_RESEND_LIMIT", flag: "otp-resend-limit", def: "5/15m", usage: "most codes sent to one account (and one destination) per period"},
		{env: "TORII_LOCKOUT_THRESHOLD", flag: "lockout-threshold", def: "5", usage: "consecutive wrong passwords before an account waits (1m, doubling to 1h)"},
		{env: "TORII_IP_RATE_LIMIT", flag: "ip-rate-limit", def: "60/1m", usage: "requests per client IP to the sign-in, code, registration and reset pages (shared by every node on PostgreSQL; per node on SQLite)"},
		{env: "TORII_IP_FAILURE_LIMIT", flag: "ip-failure-limit", def: "50/15m", usage: "failed attempts per client IP on those pages (shared on PostgreSQL, per node on SQLite)"},
		{env: "TORII_TOKEN_FAILURE_LIMIT", flag: "token-failure-limit", def: "100/15m", usage: "token requests failing with invalid_grant (wrong code, refresh token or password) per client IP; then 429 (shared on PostgreSQL, per node on SQLite)"},
		{env: "TORII_TRUSTED_PROXIES", flag: "trusted-proxies", def: "", usage: "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed"},
		{env: "TORII_PASSWORD_COMPOSITION", flag: "password-composition", def: "false", usage: "also require upper case, lower case, digit and symbol in new passwords"},
		{env: "TORII_TWILIO_URL", flag: "twilio-url", def: "https://api.twilio.com", usage: "base URL of Twilio's REST API (for a twilio:// SMS URL)"},
		{env: "TORII_ADMIN_ADDR", flag: "admin-addr", def: "127.0.0.1:8081", usage: "host:port of the admin API's own listener (/api/v1/admin, bearer tokens with scope torii:admin); off disables it"},
		{env: "TORII_METRICS_ADDR", flag: "metrics-addr", def: "", usage: "host:port of a listener serving only /metrics (unset: /metrics is on the public listener)"},
		{env: "TORII_PPROF_ADDR", flag: "pprof-addr", def: "", usage: "loopback host:port serving Go's profiles at /debug/pprof/ (unset: off)"},
		{env: "TORII_TLS_CERT", flag: "tls-cert", def: "", usage: "PEM certificate (chain) file: serve HTTPS directly, on the admin listener too (with --tls-key; re-read when it changes; unset: plain HTTP behind a proxy)"},
		{env: "TORII_TLS_KEY", flag: "tls-key", def: "", usage: "PEM private key file of --tls-cert"},
		{env: "TORII_KEY_ROTATION", flag: "key-rotation", def: "2160h", usage: "rotate each signing key once it is this old (checked at start and hourly, at least 24h), or off"},
		{env: "TORII_SITE_NAME", flag: "site-name", def: "Torii", usage: "the service's name, at the top of every page and the end of every title (at most 60 characters)"},
		{env: "TORII_LOGO_FILE", flag: "logo-file", def: "", usage: "a PNG, JPEG, WebP or GIF image (at most 256 KiB) shown beside the site name, read at start"},
		{env: "TORII_ACCENT_COLOR", flag: "accent-color", def: "", usage: "the buttons' colour, #rrggbb; it must keep WCAG AA contrast (3:1) on the light and dark page backgrounds"},
		{env: "TORII_DEFAULT_LANGUAGE", flag: "default-language", def: "en", usage: "the pages' and mails' language when the request (ui_locales), the language picker's cookie and Accept-Language name none of en, de, fr, es, ja"},
	}, federationSettings()...)
}

// configFlags registers the configuration flags on fs and returns a loader
// that builds the validated Config after parsing.
func configFlags(fs *pflag.FlagSet) func() (Config, error) {
	all := settings()
	for _, s := range all {
		def := s.def
		if v, ok := os.LookupEnv(s.env); ok {
			def = v
		}
		usage := fmt.Sprintf("%s [$%s]", s.usage, s.env)
		fs.StringVar(&s.value, s.flag, def, usage)
	}
	return func() (Config, error) { return loadConfig(all) }
}

// configError names the setting a bad value came from. Torii exits with
// status 2 on one.
type configError struct {
	s   *setting
	msg string
}

func (e *configError) Error() string {
	return fmt.Sprintf("%s (--%s): %s", e.s.env, e.s.flag, e.msg)
}

func loadConfig(all []*setting) (Config, error) {
	get := map[string]*setting{}
	for _, s := range all {
		get[s.env] = s
	}
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, &configError{s: get[env], msg: fmt.Sprintf(format, args...)})
	}
	val := func(env string) string { return strings.TrimSpace(get[env].value) }
	dur := func(env string, dst *time.Duration, lo, hi time.Duration) {
		d, err := time.ParseDuration(val(env))
		if err != nil {
			bad(env, "%q is not a duration (use e.g. 90s, 15m, 1h)", val(env))
			return
		}
		if d < lo || d > hi {
			bad(env, "%s is out of range (%s to %s)", d, lo, hi)
			return
		}
		*dst = d
	}

	var c Config
	loadFederation(&c.Federation, val, bad)
	c.Addr = val("TORII_ADDR")
	addrOK := false
	if host, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" || strings.ContainsAny(host, "/ ") {
		bad("TORII_ADDR", "%q is not a host:port address", c.Addr)
	} else {
		addrOK = true
	}

	c.Issuer = strings.TrimSuffix(val("TORII_ISSUER"), "/")
	tlsOn := val("TORII_TLS_CERT") != "" || val("TORII_TLS_KEY") != ""
	if c.Issuer == "" && addrOK {
		c.Issuer = "http://" + c.Addr
		if tlsOn {
			c.Issuer = "https://" + c.Addr
		}
	}
	if c.Issuer == "" {
		// Derived from a bad TORII_ADDR, already reported.
	} else if u, err := url.Parse(c.Issuer); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		bad("TORII_ISSUER", "%q must be an http(s) URL without query, fragment or user info", c.Issuer)
	} else if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		bad("TORII_ISSUER", "%q: plain http is only allowed for a loopback issuer; use https", c.Issuer)
	} else if u.Scheme == "http" && tlsOn {
		bad("TORII_ISSUER", "%q is plain http, but TORII_TLS_CERT serves HTTPS: use https", c.Issuer)
	}

	c.DatabaseURL = Secret(val("TORII_DATABASE_URL"))
	if _, _, err := storage.ParseURL(c.DatabaseURL.Reveal()); err != nil {
		bad("TORII_DATABASE_URL", "%s", strings.TrimPrefix(err.Error(), "storage: "))
	}

	c.SMTPURL = Secret(val("TORII_SMTP_URL"))
	if c.SMTPURL != "" {
		if u, err := url.Parse(c.SMTPURL.Reveal()); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
			bad("TORII_SMTP_URL", "must look like smtp://USER:PASSWORD@HOST:PORT or smtps://...")
		}
	}
	c.MailFrom = val("TORII_MAIL_FROM")
	if c.MailFrom != "" {
		if _, err := mail.ParseAddress(c.MailFrom); err != nil {
			bad("TORII_MAIL_FROM", "%q is not a mail address", c.MailFrom)
		}
	} else if u, err := url.Parse(c.Issuer); err == nil && u.Hostname() != "" {
		c.MailFrom = "torii@" + u.Hostname()
	}
	c.SMSURL = Secret(val("TORII_SMS_URL"))
	if c.SMSURL != "" {
		u, err := url.Parse(c.SMSURL.Reveal())
		switch {
		case err != nil:
			bad("TORII_SMS_URL", "is not a URL")
		case u.Scheme == "http" || u.Scheme == "https":
			if u.Host == "" {
				bad("TORII_SMS_URL", "an http(s) SMS URL needs a host")
			}
		case u.Scheme == "twilio":
			if _, hasToken := u.User.Password(); u.User == nil || u.User.Username() == "" || !hasToken || !strings.HasPrefix(u.Host, "+") && !strings.HasPrefix(u.Host, "%2B") {
				bad("TORII_SMS_URL", "must look like twilio://ACCOUNT_SID:AUTH_TOKEN@+15551234567")
			}
		default:
			bad("TORII_SMS_URL", "must be an http(s) URL or twilio://ACCOUNT_SID:AUTH_TOKEN@FROM_NUMBER")
		}
	}

	switch c.LogFormat = val("TORII_LOG_FORMAT"); c.LogFormat {
	case "text", "json":
	default:
		bad("TORII_LOG_FORMAT", "%q must be text or json", c.LogFormat)
	}
	if err := c.LogLevel.UnmarshalText([]byte(val("TORII_LOG_LEVEL"))); err != nil {
		bad("TORII_LOG_LEVEL", "%q must be debug, info, warn or error", val("TORII_LOG_LEVEL"))
	}

	dur("TORII_ACCESS_TOKEN_TTL", &c.AccessTokenTTL, time.Minute, 24*time.Hour)
	dur("TORII_REFRESH_TOKEN_TTL", &c.RefreshTokenTTL, time.Minute, 365*24*time.Hour)
	dur("TORII_ID_TOKEN_TTL", &c.IDTokenTTL, time.Minute, 24*time.Hour)
	dur("TORII_CODE_TTL", &c.CodeTTL, 10*time.Second, 10*time.Minute)
	dur("TORII_CLEANUP_INTERVAL", &c.CleanupInterval, time.Second, 24*time.Hour)
	dur("TORII_AUDIT_RETENTION", &c.AuditRetention, time.Hour, 87600*time.Hour)
	dur("TORII_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout, 0, 10*time.Minute)
	dur("TORII_SHUTDOWN_DELAY", &c.ShutdownDelay, 0, time.Minute)

	switch c.OTP = val("TORII_OTP"); c.OTP {
	case "always", "off":
	default:
		bad("TORII_OTP", "%q must be always or off", c.OTP)
	}
	dur("TORII_OTP_TTL", &c.OTPTTL, time.Minute, time.Hour)
	if v := val("TORII_REMEMBER_DEVICE"); v != "0" && v != "0s" {
		dur("TORII_REMEMBER_DEVICE", &c.RememberDevice, time.Hour, 365*24*time.Hour)
	}
	dur("TORII_OTP_RESEND_INTERVAL", &c.OTPResendInterval, 0, time.Hour)
	limit := func(env string, dst *RateLimit) {
		l, err := parseRateLimit(val(env))
		if err != nil {
			bad(env, "%s", err)
			return
		}
		*dst = l
	}
	limit("TORII_OTP_RESEND_LIMIT", &c.OTPResendLimit)
	limit("TORII_IP_RATE_LIMIT", &c.IPRateLimit)
	limit("TORII_IP_FAILURE_LIMIT", &c.IPFailureLimit)
	limit("TORII_TOKEN_FAILURE_LIMIT", &c.TokenFailureLimit)
	if n, err := strconv.Atoi(val("TORII_LOCKOUT_THRESHOLD")); err != nil || n < 1 || n > 100 {
		bad("TORII_LOCKOUT_THRESHOLD", "%q must be a whole number from 1 to 100", val("TORII_LOCKOUT_THRESHOLD"))
	} else {
		c.LockoutThreshold = n
	}
	for _, cidr := range splitList(val("TORII_TRUSTED_PROXIES"), ",") {
		pfx, err := netip.ParsePrefix(cidr)
		if err != nil {
			if addr, aerr := netip.ParseAddr(cidr); aerr == nil {
				pfx = netip.PrefixFrom(addr, addr.BitLen())
			} else {
				bad("TORII_TRUSTED_PROXIES", "%q is not an IP address or CIDR prefix", cidr)
				continue
			}
		}
		c.TrustedProxies = append(c.TrustedProxies, pfx.Masked())
	}
	if b, err := strconv.ParseBool(val("TORII_PASSWORD_COMPOSITION")); err != nil {
		bad("TORII_PASSWORD_COMPOSITION", "%q must be true or false", val("TORII_PASSWORD_COMPOSITION"))
	} else {
		c.PasswordComposition = b
	}
	c.TwilioURL = strings.TrimSuffix(val("TORII_TWILIO_URL"), "/")
	if u, err := url.Parse(c.TwilioURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("TORII_TWILIO_URL", "%q must be an http(s) URL", c.TwilioURL)
	}
	if c.PprofAddr = val("TORII_PPROF_ADDR"); c.PprofAddr != "" {
		if host, port, err := net.SplitHostPort(c.PprofAddr); err != nil || port == "" || !isLoopback(host) {
			bad("TORII_PPROF_ADDR", "%q must be a loopback host:port such as 127.0.0.1:6060", c.PprofAddr)
		}
	}
	switch c.AdminAddr = val("TORII_ADMIN_ADDR"); c.AdminAddr {
	case "off":
		c.AdminAddr = ""
	case c.Addr:
		bad("TORII_ADMIN_ADDR", "%q is TORII_ADDR too: the admin API needs its own listener (or off)", c.AdminAddr)
	default:
		if host, port, err := net.SplitHostPort(c.AdminAddr); err != nil || port == "" || strings.ContainsAny(host, "/ ") {
			bad("TORII_ADMIN_ADDR", "%q is not a host:port address (or off)", c.AdminAddr)
		}
	}
	if c.MetricsAddr = val("TORII_METRICS_ADDR"); c.MetricsAddr != "" {
		if host, port, err := net.SplitHostPort(c.MetricsAddr); err != nil || port == "" || strings.ContainsAny(host, "/ ") {
			bad("TORII_METRICS_ADDR", "%q is not a host:port address", c.MetricsAddr)
		} else if c.MetricsAddr == c.Addr || c.MetricsAddr == c.AdminAddr {
			bad("TORII_METRICS_ADDR", "%q is another listener's address: metrics need their own", c.MetricsAddr)
		}
	}
	tlsConfig(&c, val, bad)
	if val("TORII_KEY_ROTATION") != "off" {
		dur("TORII_KEY_ROTATION", &c.KeyRotation, 24*time.Hour, 10*365*24*time.Hour)
	}
	brandConfig(&c, val, bad)
	c.DefaultLanguage = val("TORII_DEFAULT_LANGUAGE")
	if !templates.IsLanguage(c.DefaultLanguage) {
		bad("TORII_DEFAULT_LANGUAGE", "must be one of %s", strings.Join(templates.Languages, ", "))
	}
	return c, errors.Join(errs...)
}

// brandConfig reads TORII_SITE_NAME, TORII_LOGO_FILE (read now) and
// TORII_ACCENT_COLOR (contrast-checked now).
func brandConfig(c *Config, val func(string) string, bad func(env, format string, args ...any)) {
	c.SiteName = val("TORII_SITE_NAME")
	if problem := checkSiteName(c.SiteName); problem != "" {
		bad("TORII_SITE_NAME", "%s", problem)
	}
	if path := val("TORII_LOGO_FILE"); path != "" {
		var problem string
		if c.Logo, c.LogoType, problem = readLogo(path); problem != "" {
			bad("TORII_LOGO_FILE", "%s", problem)
		}
	}
	if accent := val("TORII_ACCENT_COLOR"); accent != "" {
		label, problem := checkAccent(accent)
		if problem != "" {
			bad("TORII_ACCENT_COLOR", "%s", problem)
		} else {
			c.AccentColor, c.ThemeCSS = strings.ToLower(accent), themeCSS(accent, label)
		}
	}
}

// tlsConfig reads TORII_TLS_CERT and TORII_TLS_KEY: both or neither, and a
// readable, matching pair.
func tlsConfig(c *Config, val func(string) string, bad func(env, format string, args ...any)) {
	c.TLSCert, c.TLSKey = val("TORII_TLS_CERT"), val("TORII_TLS_KEY")
	switch {
	case c.TLSCert == "" && c.TLSKey == "":
		return
	case c.TLSKey == "":
		bad("TORII_TLS_KEY", "is missing: TORII_TLS_CERT needs its private key file")
		return
	case c.TLSCert == "":
		bad("TORII_TLS_CERT", "is missing: TORII_TLS_KEY needs its certificate file")
		return
	}
	if _, err := loadCertificate(c.TLSCert, c.TLSKey); err != nil {
		bad("TORII_TLS_CERT", "%s", err)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
