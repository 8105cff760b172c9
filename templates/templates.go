// Package templates holds Torii's HTML pages and stylesheet, embedded in the
// binary, and the types of the values each page is executed with.
//
// Pages share one layout (layout.html: the "top" and "bottom" templates) and
// are executed by file name: pages.ExecuteTemplate(w, "login.html", LoginPage{...}).
// They use no script, no inline style and no external resource, so that a
// Content-Security-Policy of default-src 'none'; style-src 'self' holds, and
// they work without JavaScript. The stylesheet is served from /static/.
package templates

import (
	"embed"
	"html/template"
	"io/fs"
)

//go:embed *.html static
var files embed.FS

// Pages parses every page. Execute a page by its file name.
func Pages() (*template.Template, error) {
	return template.ParseFS(files, "*.html")
}

// Static returns the files to serve under /static/ (style.css).
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // unreachable: "static" is a valid, embedded directory
	}
	return sub
}

// LoginPage is the value login.html takes: the sign-in form, which posts
// "username", "password", "csrf" and (when set) "req" to /login.
type LoginPage struct {
	// CSRF is the form's anti-forgery token.
	CSRF string
	// Req is the ID of the pending authorization request, or "".
	Req string
	// Error is shown next to the form (role="alert"), or "" for none.
	Error string
	// Notice is a neutral message above the form (e.g. "Your email is
	// confirmed."), or "".
	Notice string
	// Federated are the "Continue with …" buttons (federation.html).
	Federated []FederatedButton
}

// ConsentPage is the value consent.html takes: the question whether the
// client may have the scopes, with an Allow button (action=allow) and a Deny
// button (action=deny) posting "csrf" and "req" to /consent.
type ConsentPage struct {
	// ClientName is the name of the application asking.
	ClientName string
	// Scopes are the requested scope names; the page describes the known
	// ones (openid, profile, email, phone, offline_access) in words and
	// shows others by name.
	Scopes []string
	// User names the signed-in person (their email), or "".
	User string
	CSRF string
	Req  string
}

// DonePage is the value done.html takes: the page shown after a sign-in
// that no application asked for, with a sign-out button posting "csrf" to
// /logout.
type DonePage struct {
	// User names the signed-in person (their email).
	User string
	CSRF string
}

// ErrorPage is the value error.html takes. Both fields are plain text
// meant for the person in front of the browser: never error details.
type ErrorPage struct {
	// Title is the heading, e.g. "Something went wrong".
	Title string
	// Message says what happened and what to do next.
	Message string
}

// LoginPage fields added for the second step and registration links are
// in LoginPage; the pages below are issue 3's.

// CodePage is the value code.html takes: the one-time-code step. The form
// posts "code", "csrf" and "req" to /login/code; the resend form posts
// "channel" (email or sms) to /login/code/resend.
type CodePage struct {
	CSRF, Req string
	// Destination is where the code went, masked (a•••@example.com).
	Destination string
	// Channel is "email" or "sms".
	Channel string
	// Minutes is how long the code works.
	Minutes int
	// CanSMS offers switching to SMS (the user has a verified phone).
	CanSMS bool
	// Error is shown next to the code field; Notice above the form.
	Error, Notice string
	// Wait, when set, says how long until a new code may be sent.
	Wait string
	// RememberFor, when set, offers "Don't ask for a code on this device
	// for RememberFor" ("30 days"); Remember keeps it ticked after an
	// error.
	RememberFor string
	Remember    bool
}

// RegisterPage is the value register.html takes: email, username
// (optional), password and password2, posted to /register.
type RegisterPage struct {
	CSRF, Req string
	// Email and Username refill the form after an error (never passwords).
	Email, Username, Name string
	// Errors maps a field name to the message shown next to it.
	Errors map[string]string
	// Federated are the "Continue with …" buttons (federation.html).
	Federated []FederatedButton
}

// VerifyPage is the value verify.html takes: the code sent to confirm an
// email address, posted as "code" to /verify; "Send a new code" posts to
// /verify/resend.
type VerifyPage struct {
	CSRF, Req   string
	Destination string
	Error       string
	Notice      string
}

// MessagePage is the value message.html takes: a short page with a title,
// a message and an optional link onward.
type MessagePage struct {
	Title, Message string
	// LinkURL and LinkText, when set, show a link (e.g. "Sign in").
	LinkURL, LinkText string
}

// ForgotPage is the value forgot.html takes: "email" posted to /forgot.
type ForgotPage struct {
	CSRF  string
	Error string
}

// ResetPage is the value reset.html takes: "password" and "password2"
// posted with "token" to /reset.
type ResetPage struct {
	CSRF, Token string
	Errors      map[string]string
}

// LogoutPage is the value logout.html takes: a confirmation button posting
// "csrf" to /logout.
type LogoutPage struct {
	CSRF string
	User string
}

// AccountPage is the value account.html takes: sections for the profile,
// email and phone, password (and sign-in), devices, applications and the
// danger zone.
type AccountPage struct {
	CSRF string
	// UserID, Email and the rest describe the signed-in user.
	UserID, Email, Username, Name, Bio string
	EmailVerified                      bool
	Phone, PendingPhone                string
	PhoneVerified                      bool
	// AvatarURL is the picture's URL, or "" when there is none.
	AvatarURL string
	Sessions  []AccountSession
	// Devices are the remembered devices (no code asked).
	Devices []AccountDevice
	Apps    []AccountApp
	// Errors maps a form field to the message shown next to it; ErrorList
	// is the same in page order, for the summary at the top; Notice says
	// what the last action did.
	Errors    map[string]string
	ErrorList []AccountError
	Notice    string
	// Identities are the linked upstream identities and LinkProviders the
	// providers one may link (federation.html's "account-identities").
	Identities    []FederatedIdentity
	LinkProviders []FederatedButton
}

// AccountError is one entry of the error summary: the message and the ID
// of the field it links to.
type AccountError struct {
	Field, Message string
}

// AccountSession is one signed-in browser on the account page.
type AccountSession struct {
	// Name says the browser in words ("Chrome on Linux"); UserAgent is
	// the raw string.
	ID, Name, UserAgent string
	// Since says when it signed in, relative ("2 hours ago"); SinceAt is
	// the time in RFC 3339, SinceDate in words.
	Since, SinceAt, SinceDate string
	Current                   bool
}

// AccountDevice is one remembered device on the account page.
type AccountDevice struct {
	ID, Name, UserAgent string
	// LastUsed is relative ("yesterday"); Until is relative ("in 29
	// days"); the ...At fields are RFC 3339, ...Date in words.
	LastUsed, LastUsedAt, LastUsedDate string
	Until, UntilAt, UntilDate          string
	Current                            bool
}

// AccountApp is one application with consent on the account page; its
// scopes are described in the consent page's words (template "scope").
type AccountApp struct {
	ClientID, Name            string
	Since, SinceAt, SinceDate string
	Scopes                    []string
}
