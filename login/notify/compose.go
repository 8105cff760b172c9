package notify

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"strings"
	"sync"
	texttemplate "text/template"

	"github.com/torii-idp/torii/templates"
)

var (
	loadOnce  sync.Once
	textTmpl  *texttemplate.Template
	htmlTmpl  *htmltemplate.Template
	errLoaded error
)

// Compose renders the message called name (login_code, verify_email,
// verify_phone, register_exists, password_reset, invite, password_changed) with
// data: its subject, plain text and, for mails, HTML (empty for SMS-only
// messages). HTML is escaped by html/template.
func Compose(name string, data any) (subject, text, html string, err error) {
	loadOnce.Do(func() { textTmpl, htmlTmpl, errLoaded = templates.Mail() })
	if errLoaded != nil {
		return "", "", "", fmt.Errorf("notify: load templates: %w", errLoaded)
	}
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
