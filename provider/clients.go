package provider

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ory/fosite"

	"github.com/torii-idp/torii/storage"
)

// secretHasher hashes client secrets with HMAC-SHA256 under a server key.
// Client secrets are 256-bit random values (or operator-supplied strings of
// at least 32 characters), so a slow password hash would add cost without
// adding safety; the key keeps a leaked table from being checked offline.
type secretHasher struct{ key []byte }

var _ fosite.Hasher = secretHasher{}

func (h secretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	m := hmac.New(sha256.New, h.key)
	m.Write(data)
	return m.Sum(nil), nil
}

func (h secretHasher) Compare(ctx context.Context, hash, data []byte) error {
	sum, _ := h.Hash(ctx, data)
	if len(hash) == 0 || !hmac.Equal(sum, hash) {
		return errors.New("client secret mismatch")
	}
	return nil
}

// MinSecretLength is the shortest client secret an operator may choose.
const MinSecretLength = 32

// ClientSpec describes a client to register.
type ClientSpec struct {
	ID string
	// Name is shown on the consent page; it defaults to ID.
	Name string
	// Secret is an operator-chosen secret; empty means generate one (unless
	// Public).
	Secret       string
	RedirectURIs []string
	// PostLogoutRedirectURIs are where RP-initiated logout may return.
	PostLogoutRedirectURIs []string
	// CORSOrigins are the browser origins (scheme://host[:port]) whose
	// scripts may call the token, revocation and userinfo endpoints and
	// the account API for this client.
	CORSOrigins []string
	GrantTypes  []string
	// Scopes defaults (when nil) to openid profile email offline_access.
	Scopes      []string
	Public      bool
	SkipConsent bool
	// PKCEOptional exempts a confidential legacy client from PKCE.
	PKCEOptional bool
	// TokenFormat is FormatOpaque (default) or FormatJWT.
	TokenFormat string
	// IDTokenAlg is RS256 (default), ES256 or EdDSA.
	IDTokenAlg string
	// LogoURI (RFC 7591 logo_uri) is the client's logo, shown on the
	// sign-in, code and consent pages; ClientURI (client_uri) is its home
	// page, linked from the authorization error page. Both optional:
	// https URLs, or http on a loopback host (as redirect URIs).
	LogoURI, ClientURI string
}

// The grant types and scopes a client may be given.
var (
	GrantTypes = []string{"authorization_code", "refresh_token", "password", "client_credentials"}
	// grantTypesSupported are the token endpoint's grants: the registrable
	// ones and the password grant's second step, which every client allowed
	// the password grant may use.
	grantTypesSupported = append(slices.Clone(GrantTypes), GrantTypeMFAOTP)
	Scopes              = []string{"openid", "profile", "email", "phone", "offline_access", "account", ScopeRoles, ScopeAdmin}
)

var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

// ErrInvalidClient describes a client specification that cannot be stored;
// its message says what is wrong.
type ErrInvalidClient struct {
	Reason string
	// Conflict is set when the client ID is taken.
	Conflict bool
}

func (e *ErrInvalidClient) Error() string { return "invalid client: " + e.Reason }

func invalid(format string, args ...any) error {
	return &ErrInvalidClient{Reason: fmt.Sprintf(format, args...)}
}

// Validate checks a client specification, fills defaults, and returns the
// first problem found as *ErrInvalidClient.
func (spec *ClientSpec) Validate() error {
	if !clientIDPattern.MatchString(spec.ID) {
		return invalid("client ID must be 1 to 128 characters of letters, digits and . _ ~ -")
	}
	if spec.Name == "" {
		spec.Name = spec.ID
	}
	if !utf8.ValidString(spec.Name) || utf8.RuneCountInString(spec.Name) > 200 || strings.ContainsRune(spec.Name, 0) {
		return invalid("client name must be valid text of at most 200 characters")
	}
	if len(spec.GrantTypes) == 0 {
		spec.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range spec.GrantTypes {
		if !slices.Contains(GrantTypes, g) {
			return invalid("unknown grant type %q (want some of %s)", g, strings.Join(GrantTypes, ", "))
		}
	}
	if spec.Scopes == nil {
		spec.Scopes = []string{"openid", "profile", "email", "offline_access"}
	}
	for _, s := range spec.Scopes {
		if !slices.Contains(Scopes, s) {
			return invalid("unknown scope %q (want some of %s)", s, strings.Join(Scopes, ", "))
		}
	}
	usesRedirect := slices.Contains(spec.GrantTypes, "authorization_code")
	if usesRedirect && len(spec.RedirectURIs) == 0 {
		return invalid("the authorization_code grant needs at least one --redirect-uri")
	}
	for _, u := range append(slices.Clone(spec.RedirectURIs), spec.PostLogoutRedirectURIs...) {
		if err := validateRedirectURI(u); err != nil {
			return err
		}
	}
	for _, u := range []struct{ what, raw string }{{"logo URI", spec.LogoURI}, {"client URI", spec.ClientURI}} {
		if err := validateWebURL(u.what, u.raw); err != nil {
			return err
		}
	}
	for i, o := range spec.CORSOrigins {
		canon, err := canonicalOrigin(o)
		if err != nil {
			return err
		}
		spec.CORSOrigins[i] = canon
	}
	if spec.Public {
		if spec.Secret != "" {
			return invalid("a public client has no secret")
		}
		if slices.Contains(spec.GrantTypes, "client_credentials") || slices.Contains(spec.GrantTypes, "password") {
			return invalid("a public client cannot use the client_credentials or password grant")
		}
		if spec.PKCEOptional {
			return invalid("PKCE is always required for public clients")
		}
	} else if spec.Secret != "" && utf8.RuneCountInString(spec.Secret) < MinSecretLength {
		return invalid("a client secret must be at least %d characters; leave it out to have a strong one generated", MinSecretLength)
	}
	switch spec.TokenFormat {
	case "":
		spec.TokenFormat = FormatOpaque
	case FormatOpaque, FormatJWT:
	default:
		return invalid("token format must be %q or %q", FormatOpaque, FormatJWT)
	}
	switch {
	case spec.IDTokenAlg == "":
		spec.IDTokenAlg = AlgRS256
	case !ValidAlg(spec.IDTokenAlg):
		return invalid("ID token algorithm must be one of %s", strings.Join(Algorithms, ", "))
	}
	return nil
}

// canonicalOrigin checks a CORS origin and returns it in the form browsers
// send it: scheme://host[:port], lower case, no default port. It must be
// https, or http on a loopback host (as redirect URIs); no path, query,
// fragment, user info or wildcard.
func canonicalOrigin(raw string) (string, error) {
	bad := func(why string) error { return invalid("CORS origin %q %s", raw, why) }
	if raw == "" || len(raw) > 255 || strings.ContainsAny(raw, "*\"%_ \t\r\n\x00") {
		return "", bad("must be scheme://host[:port], without wildcards")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || strings.HasSuffix(raw, "?") || strings.HasSuffix(raw, "#") {
		return "", bad("must be scheme://host[:port] with nothing after it")
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	switch {
	case scheme == "https":
	case scheme == "http" && isLoopbackHost(host):
	default:
		return "", bad("must be https (plain http only on a loopback host)")
	}
	if port != "" && !validPort(port) {
		return "", bad("has a port that is not a number from 1 to 65535 without leading zeros")
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	origin := scheme + "://" + u.Host[:len(u.Host)-len(u.Port())]
	origin = strings.TrimSuffix(strings.ToLower(origin), ":")
	if port != "" {
		origin += ":" + port
	}
	return origin, nil
}

// validateWebURL checks an optional URL the pages show (logo_uri,
// client_uri): "" or an absolute https URL with a host, or http on a
// loopback host; no user information, fragment, space or control
// character; at most 2048 bytes.
func validateWebURL(what, raw string) error {
	if raw == "" {
		return nil
	}
	if len(raw) > 2048 {
		return invalid("%s must have at most 2048 characters", what)
	}
	if strings.IndexFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 || encodedControl(raw) {
		return invalid("%s %q must not contain spaces or control characters", what, raw)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return invalid("%s %q is not an absolute URL with a host", what, raw)
	}
	if u.User != nil {
		return invalid("%s %q must not contain user information", what, raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return invalid("%s %q must not have a fragment", what, raw)
	}
	if i := strings.LastIndexByte(u.Host, ':'); i > strings.LastIndexByte(u.Host, ']') && !validPort(u.Host[i+1:]) {
		return invalid("%s %q: the port must be a number from 1 to 65535 without leading zeros", what, raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	default:
		return invalid("%s %q must be https (plain http only on a loopback host)", what, raw)
	}
	return nil
}

// validateRedirectURI accepts absolute https URIs, http URIs on loopback
// hosts, and private-use schemes for native apps (RFC 8252); never a
// fragment, wildcard, userinfo, a port that is not a port number (1 to
// 65535, no leading zero), a space or control character (raw or
// percent-encoded), or a javascript:/data:/file: scheme.
func validateRedirectURI(raw string) error {
	if i := strings.IndexFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }); i >= 0 {
		return invalid("redirect URI %q must not contain spaces or control characters", raw)
	}
	if encodedControl(raw) {
		return invalid("redirect URI %q must not contain percent-encoded control characters such as %%00", raw)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return invalid("redirect URI %q is not an absolute URI", raw)
	}
	if i := strings.LastIndexByte(u.Host, ':'); i > strings.LastIndexByte(u.Host, ']') && !validPort(u.Host[i+1:]) {
		return invalid("redirect URI %q: the port must be a number from 1 to 65535 without leading zeros", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return invalid("redirect URI %q must not have a fragment", raw)
	}
	if strings.Contains(raw, "*") {
		return invalid("redirect URI %q must not contain wildcards", raw)
	}
	if u.User != nil {
		return invalid("redirect URI %q must not contain user information", raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		if u.Host == "" {
			return invalid("redirect URI %q has no host", raw)
		}
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return invalid("redirect URI %q: plain http is allowed only for loopback addresses (127.0.0.1, [::1], localhost)", raw)
		}
	case "javascript", "data", "file", "vbscript", "about", "blob":
		return invalid("redirect URI %q has a forbidden scheme", raw)
	default:
		// A private-use scheme for a native app must contain a period
		// (reverse domain name, RFC 8252 §7.1).
		if !strings.Contains(u.Scheme, ".") {
			return invalid("redirect URI %q: a custom scheme must be a reverse domain name such as com.example.app", raw)
		}
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// encodedControl reports whether s holds a percent-encoded control
// character (%00 to %1F, or %7F).
func encodedControl(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		hi, lo := s[i+1], s[i+2]|0x20 // lower-case a hex letter
		if (hi == '0' || hi == '1') && (lo >= '0' && lo <= '9' || lo >= 'a' && lo <= 'f') || hi == '7' && lo == 'f' {
			return true
		}
	}
	return false
}

// validPort reports whether s is a TCP port number as a URI writes it:
// 1 to 65535, digits only, no leading zero.
func validPort(s string) bool {
	if len(s) == 0 || len(s) > 5 || s[0] < '1' || s[0] > '9' {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n <= 65535
}

// redirectURIRegistered reports whether requested may receive the answer to
// an authorization request of a client with the registered redirect URIs:
// it is one of them, byte for byte, or it differs from a registered http
// URI on a loopback IP literal (http://127.0.0.1/cb, http://[::1]/cb) in
// its port alone (RFC 8252 §7.3), and that port is a valid port number.
//
// fosite's loopback rule (isMatchingAsLoopback) compares parsed parts and so
// lets more differ: user info (http://x@127.0.0.1:1234/cb), an empty,
// zero, out-of-range or zero-padded port, the scheme's case, an empty query,
// percent-encoding in the path. Torii asks this after fosite matched.
func redirectURIRegistered(requested string, registered []string) bool {
	if slices.Contains(registered, requested) {
		return true
	}
	want, ok := loopbackWithoutPort(requested)
	if !ok {
		return false
	}
	for _, r := range registered {
		if got, ok := loopbackWithoutPort(r); ok && got == want {
			return true
		}
	}
	return false
}

// loopbackWithoutPort returns raw without its port when raw is an http URI
// whose host is a loopback IP literal (IPv4, or IPv6 in brackets) with no
// user info and, if any, a valid port; ok is false for any other string.
func loopbackWithoutPort(raw string) (string, bool) {
	const scheme = "http://"
	if !strings.HasPrefix(raw, scheme) {
		return "", false
	}
	rest := raw[len(scheme):]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	host, port, tail := rest[:end], "", rest[end:]
	ip := host
	if strings.HasPrefix(host, "[") {
		i := strings.IndexByte(host, ']')
		if i < 0 {
			return "", false
		}
		host, port, ip = host[:i+1], host[i+1:], host[1:i]
	} else if i := strings.IndexByte(host, ':'); i >= 0 {
		host, port, ip = host[:i], host[i:], host[:i]
	}
	if port != "" && (port[0] != ':' || !validPort(port[1:])) {
		return "", false
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil || !addr.IsLoopback() || addr.Zone() != "" || addr.Is6() != strings.HasPrefix(host, "[") {
		return "", false
	}
	return scheme + host + tail, true
}

// Clients registers clients and authenticates them.
type Clients struct {
	store     *storage.Store
	hasher    secretHasher
	dummyHash []byte
}

// NewClients loads the secret-hashing key (created on first use) from store.
func NewClients(ctx context.Context, store *storage.Store) (*Clients, error) {
	pepper, err := store.Secret(ctx, "client-secret-pepper")
	if err != nil {
		return nil, err
	}
	c := &Clients{store: store, hasher: secretHasher{key: pepper}}
	c.dummyHash, _ = c.hasher.Hash(ctx, []byte("no client has this secret"))
	return c, nil
}

// Register validates spec and stores the client. It returns the client and,
// for a confidential client, the plain secret: the only time it is shown,
// since only its keyed hash is stored.
func (p *Clients) Register(ctx context.Context, spec ClientSpec) (*storage.Client, string, error) {
	if err := spec.Validate(); err != nil {
		return nil, "", err
	}
	// A client_credentials token's subject is the client ID; it must never
	// name a user.
	if _, err := p.store.User(ctx, spec.ID); err == nil {
		return nil, "", &ErrInvalidClient{Reason: fmt.Sprintf("client ID %q is taken by a user", spec.ID), Conflict: true}
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, "", err
	}
	c := &storage.Client{
		ID:                     spec.ID,
		Name:                   spec.Name,
		RedirectURIs:           nonNil(spec.RedirectURIs),
		PostLogoutRedirectURIs: nonNil(spec.PostLogoutRedirectURIs),
		AllowedCORSOrigins:     nonNil(slices.Compact(slices.Sorted(slices.Values(spec.CORSOrigins)))),
		GrantTypes:             spec.GrantTypes,
		ResponseTypes:          []string{"code"},
		Scopes:                 spec.Scopes,
		Audience:               []string{},
		Public:                 spec.Public,
		SkipConsent:            spec.SkipConsent,
		PKCEOptional:           spec.PKCEOptional,
		TokenFormat:            spec.TokenFormat,
		IDTokenAlg:             spec.IDTokenAlg,
		LogoURI:                spec.LogoURI,
		ClientURI:              spec.ClientURI,
	}
	secret := spec.Secret
	if !spec.Public {
		if secret == "" {
			secret = newClientSecret()
		}
		c.SecretHash, _ = p.hasher.Hash(ctx, []byte(secret))
	}
	err := p.store.InTx(ctx, func(ctx context.Context) error {
		if err := p.store.CreateClient(ctx, c); err != nil {
			return err
		}
		return p.audit(ctx, "admin.client_registered", c.ID)
	})
	if err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return nil, "", &ErrInvalidClient{Reason: fmt.Sprintf("a client with ID %q already exists", spec.ID), Conflict: true}
		}
		return nil, "", err
	}
	return c, secret, nil
}

func nonNil(a []string) []string {
	if a == nil {
		return []string{}
	}
	return a
}

// errClientAuth is the one answer to every failed client authentication:
// unknown client, wrong secret, missing secret. The same bytes for each.
var errClientAuth = fosite.ErrInvalidClient.WithHint("Client authentication failed (unknown client, no client authentication included, or unsupported authentication method).")

// authenticateClient is fosite's client authentication strategy:
// client_secret_basic, client_secret_post, or none for public clients.
// Credentials in both the header and the body, or in the URL, are refused.
func (p *Clients) authenticate(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	if form.Get("client_assertion_type") != "" || form.Get("client_assertion") != "" {
		return nil, fosite.ErrInvalidRequest.WithHint("Client assertions (private_key_jwt) are not supported.")
	}
	if q := r.URL.Query(); q.Has("client_secret") || q.Has("client_id") {
		return nil, fosite.ErrInvalidRequest.WithHint("Client credentials must not be sent in the URL.")
	}
	basicID, basicSecret, hasBasic := r.BasicAuth()
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if hasBasic {
		if secret != "" {
			return nil, fosite.ErrInvalidRequest.WithHint("Use exactly one client authentication method: HTTP Basic or the request body, not both.")
		}
		bid, err1 := url.QueryUnescape(basicID)
		bsecret, err2 := url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return nil, fosite.ErrInvalidRequest.WithHint("The HTTP Basic credentials are not properly form-encoded.")
		}
		if id != "" && id != bid {
			return nil, fosite.ErrInvalidRequest.WithHint("The client_id in the body does not match the HTTP Basic credentials.")
		}
		id, secret = bid, bsecret
	}
	if id == "" {
		return nil, errClientAuth
	}
	client, err := p.store.Client(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		// Spend the same work as for a known client.
		_ = p.hasher.Compare(ctx, p.dummyHash, []byte(secret))
		return nil, errClientAuth
	}
	if err != nil {
		return nil, fosite.ErrTemporarilyUnavailable.WithWrap(err)
	}
	if client.Public {
		if secret != "" {
			return nil, errClientAuth
		}
		return client, nil
	}
	if err := p.hasher.Compare(ctx, client.SecretHash, []byte(secret)); err != nil {
		return nil, errClientAuth
	}
	return client, nil
}
