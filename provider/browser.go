package provider

import (
	"net/http"
	"time"

	"github.com/torii-idp/torii/storage"
)

// SignIn describes the person signed in on a browser.
type SignIn struct {
	// Subject is the user's stable opaque ID (the "sub" claim).
	Subject string
	// AuthTime is when the user last authenticated on this browser.
	AuthTime time.Time
	// AMR lists the authentication methods used, e.g. ["pwd"].
	AMR []string
	// IDP names the upstream provider the user signed in through
	// (login/federation: "google", "github", "facebook", "oidc"), "" for
	// none: the ID token's idp claim.
	IDP string
	// User is the signed-in user as read for this request (never disabled),
	// so that the authorization endpoint does not read it again.
	User *storage.User
}

// Browser answers the provider's one question about a browser request:
// who, if anyone, is signed in on it. The login package implements it; the
// provider never imports login.
type Browser interface {
	// SignedIn returns the sign-in carried by r's session cookie, and false
	// when there is none (no cookie, an unknown or expired session). An
	// error means the answer could not be found out (e.g. the database is
	// down), not that nobody is signed in.
	SignedIn(r *http.Request) (SignIn, bool, error)
	// SignOut ends the browser's session, if any, and clears its cookie.
	SignOut(w http.ResponseWriter, r *http.Request) error
}

// Paths the provider and the login pages send the browser to. The provider
// redirects to LoginPath or ConsentPath with "?req=ID" when a pending
// authorization request needs a sign-in or a consent; the login pages send
// the browser back to ResumePath with the same "?req=ID" when done (adding
// "&deny=1" when the user denied consent).
const (
	LoginPath   = "/login"
	ConsentPath = "/consent"
	ResumePath  = "/oauth2/auth/resume"
	// LogoutPath is the login pages' sign-out confirmation: the provider's
	// end-session endpoint sends the browser there (GET) when it cannot
	// tell that the relying party's logout request is genuine.
	LogoutPath = "/logout"
	// EndSessionPath is the OpenID Connect RP-initiated logout endpoint.
	EndSessionPath = "/oauth2/logout"
)

// Authentication context classes: ACRPassword for a password alone, ACRMFA
// for a password and a one-time code. A relying party asks for the second
// with acr_values=mfa.
const (
	ACRPassword = "pwd"
	ACRMFA      = "mfa"
)

// acrFor returns the authentication context class of the methods used.
func acrFor(amr []string) string {
	for _, m := range amr {
		if m == "otp" {
			return ACRMFA
		}
	}
	return ACRPassword
}
