package notify_test

import (
	"context"
	"strings"
	"testing"

	"github.com/torii-idp/torii/login/notify"
)

// One mail in two languages: the sign-in code in German and Japanese, its
// subject, text and HTML (with <html lang>), the values filled in.
func TestComposeInLanguages(t *testing.T) {
	data := struct {
		Code, Name string
		Minutes    int
	}{"123456", "Ada", 10}
	tests := []struct {
		lang                     string
		subject, text, html, not string
	}{
		{"de", "Ihr Anmeldecode", "Ihr Torii-Anmeldecode lautet 123456. Er ist 10 Minuten lang gültig.", `<html lang="de">`, "expires"},
		{"ja", "ログイン用の確認コード", "Torii のログイン用確認コードは 123456 です。有効期間は 10 分です。", `<html lang="ja">`, "expires"},
		{"en", "Your sign-in code", "Your Torii sign-in code is 123456. It expires in 10 minutes.", `<html lang="en">`, "lautet"},
		{"nl", "Your sign-in code", "Your Torii sign-in code is 123456.", `<html lang="en">`, "lautet"}, // unknown: English
	}
	for _, tc := range tests {
		subject, text, html, err := notify.ComposeIn(tc.lang, "login_code", data)
		if err != nil {
			t.Fatal(err)
		}
		if subject != tc.subject || !strings.Contains(text, tc.text) || !strings.Contains(html, tc.html) || !strings.Contains(html, "123456") {
			t.Errorf("%s: subject %q, text %q, html %q", tc.lang, subject, text, html)
		}
		if strings.Contains(text+html, tc.not) {
			t.Errorf("%s: mail has %q of another language", tc.lang, tc.not)
		}
	}
	// A link in an HTML mail stays one, escaped.
	_, text, html, err := notify.ComposeIn("fr", "verify_email", struct {
		Code, Name, Link string
		Minutes          int
	}{"654321", "Zoë", "https://id.example/verify?token=a&b", 30})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html, `<a href="https://id.example/verify?token=a&amp;b">confirmez votre adresse avec ce lien</a>`) ||
		!strings.Contains(html, "Bonjour Zoë,") || !strings.Contains(text, "Votre code de confirmation est 654321.") {
		t.Errorf("French verification mail:\n%s\n%s", text, html)
	}
}

// The language of a context: the request's, else the default, else English.
func TestLanguageOf(t *testing.T) {
	ctx := context.Background()
	if got := notify.LanguageOf(ctx, "fr"); got != "fr" {
		t.Errorf("no language: %q, want the default fr", got)
	}
	if got := notify.LanguageOf(ctx, ""); got != "en" {
		t.Errorf("no language, no default: %q, want en", got)
	}
	if got := notify.LanguageOf(notify.WithLanguage(ctx, func(context.Context) string { return "ja" }), "fr"); got != "ja" {
		t.Errorf("ja request: %q", got)
	}
	if got := notify.LanguageOf(notify.WithLanguage(ctx, func(context.Context) string { return "xx" }), "de"); got != "de" {
		t.Errorf("unknown request language: %q, want the default de", got)
	}
}
