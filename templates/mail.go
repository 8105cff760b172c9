package templates

import (
	"embed"
	htmltemplate "html/template"
	texttemplate "text/template"
)

//go:embed mail/*.txt mail/*.html
var mailFiles embed.FS

// Mail returns the mail and SMS templates in English: for a message called
// NAME, "NAME.subject" and "NAME.text" in the text set and "NAME.html" in
// the HTML set (absent for SMS-only messages).
func Mail() (*texttemplate.Template, *htmltemplate.Template, error) { return MailIn("en") }

// MailIn returns the mail and SMS templates in lang (one of Languages;
// English for another), with the pages' t, th and lang functions.
func MailIn(lang string) (*texttemplate.Template, *htmltemplate.Template, error) {
	if !IsLanguage(lang) {
		lang = "en"
	}
	funcs := translated(lang)
	text, err := texttemplate.New("mail").Funcs(texttemplate.FuncMap(funcs)).ParseFS(mailFiles, "mail/*.txt")
	if err != nil {
		return nil, nil, err
	}
	html, err := htmltemplate.New("mail").Funcs(funcs).ParseFS(mailFiles, "mail/*.html")
	if err != nil {
		return nil, nil, err
	}
	return text, html, nil
}
