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
