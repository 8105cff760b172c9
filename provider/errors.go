package provider

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/templates"
)

// errorPage renders an HTML error page. It is used when the browser cannot
// be sent back to the client: the client is unknown, or the redirect URI is
// missing or not registered. It never redirects.
func (p *Provider) errorPage(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	p.errorPageWith(w, r, status, templates.ErrorPage{Title: title, Message: message})
}

// errorPageWith is errorPage for a page with a way forward.
func (p *Provider) errorPageWith(w http.ResponseWriter, r *http.Request, status int, page templates.ErrorPage) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", PageCSP)
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", retryAfter)
	}
	w.WriteHeader(status)
	lang := p.pageLanguage(r)
	page.Title = templates.Translate(lang, page.Title)
	page.Message = templates.Translate(lang, page.Message)
	page.LinkText = templates.Translate(lang, page.LinkText)
	if err := p.pages.In(lang).ExecuteTemplate(w, "error.html", page); err != nil {
		p.log.ErrorContext(r.Context(), "render error page", "err", err)
	}
}

// pageLanguage is the language of an error page, chosen as the login
// pages choose theirs (login's requestLanguage): the request's ui_locales,
// the pages' language cookie (torii_lang), Accept-Language, the default.
func (p *Provider) pageLanguage(r *http.Request) string {
	uiLocales := r.URL.Query().Get("ui_locales")
	if r.Form != nil {
		uiLocales = r.Form.Get("ui_locales")
	}
	if l := templates.Match(uiLocales, false); l != "" {
		return l
	}
	for _, name := range []string{"__Host-torii_lang", "torii_lang"} {
		if c, err := r.Cookie(name); err == nil && templates.IsLanguage(c.Value) {
			return c.Value
		}
	}
	if l := templates.Match(r.Header.Get("Accept-Language"), true); l != "" {
		return l
	}
	if templates.IsLanguage(p.cfg.DefaultLanguage) {
		return p.cfg.DefaultLanguage
	}
	return "en"
}

// PageCSP is the Content-Security-Policy of the provider's HTML pages: our
// stylesheet, our one script and images from this origin only.
const PageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// clientDisplayName is c's name, or its ID.
func clientDisplayName(c *storage.Client) string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// rfcError returns fosite's view of err, without debug details.
func rfcError(err error) *fosite.RFC6749Error {
	return fosite.ErrorToRFC6749Error(err).WithExposeDebug(false)
}

// errRedirectURIMismatch answers a redirect_uri that fosite matched and
// Torii's stricter rule (redirectURIRegistered) does not.
var errRedirectURIMismatch = fosite.ErrInvalidRequest.WithHint("The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls.")

// writeAuthorizeError answers a failed authorization request: with an error
// page when the request has no valid redirect URI (never redirect to an
// unverified URI: fosite must have matched it and so must
// redirectURIRegistered), otherwise with a 303 redirect carrying error,
// state and iss.
func (p *Provider) writeAuthorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	if ar != nil && ar.IsRedirectURIValid() &&
		!redirectURIRegistered(ar.GetRequestForm().Get("redirect_uri"), ar.GetClient().GetRedirectURIs()) {
		// That is the error to report, whatever else is wrong.
		ar, err = nil, errRedirectURIMismatch
	}
	err = asUnavailable(w, err)
	rfc := rfcError(err)
	p.logError(r, "authorize", err)
	if ar == nil || !ar.IsRedirectURIValid() {
		if errors.Is(err, fosite.ErrTemporarilyUnavailable) {
			p.errorPage(w, r, http.StatusServiceUnavailable, "Temporarily unavailable",
				"The service is busy right now. Please try again in a moment.")
			return
		}
		msg := "The application sent an invalid sign-in request"
		switch {
		case errors.Is(err, fosite.ErrInvalidClient):
			msg = "The application is not registered with this server"
		case strings.Contains(rfc.HintField, "redirect"):
			msg = "The application's return address (redirect URI) is not registered"
		}
		page := templates.ErrorPage{Title: "Sign-in request rejected",
			Message: msg + " (" + rfc.ErrorField + "). Contact the application's developers.",
			LinkURL: LoginPath, LinkText: "Go to the sign-in page"}
		if ar != nil {
			// The client is known (its redirect URI is not): its
			// registered home page, when it has one, is the way back.
			if c, ok := ar.GetClient().(*storage.Client); ok && c.ClientURI != "" {
				page.LinkURL, page.LinkText = c.ClientURI, "Back to "+clientDisplayName(c)
			}
		}
		p.errorPageWith(w, r, http.StatusBadRequest, page)
		return
	}
	u := *ar.GetRedirectURI()
	u.Fragment = ""
	q := u.Query()
	for k, v := range rfc.ToValues() {
		q[k] = v
	}
	if state := ar.GetState(); state != "" {
		q.Set("state", state)
	}
	q.Set("iss", p.cfg.Issuer)
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// writeAccessError answers a failed token, introspection or revocation
// request with RFC 6749's JSON error; a database that was away is 503
// temporarily_unavailable with Retry-After (asUnavailable), whatever fosite
// made of it.
func (p *Provider) writeAccessError(w http.ResponseWriter, r *http.Request, ar fosite.AccessRequester, err error) {
	err = asUnavailable(w, err)
	p.logError(r, "token", err)
	if rfcError(err).ErrorField == fosite.ErrInvalidClient.ErrorField {
		if _, _, basic := r.BasicAuth(); basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="torii", charset="UTF-8"`)
		}
	}
	p.oauth2.WriteAccessError(r.Context(), w, ar, err)
}

// logError logs a protocol error once: server-side faults at error level
// with their cause, client mistakes at info level with the error code only.
// Nothing from the request's credentials is logged.
func (p *Provider) logError(r *http.Request, endpoint string, err error) {
	rfc := rfcError(err)
	if r.Context().Err() != nil {
		p.log.DebugContext(r.Context(), "oauth2 request abandoned by the client", "endpoint", endpoint)
		return
	}
	if rfc.CodeField >= 500 {
		cause := err
		if c := rfc.Cause(); c != nil {
			cause = c
		}
		p.log.ErrorContext(r.Context(), "oauth2 request failed", "endpoint", endpoint, "error", rfc.ErrorField, "cause", cause.Error())
		return
	}
	p.log.InfoContext(r.Context(), "oauth2 request refused", "endpoint", endpoint, "error", rfc.ErrorField, "hint", rfc.HintField)
}

// retryAfter is what a 503 asks clients to wait, in seconds: a database
// outage is usually over in seconds, and clients back off on their own
// beyond that.
const retryAfter = "1"

// asUnavailable is the provider's one mapping of storage faults: an error
// that says the database was away (storage.IsUnavailable: ErrUnavailable
// or a driver's connection failure anywhere in its chain, including inside
// fosite's server_error or invalid_client wraps, or fosite's "error" for
// an error it did not recognise) becomes fosite's temporarily_unavailable
// (503), and Retry-After is set on w. Any other error is returned as is.
func asUnavailable(w http.ResponseWriter, err error) error {
	if !errors.Is(err, fosite.ErrTemporarilyUnavailable) {
		if !storage.IsUnavailable(err) {
			return err
		}
		err = fosite.ErrTemporarilyUnavailable.WithWrap(err)
	}
	w.Header().Set("Retry-After", retryAfter)
	return err
}

// storageFault maps a storage error to a fosite error for clients: 503 when
// the database failed, so that nothing is wrongly reported as done.
func storageFault(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrNotFound.WithWrap(err)
	}
	return fosite.ErrTemporarilyUnavailable.WithWrap(err)
}
