package notify

import (
	"bytes"
	"context"
	"fmt"
	htmltemplate "html/template"
	"strings"
	"sync"
	texttemplate "text/template"

	"github.com/torii-idp/torii/templates"
)

type mailTemplates struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

var (
	loadOnce  sync.Once
	byLang    map[string]mailTemplates
	errLoaded error
)

func load() {
	byLang = map[string]mailTemplates{}
	for _, lang := range templates.Languages {
		text, html, err := templates.MailIn(lang)
		if err != nil {
			errLoaded = err
			return
		}
		byLang[lang] = mailTemplates{text, html}
	}
}

// languageKey is the context key of the language of the request that
// causes a message.
type languageKey struct{}

// WithLanguage returns ctx carrying the language of the messages composed
// for it: lang is called (once needed) to decide it, as the pages do, with
// the context of the caller of LanguageOf (which may be a transaction's:
// lang must use it for any query, never ctx itself, or it would wait for a
// second connection that SQLite does not have).
func WithLanguage(ctx context.Context, lang func(context.Context) string) context.Context {
	return context.WithValue(ctx, languageKey{}, lang)
}

// LanguageOf is the language ctx carries (WithLanguage), or def.
func LanguageOf(ctx context.Context, def string) string {
	if f, ok := ctx.Value(languageKey{}).(func(context.Context) string); ok {
		if l := f(ctx); templates.IsLanguage(l) {
			return l
		}
	}
	if templates.IsLanguage(def) {
		return def
	}
	return "en"
}

// Compose renders the message called name in English; see ComposeIn.
func Compose(name string, data any) (subject, text, html string, err error) {
	return ComposeIn("en", name, data)
}

// ComposeIn renders the message called name (login_code, verify_email,
// verify_phone, register_exists, password_reset, invite, password_changed,
// change_email, email_claimed, email_changed) in lang (templates.Languages;
// English for another) with data: its subject, plain text and, for mails,
// HTML (empty for SMS-only messages). HTML is escaped by html/template.
func ComposeIn(lang, name string, data any) (subject, text, html string, err error) {
	loadOnce.Do(load)
	if errLoaded != nil {
		return "", "", "", fmt.Errorf("notify: load templates: %w", errLoaded)
	}
	t, ok := byLang[lang]
	if !ok {
		t = byLang["en"]
	}
	textTmpl, htmlTmpl := t.text, t.html
	var b bytes.Buffer
	if err := textTmpl.ExecuteTemplate(&b, name+".subject", data); err != nil {
		return "", "", "", fmt.Errorf("notify: render %s: %w", name, err)
	}
	subject = strings.TrimSpace(b.String())
	b.Reset()
	if err := textTmpl.ExecuteTemplate(&b, name+".text", data); err != nil {
		return "", "", "", fmt.Errorf("notify: render %s: %w", name, err)
	}
	text = strings.TrimSpace(b.String()) + "\n"
	if htmlTmpl.Lookup(name+".html") != nil {
		b.Reset()
		if err := htmlTmpl.ExecuteTemplate(&b, name+".html", data); err != nil {
			return "", "", "", fmt.Errorf("notify: render %s: %w", name, err)
		}
		html = b.String()
	}
	return subject, text, html, nil
}
