// Package templates holds Torii's HTML pages and stylesheet, embedded in the
// binary, and the types of the values each page is executed with.
//
// Pages share one layout (layout.html: the "top" and "bottom" templates) and
// are executed by file name: pages.ExecuteTemplate(w, "login.html", LoginPage{...}).
// They use no inline script or style: one small script (static/torii.js,
// loaded with <script src>) enhances them under a Content-Security-Policy of
// default-src 'none'; script-src 'self'; style-src 'self', and they work
// without JavaScript. The stylesheet and script are served from /static/.
//
// The layout's "top" takes either a plain title ({{template "top" "Title"}})
// or a Head built by the "head" function from a title and the page's value
// ({{template "top" (head "Sign in" .)}}): then the title starts with
// "Error: " when the page has problems, an error summary (the GOV.UK
// pattern) lists them with a link to each field, and the pages of a sign-in
// for an application say which one.
package templates

import (
	"embed"
	"html/template"
	"io/fs"
	"maps"
	"slices"
)

//go:embed *.html static
var files embed.FS

// Brand is the operator's branding of the pages. The zero value is Torii's
// own look.
type Brand struct {
	// SiteName heads every page and ends every title; "" means "Torii".
	SiteName string
	// LogoURL is the operator's logo beside the site name, or "" for none.
	LogoURL string
	// ThemeURL is a stylesheet linked after style.css (the accent colour),
	// or "" for none.
	ThemeURL string
}

// Pages parses every page with Torii's own look. Execute a page by its file
// name.
func Pages() (*template.Template, error) { return BrandedPages(Brand{}) }

// BrandedPages parses every page with the operator's brand.
func BrandedPages(b Brand) (*template.Template, error) {
	if b.SiteName == "" {
		b.SiteName = "Torii"
	}
	return template.New("pages").Funcs(template.FuncMap{
		"brand":    func() Brand { return b },
		"head":     head,
		"headOf":   headOf,
		"pickerOf": pickerOf,
	}).Funcs(translated("en")).ParseFS(files, "*.html")
}

// Picker is the language picker at the foot of a page: a GET form to
// Path carrying Fields (e.g. req) and lang, which shows the same page in
// the chosen language (and remembers it in a cookie).
type Picker struct {
	Path   string
	Fields map[string]string
}

// picked is a page value that can be shown again by a GET (the picker's
// target).
type picked interface {
	picker() Picker
}

// pickerOf is the picker of a page value, or nil for a page that has none
// (error and message pages, which no GET shows again).
func pickerOf(page any) *Picker {
	if p, ok := page.(picked); ok {
		pk := p.picker()
		return &pk
	}
	return nil
}

// withReq is a picker to path with the pending request req, when set.
func withReq(path, req string) Picker {
	p := Picker{Path: path, Fields: map[string]string{}}
	if req != "" {
		p.Fields["req"] = req
	}
	return p
}

func (p LoginPage) picker() Picker    { return withReq("/login", p.Req) }
func (p RegisterPage) picker() Picker { return withReq("/register", p.Req) }
func (p VerifyPage) picker() Picker   { return withReq("/verify", p.Req) }
func (p ConsentPage) picker() Picker  { return withReq("/consent", p.Req) }
func (p ForgotPage) picker() Picker   { return withReq("/forgot", "") }
func (p AccountPage) picker() Picker  { return withReq("/account", "") }
func (p DonePage) picker() Picker     { return withReq("/login/done", "") }
func (p LogoutPage) picker() Picker   { return withReq("/logout", "") }

func (p CodePage) picker() Picker {
	pk := withReq("/login/code", p.Req)
	if p.Channel != "" {
		pk.Fields["via"] = p.Channel
	}
	return pk
}

func (p ResetPage) picker() Picker {
	pk := withReq("/reset", "")
	if p.Token != "" {
		pk.Fields["token"] = p.Token
	}
	return pk
}

// Static returns the files to serve under /static/ (style.css, torii.js).
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // unreachable: "static" is a valid, embedded directory
	}
	return sub
}

// Head is what the layout's "top" shows above a page: made by the template
// function head from a title and the page's value.
type Head struct {
	Title string
	// Problems are the form's errors, in the form's order: the title
	// starts with "Error: " and a summary lists them.
	Problems []Problem
	// App is the application the person is signing in to, or nil.
	App *App
}

// Problem is one error of a form.
type Problem struct {
	// Field is the id of the input it is about ("" for the whole form):
	// the summary links to it.
	Field   string
	Message string
}

// App is the registered client of the pending authorization request, as
// the sign-in, code and consent pages show it: "Sign in to continue to
// Name", with its logo when it has one.
type App struct {
	Name string
	// LogoURI is the client's registered logo_uri, or "".
	LogoURI string
}

// paged is a page value the layout can ask for its problems and the
// application it signs in to.
type paged interface {
	problems() []Problem
	app() *App
}

// head builds the layout's Head from a title and the page's value.
func head(title string, page any) Head {
	h := Head{Title: title}
	if p, ok := page.(paged); ok {
		h.Problems, h.App = p.problems(), p.app()
	}
	return h
}

// headOf is the layout's view of what "top" was called with: a Head, or a
// plain title.
func headOf(v any) Head {
	switch v := v.(type) {
	case Head:
		return v
	case string:
		return Head{Title: v}
	}
	return Head{}
}

// ordered lists the problems of errs in the order of fields, form-level
// ("form", or any key not in fields) first; ids maps a key to its input's
// id when they differ.
func ordered(errs map[string]string, fields []string, ids map[string]string) []Problem {
	var ps []Problem
	known := map[string]bool{}
	for _, f := range fields {
		known[f] = true
	}
	if m := errs["form"]; m != "" {
		ps = append(ps, Problem{Message: m})
	}
	for _, k := range slices.Sorted(maps.Keys(errs)) {
		if m := errs[k]; k != "form" && !known[k] && m != "" {
			ps = append(ps, Problem{Message: m})
		}
	}
	for _, f := range fields {
		if m := errs[f]; m != "" {
			id := f
			if ids[f] != "" {
				id = ids[f]
			}
			ps = append(ps, Problem{Field: id, Message: m})
		}
	}
	return ps
}

// focus reports whether the input id gets autofocus: it is the first field
// with a problem, or first is and no problem names a field.
func focus(ps []Problem, first, id string) bool {
	for _, p := range ps {
		if p.Field != "" {
			return p.Field == id
		}
	}
	return id == first
}

// LoginPage is the value login.html takes: the sign-in form, which posts
// "username", "password", "csrf" and (when set) "req" to /login.
type LoginPage struct {
	// CSRF is the form's anti-forgery token.
	CSRF string
	// Req is the ID of the pending authorization request, or "".
	Req string
	// Username refills the form after an error (never the password).
	Username string
	// Error is a problem of the whole form (e.g. a lockout), or "".
	Error string
	// Errors maps "username" and "password" to the message shown next to
	// that field.
	Errors map[string]string
	// Notice is a neutral message above the form (e.g. "Your email is
	// confirmed."), or "".
	Notice string
	// Federated are the "Continue with …" buttons (federation.html).
	Federated []FederatedButton
	// App is the application asking, or nil.
	App *App
}

func (p LoginPage) problems() []Problem {
	ps := ordered(p.Errors, []string{"username", "password"}, nil)
	if p.Error != "" {
		ps = append([]Problem{{Message: p.Error}}, ps...)
	}
	return ps
}

func (p LoginPage) app() *App { return p.App }

// Focus reports whether the input id gets autofocus.
func (p LoginPage) Focus(id string) bool { return focus(p.problems(), "username", id) }

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
	// App is ClientName's logo and name for the layout, or nil.
	App *App
}

func (p ConsentPage) problems() []Problem { return nil }
func (p ConsentPage) app() *App           { return p.App }

// DonePage is the value done.html takes: the page shown after a sign-in
// that no application asked for, with a sign-out button posting "csrf" to
// /logout.
type DonePage struct {
	// User names the signed-in person (their email).
	User string
	CSRF string
}

// ErrorPage is the value error.html takes. Title and Message are plain
// text meant for the person in front of the browser: never error details.
type ErrorPage struct {
	// Title is the heading, e.g. "Something went wrong".
	Title string
	// Message says what happened and what to do next.
	Message string
	// LinkURL and LinkText, when set, show the way forward (e.g. back to
	// the application's site, or to the sign-in page).
	LinkURL, LinkText string
	// AgainURL, when set, shows a "Start again" button: a GET form to
	// AgainURL carrying AgainFields (e.g. req, via) as hidden fields.
	AgainURL    string
	AgainFields map[string]string
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
	// Code refills the code field after an error.
	Code string
	// Wait, when set, says how long until a new code may be sent
	// ("45 seconds"); WaitSeconds is the same in seconds, for the script's
	// countdown, and WaitUntil the time it ends ("14:32 UTC"). While
	// waiting the resend buttons are disabled; the script enables them.
	Wait        string
	WaitSeconds int
	WaitUntil   string
	// ReloadURL is the code page without the wait, for the no-script
	// "reload" link.
	ReloadURL string
	// App is the application asking, or nil.
	App *App
	// RememberFor, when set, offers "Don't ask for a code on this device
	// for RememberFor" ("30 days"); Remember keeps it ticked after an
	// error.
	RememberFor string
	Remember    bool
}

func (p CodePage) problems() []Problem {
	if p.Error == "" {
		return nil
	}
	return []Problem{{Field: "code", Message: p.Error}}
}

func (p CodePage) app() *App { return p.App }

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

func (p RegisterPage) problems() []Problem {
	return ordered(p.Errors, []string{"email", "name", "username", "password", "password2"}, nil)
}

func (p RegisterPage) app() *App { return nil }

// Focus reports whether the input id gets autofocus.
func (p RegisterPage) Focus(id string) bool { return focus(p.problems(), "email", id) }

// VerifyPage is the value verify.html takes: the code sent to confirm an
// email address, posted as "code" to /verify; "Send a new code" posts to
// /verify/resend.
type VerifyPage struct {
	CSRF, Req   string
	Destination string
	Error       string
	Notice      string
	// Code refills the code field after an error.
	Code string
	// Wait, WaitSeconds, WaitUntil and ReloadURL are CodePage's: the
	// resend wait.
	Wait        string
	WaitSeconds int
	WaitUntil   string
	ReloadURL   string
}

func (p VerifyPage) problems() []Problem {
	if p.Error == "" {
		return nil
	}
	return []Problem{{Field: "code", Message: p.Error}}
}

func (p VerifyPage) app() *App { return nil }

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
	// Email refills the form after an error.
	Email string
}

func (p ForgotPage) problems() []Problem {
	if p.Error == "" {
		return nil
	}
	return []Problem{{Field: "email", Message: p.Error}}
}

func (p ForgotPage) app() *App { return nil }

// ResetPage is the value reset.html takes: "password" and "password2"
// posted with "token" to /reset.
type ResetPage struct {
	CSRF, Token string
	// Email is the account whose password the link changes.
	Email  string
	Errors map[string]string
}

func (p ResetPage) problems() []Problem {
	return ordered(p.Errors, []string{"password", "password2"}, nil)
}

func (p ResetPage) app() *App { return nil }

// Focus reports whether the input id gets autofocus.
func (p ResetPage) Focus(id string) bool { return focus(p.problems(), "password", id) }

// LogoutPage is the value logout.html takes: a confirmation button posting
// "csrf" to /logout, and Cancel.
type LogoutPage struct {
	CSRF string
	User string
	// CancelURL is where Cancel goes: the account page when signed in.
	CancelURL string
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
	// HasPassword is false for an account made through a provider that
	// has not set one: the page offers a link to set it instead of the
	// change form.
	HasPassword bool
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

func (p AccountPage) problems() []Problem {
	ps := make([]Problem, 0, len(p.ErrorList))
	for _, e := range p.ErrorList {
		ps = append(ps, Problem{Field: e.Field, Message: e.Message})
	}
	return ps
}

func (p AccountPage) app() *App { return nil }

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
