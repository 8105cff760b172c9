package templates

import (
	"embed"
	htmltemplate "html/template"
	texttemplate "text/template"
)

//go:embed mail/*.txt mail/*.html
var mailFiles embed.FS

// Mail returns the mail and SMS templates: for a message called NAME,
// "NAME.subject" and "NAME.text" in the text set and "NAME.html" in the
// HTML set (absent for SMS-only messages).
func Mail() (*texttemplate.Template, *htmltemplate.Template, error) {
	text, err := texttemplate.ParseFS(mailFiles, "mail/*.txt")
	if err != nil {
		return nil, nil, err
	}
	html, err := htmltemplate.ParseFS(mailFiles, "mail/*.html")
	if err != nil {
		return nil, nil, err
	}
	return text, html, nil
}
