package login

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	"github.com/torii-idp/torii/templates"
)

// The pages' language (templates.Languages) is decided in one place,
// pageWriter.language, for the request being answered:
//
//  1. the lang parameter of a GET: the picker at the foot of every page
//     that a GET shows again; it is remembered in the language cookie;
//  2. ui_locales of the pending authorization request (req), kept with it
//     in storage.AuthRequest.Form: the relying party's choice;
//  3. the language cookie: the person's last choice in the picker;
//  4. Accept-Language (q-values honoured), through language.Matcher;
//  5. Config.DefaultLanguage (TORII_DEFAULT_LANGUAGE).
//
// Unknown or malformed values at any step are ignored.

// langCookieName is the picker's cookie (with the __Host- prefix on https).
const langCookieName = "torii_lang"

// langCookieAge is how long the picker's choice is remembered.
const langCookieAge = 365 * 24 * 60 * 60

func (h *Handler) langCookie() string {
	if h.secure {
		return "__Host-" + langCookieName
	}
	return langCookieName
}

// pageWriter is the ResponseWriter the page handlers get: it knows the
// request, so render can ask it for the page's language.
type pageWriter struct {
	http.ResponseWriter
	h    *Handler
	r    *http.Request
	lang string
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *pageWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// pickedLanguage is the picker's choice carried by a GET, or "".
func pickedLanguage(r *http.Request) string {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return ""
	}
	if l := r.URL.Query().Get("lang"); templates.IsLanguage(l) {
		return l
	}
	return ""
}

// rememberLanguage sets the language cookie when the request carries the
// picker's choice. The cookie only picks a language, so it needs no CSRF
// protection; it is HttpOnly, SameSite=Lax, and Secure on https.
func (h *Handler) rememberLanguage(w http.ResponseWriter, r *http.Request) {
	if l := pickedLanguage(r); l != "" {
		http.SetCookie(w, &http.Cookie{
			Name: h.langCookie(), Value: l, Path: "/", MaxAge: langCookieAge,
			HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode,
		})
	}
}

// language is the language of the page answering w's request, decided
// once (see the order above).
func (w *pageWriter) language() string { return w.languageIn(w.r.Context()) }

// languageIn is language, reading the pending request with ctx: the
// mails' composer calls it inside its transactions (notify.WithLanguage).
func (w *pageWriter) languageIn(ctx context.Context) string {
	if w.lang == "" {
		w.lang = w.h.requestLanguage(ctx, w.r)
	}
	return w.lang
}

// requestLanguage decides the language of r (see the order above), reading
// the pending request with ctx.
func (h *Handler) requestLanguage(ctx context.Context, r *http.Request) string {
	if l := pickedLanguage(r); l != "" {
		return l
	}
	req := validReq(r.URL.Query().Get("req"))
	if req == "" && r.PostForm != nil {
		req = validReq(r.PostForm.Get("req"))
	}
	if req != "" {
		if l := h.uiLocales(ctx, req); l != "" {
			return l
		}
	}
	if c, err := r.Cookie(h.langCookie()); err == nil && templates.IsLanguage(c.Value) {
		return c.Value
	}
	if l := templates.Match(r.Header.Get("Accept-Language"), true); l != "" {
		return l
	}
	return h.cfg.DefaultLanguage
}

// uiLocales is the best supported language of the ui_locales parameter of
// the pending request req, or "" (none, unknown ones, or no such request).
func (h *Handler) uiLocales(ctx context.Context, req string) string {
	ar, err := h.checkPending(ctx, req)
	if err != nil {
		return ""
	}
	form, err := url.ParseQuery(ar.Form)
	if err != nil {
		return ""
	}
	return templates.Match(form.Get("ui_locales"), false)
}

// langOf is the language of the page written to w.
func (h *Handler) langOf(w http.ResponseWriter) string {
	if pw, ok := w.(*pageWriter); ok {
		return pw.language()
	}
	return h.cfg.DefaultLanguage
}

// madeInGo are the fields of page values that hold messages made in Go
// (English, translated by templates.Translate); the rest are names,
// addresses and other values shown as they are.
var madeInGo = map[string]bool{
	"Title": true, "Message": true, "LinkText": true, "Error": true, "Notice": true,
	"Wait": true, "RememberFor": true, "Since": true, "LastUsed": true, "Until": true,
}

// deviceTypes are the page types whose Name is a device named in words
// ("Chrome on Linux").
var deviceTypes = map[reflect.Type]bool{
	reflect.TypeFor[templates.AccountSession](): true,
	reflect.TypeFor[templates.AccountDevice]():  true,
}

// localize returns a copy of the page value data with its Go-made messages
// in lang (the Errors maps' values and the lists' entries too).
func localize(lang string, data any) any {
	if lang == "en" || data == nil {
		return data
	}
	v := reflect.ValueOf(data)
	if v.Kind() != reflect.Struct {
		return data
	}
	c := reflect.New(v.Type()).Elem()
	c.Set(v)
	localizeStruct(lang, c)
	return c.Interface()
}

func localizeStruct(lang string, v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if !f.IsExported() {
			continue
		}
		switch {
		case fv.Kind() == reflect.String && (madeInGo[f.Name] || f.Name == "Name" && deviceTypes[t]):
			fv.SetString(templates.Translate(lang, fv.String()))
		case fv.Kind() == reflect.String && strings.HasSuffix(f.Name, "Date"):
			// A date in words for a title attribute (dateWords).
			fv.SetString(templates.LocalDate(lang, fv.String()))
		case fv.Kind() == reflect.Map && f.Name == "Errors" && fv.Type() == reflect.TypeFor[map[string]string]():
			if fv.IsNil() {
				continue
			}
			m := make(map[string]string, fv.Len())
			for k, msg := range fv.Interface().(map[string]string) {
				m[k] = templates.Translate(lang, msg)
			}
			fv.Set(reflect.ValueOf(m))
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			if fv.IsNil() {
				continue
			}
			s := reflect.MakeSlice(fv.Type(), fv.Len(), fv.Len())
			reflect.Copy(s, fv)
			for j := range s.Len() {
				localizeStruct(lang, s.Index(j))
			}
			fv.Set(s)
		}
	}
}
