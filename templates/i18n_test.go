package templates

import (
	"bytes"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var placeholderRe = regexp.MustCompile(`\{[a-zA-Z0-9_]+\}`)

// placeholders are the distinct {names} of a message, sorted.
func placeholders(msg string) []string {
	ps := placeholderRe.FindAllString(msg, -1)
	slices.Sort(ps)
	return slices.Compact(ps)
}

// markup are the tags of a message, sorted (<strong>, </strong>, <code>…).
var tagRe = regexp.MustCompile(`</?[a-z]+>`)

// Every language has every English key, no other, with the same
// placeholders and the same markup, and no empty message.
func TestCataloguesComplete(t *testing.T) {
	cats, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	en := cats["en"]
	if len(en) == 0 {
		t.Fatal("the English catalogue is empty")
	}
	for _, lang := range Languages {
		c := cats[lang]
		for _, key := range slices.Sorted(maps.Keys(en)) {
			msg, ok := c[key]
			switch {
			case !ok:
				t.Errorf("%s: missing key %s", lang, key)
				continue
			case strings.TrimSpace(msg) == "":
				t.Errorf("%s: %s is empty", lang, key)
			}
			if got, want := placeholders(msg), placeholders(en[key]); !slices.Equal(got, want) {
				t.Errorf("%s: %s has placeholders %v, English %v", lang, key, got, want)
			}
			got, want := tagRe.FindAllString(msg, -1), tagRe.FindAllString(en[key], -1)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s: %s has markup %v, English %v", lang, key, got, want)
			}
		}
		for key := range c {
			if _, ok := en[key]; !ok {
				t.Errorf("%s: key %s is not in the English catalogue", lang, key)
			}
		}
	}
}

// Every key the pages use is in the catalogue (t "key" and th "key").

func TestPagesUseKnownKeys(t *testing.T) {
	names, err := fs.Glob(files, "*.html")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range names {
		b, err := fs.ReadFile(files, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`\bth? "([a-z0-9_.]+)"`).FindAllSubmatch(b, -1) {
			n++
			if _, ok := catalogs["en"][string(m[1])]; !ok {
				t.Errorf("%s uses %s, which the English catalogue lacks", name, m[1])
			}
		}
	}
	if n < 100 {
		t.Errorf("found only %d uses of t and th: the test's pattern is broken", n)
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		prefs  string
		accept bool
		want   string
	}{
		{"de", false, "de"},
		{"ja de", false, "ja"},
		{"nl de", false, "de"},
		{"fr-CA", false, "fr"},
		{"es-419", false, "es"},
		{"nl", false, ""},
		{"", false, ""},
		{"!!", false, ""},
		{"de-CH,de;q=0.9", true, "de"},
		{"en;q=0.1, ja;q=0.9", true, "ja"},
		{"pt-BR, es;q=0.5", true, "es"},
		{"*", true, ""},
		{"zz;;;", true, ""},
		{"nl", true, ""},
	}
	for _, tc := range tests {
		if got := Match(tc.prefs, tc.accept); got != tc.want {
			t.Errorf("Match(%q, %v) = %q, want %q", tc.prefs, tc.accept, got, tc.want)
		}
	}
}

// Each page, in each language, says so in <html lang>, carries the
// picker when a GET shows it again, and shows none of the English page
// texts (outside the values the page was given).
func TestPagesInEveryLanguage(t *testing.T) {
	loc, err := LocalizedPages(Brand{})
	if err != nil {
		t.Fatal(err)
	}
	// English texts that must not appear in another language's page.
	english := []string{"Sign in", "Password", "Send a new code", "Email address", "Your account", "Continue",
		"There is a problem", "Language", "Create an account", "Back to sign-in", "Allow", "Deny", "Sign out"}
	for _, lang := range Languages {
		for name, data := range samples {
			t.Run(lang+"/"+name, func(t *testing.T) {
				var buf bytes.Buffer
				if err := loc.In(lang).ExecuteTemplate(&buf, name, data); err != nil {
					t.Fatal(err)
				}
				page := buf.String()
				if !strings.Contains(page, `<html lang="`+lang+`">`) {
					t.Errorf("lacks <html lang=%q>", lang)
				}
				if pickerOf(data) != nil && !strings.Contains(page, `class="lang-picker"`) {
					t.Error("lacks the language picker")
				}
				// The catalogue's texts read as the pages' literal texts did: an
				// apostrophe stays one (th, not t, for texts that have one).
				if strings.Contains(page, "&#39;") {
					t.Error("an apostrophe of a catalogue text is escaped as &#39;")
				}
				if lang == "en" || name == "error.html" || name == "message.html" { // their texts come from Go
					return
				}
				text := visibleText(page)
				for _, s := range english {
					if regexp.MustCompile(`\b` + s + `\b`).MatchString(text) {
						t.Errorf("shows the English %q:\n%s", s, text)
					}
				}
			})
		}
	}
}

var (
	scriptStyleRe = regexp.MustCompile(`(?s)<(script|style|option)[^>]*>.*?</(script|style|option)>`)
	tagsRe        = regexp.MustCompile(`<[^>]*>`)
)

// visibleText is a page's text without tags, attributes and the picker's
// language names (which are in their own language on purpose); the sample
// values (English on purpose) are left: the english list avoids them.
func visibleText(page string) string {
	return tagsRe.ReplaceAllString(scriptStyleRe.ReplaceAllString(page, ""), " ")
}

// The pickers go back to the page's GET with what it needs.
func TestPickers(t *testing.T) {
	tests := []struct {
		page any
		want *Picker
	}{
		{LoginPage{Req: "r1"}, &Picker{Path: "/login", Fields: map[string]string{"req": "r1"}}},
		{LoginPage{}, &Picker{Path: "/login", Fields: map[string]string{}}},
		{CodePage{Req: "r1", Channel: "sms"}, &Picker{Path: "/login/code", Fields: map[string]string{"req": "r1", "via": "sms"}}},
		{ResetPage{Token: "tok"}, &Picker{Path: "/reset", Fields: map[string]string{"token": "tok"}}},
		{ConsentPage{Req: "r1"}, &Picker{Path: "/consent", Fields: map[string]string{"req": "r1"}}},
		{AccountPage{}, &Picker{Path: "/account", Fields: map[string]string{}}},
		{ErrorPage{}, nil},
		{MessagePage{}, nil},
		{FederatedLinkPage{}, nil},
	}
	for _, tc := range tests {
		got := pickerOf(tc.page)
		if (got == nil) != (tc.want == nil) || got != nil && (got.Path != tc.want.Path || !maps.Equal(got.Fields, tc.want.Fields)) {
			t.Errorf("pickerOf(%T) = %+v, want %+v", tc.page, got, tc.want)
		}
	}
}

// T fills placeholders and falls back to English, then to the key.
func TestT(t *testing.T) {
	if got := T("de", "consent.title", "app", "Beispiel"); !strings.Contains(got, "Beispiel") || strings.Contains(got, "{app}") {
		t.Errorf("T(de, consent.title) = %q", got)
	}
	if got := T("xx", "login.title"); got != "Sign in" {
		t.Errorf("T(xx, login.title) = %q, want the English", got)
	}
	if got := T("en", "consent.title", "app", "<b>"); got != "Allow <b> to use your account?" {
		t.Errorf("T leaves escaping to the template: %q", got)
	}
}

// Dates written by the Go code in English are written in each language's
// own layout wherever a message carries them ({date}, {when}) and in
// title attributes (LocalDate).
func TestLocalDate(t *testing.T) {
	tests := []struct {
		lang, in, want string
	}{
		{"en", "2 Jan 2026", "2 Jan 2026"},
		{"de", "2 Jan 2026", "2.1.2026"},
		{"fr", "2 Jan 2026", "02/01/2026"},
		{"es", "2 Jan 2026", "2/1/2026"},
		{"ja", "2 Jan 2026", "2026年1月2日"},
		{"de", "7 Dec 2026 14:05 UTC", "7.12.2026, 14:05 UTC"},
		{"fr", "7 Dec 2026 14:05 UTC", "07/12/2026 à 14:05 UTC"},
		{"ja", "7 Dec 2026 14:05 UTC", "2026年12月7日 14:05 UTC"},
		{"de", "yesterday", "yesterday"},
		{"de", "", ""},
	}
	for _, tc := range tests {
		if got := LocalDate(tc.lang, tc.in); got != tc.want {
			t.Errorf("LocalDate(%s, %q) = %q, want %q", tc.lang, tc.in, got, tc.want)
		}
	}
	if got := T("de", "mail.password_changed.changed", "when", "7 Dec 2026 14:05 UTC"); !strings.Contains(got, "7.12.2026, 14:05 UTC") {
		t.Errorf("German password-changed mail says %q, want the date as 7.12.2026, 14:05 UTC", got)
	}
	if got := Translate("ja", "on 2 Jan 2026"); !strings.Contains(got, "2026年1月2日") || strings.Contains(got, "Jan") {
		t.Errorf("Translate(ja, on 2 Jan 2026) = %q, want the Japanese date", got)
	}
}
