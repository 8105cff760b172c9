package templates

import (
	"embed"
	"fmt"
	"html/template"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/language"
	"gopkg.in/yaml.v3"
)

// Languages are the languages of the pages, English (the catalogue every
// other is checked against) first. Each has a catalogue,
// locales/LANG.yaml: a flat map from a message key to its text, where
// {name} is a placeholder filled by the caller.
var Languages = []string{"en", "de", "fr", "es", "ja"}

// LanguageNames are the languages' names in themselves, for the picker.
var LanguageNames = map[string]string{
	"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español", "ja": "日本語",
}

//go:embed locales/*.yaml
var localeFiles embed.FS

// Catalog is one language's messages by key.
type Catalog map[string]string

var catalogs = func() map[string]Catalog {
	m, err := loadCatalogs()
	if err != nil {
		panic(err) // the embedded catalogues are checked by the tests
	}
	return m
}()

func loadCatalogs() (map[string]Catalog, error) {
	m := map[string]Catalog{}
	for _, lang := range Languages {
		b, err := localeFiles.ReadFile("locales/" + lang + ".yaml")
		if err != nil {
			return nil, err
		}
		c := Catalog{}
		if err := yaml.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("templates: locales/%s.yaml: %w", lang, err)
		}
		m[lang] = c
	}
	return m, nil
}

// Catalogs returns every language's catalogue (for the tests).
func Catalogs() map[string]Catalog { return catalogs }

// IsLanguage reports whether lang is one of Languages.
func IsLanguage(lang string) bool {
	_, ok := LanguageNames[lang]
	return ok
}

var matcher = func() language.Matcher {
	tags := make([]language.Tag, len(Languages))
	for i, l := range Languages {
		tags[i] = language.Make(l)
	}
	return language.NewMatcher(tags)
}()

// Match picks the page language for a list of preferences (ui_locales'
// space-separated tags, or an Accept-Language header with q-values): the
// best supported one, or "" when none is supported (the caller falls back).
func Match(prefs string, acceptLanguage bool) string {
	var tags []language.Tag
	if acceptLanguage {
		t, _, err := language.ParseAcceptLanguage(prefs)
		if err != nil {
			return ""
		}
		tags = t
	} else {
		for _, f := range strings.Fields(prefs) {
			if t, err := language.Parse(f); err == nil {
				tags = append(tags, t)
			}
		}
	}
	if len(tags) == 0 {
		return ""
	}
	_, i, conf := matcher.Match(tags...)
	if conf == language.No {
		return ""
	}
	return Languages[i]
}

var placeholder = regexp.MustCompile(`\{[a-zA-Z0-9_]+\}`)

// T is the message key in lang (English when lang lacks it, the key itself
// when English does too — the tests forbid that), with each {name}
// replaced by the argument following name in args (name, value, name,
// value, …).
func T(lang, key string, args ...any) string {
	return fill(lang, message(lang, key), args, func(s string) string { return s })
}

// The layouts the Go code writes dates in, in English; LocalDate rewrites
// them in a language's own (the catalogues' format.date and
// format.datetime).
const (
	EnglishDate     = "2 Jan 2006"
	EnglishDateTime = "2 Jan 2006 15:04 MST"
)

// dateArgs are the placeholders that carry a date: fill writes them in
// the message's language.
var dateArgs = map[string]bool{"date": true, "when": true}

// LocalDate rewrites s, a date (EnglishDate) or a date and time
// (EnglishDateTime), in lang's layout; anything else, or English, stays
// as it is.
func LocalDate(lang, s string) string {
	if lang == "en" || s == "" {
		return s
	}
	if t, err := time.Parse(EnglishDateTime, s); err == nil {
		return t.Format(message(lang, "format.datetime"))
	}
	if t, err := time.Parse(EnglishDate, s); err == nil {
		return t.Format(message(lang, "format.date"))
	}
	return s
}

// message is the raw text of key in lang.
func message(lang, key string) string {
	if s, ok := catalogs[lang][key]; ok {
		return s
	}
	if s, ok := catalogs["en"][key]; ok {
		return s
	}
	return key
}

func fill(lang, msg string, args []any, esc func(string) string) string {
	if len(args) == 0 {
		return msg
	}
	vals := map[string]string{}
	for i := 0; i+1 < len(args); i += 2 {
		name, v := fmt.Sprint(args[i]), fmt.Sprint(args[i+1])
		if dateArgs[name] {
			v = LocalDate(lang, v)
		}
		vals[name] = esc(v)
	}
	return placeholder.ReplaceAllStringFunc(msg, func(p string) string {
		if v, ok := vals[p[1:len(p)-1]]; ok {
			return v
		}
		return p
	})
}

// translated returns the template functions of lang: t (plain text,
// escaped by the template like any string), th (a message with markup such
// as <strong>, from the catalogue, its arguments escaped) and lang.
func translated(lang string) template.FuncMap {
	return template.FuncMap{
		"t": func(key string, args ...any) string { return T(lang, key, args...) },
		"th": func(key string, args ...any) template.HTML {
			return template.HTML(fill(lang, message(lang, key), args, template.HTMLEscapeString))
		},
		"lang":      func() string { return lang },
		"languages": func() []string { return Languages },
		"langName":  func(l string) string { return LanguageNames[l] },
	}
}

// Localized are the pages parsed once per language.
type Localized struct {
	byLang map[string]*template.Template
}

// LocalizedPages parses every page with the operator's brand, once per
// language.
func LocalizedPages(b Brand) (*Localized, error) {
	base, err := BrandedPages(b)
	if err != nil {
		return nil, err
	}
	l := &Localized{byLang: map[string]*template.Template{}}
	for _, lang := range Languages {
		c, err := base.Clone()
		if err != nil {
			return nil, err
		}
		l.byLang[lang] = c.Funcs(translated(lang))
	}
	return l, nil
}

// In returns the pages in lang (English for an unknown lang).
func (l *Localized) In(lang string) *template.Template {
	if t, ok := l.byLang[lang]; ok {
		return t
	}
	return l.byLang["en"]
}

// Messages made in Go (handlers' errors and notices, validation messages,
// durations, relative times, device names) are English strings: their
// catalogue keys start with "msg.", and Translate finds them by their
// English text — exactly, or by the pattern their {placeholders} make —
// so the code that makes them (and the JSON API, which answers in English)
// needs no language.
type msgPattern struct {
	key   string
	re    *regexp.Regexp
	names []string
	size  int // literal length: longer patterns are tried first
}

var msgByText, msgPatterns = func() (map[string]string, []msgPattern) {
	byText := map[string]string{}
	var pats []msgPattern
	for key, text := range catalogs["en"] {
		if !strings.HasPrefix(key, "msg.") {
			continue
		}
		if !placeholder.MatchString(text) {
			byText[text] = key
			continue
		}
		var b strings.Builder
		var names []string
		size, last := 0, 0
		b.WriteString("^")
		for _, loc := range placeholder.FindAllStringIndex(text, -1) {
			b.WriteString(regexp.QuoteMeta(text[last:loc[0]]))
			size += loc[0] - last
			name := text[loc[0]+1 : loc[1]-1]
			names = append(names, name)
			if name == "n" {
				b.WriteString(`(\d+)`)
			} else {
				b.WriteString(`(.+?)`)
			}
			last = loc[1]
		}
		b.WriteString(regexp.QuoteMeta(text[last:]) + "$")
		size += len(text) - last
		pats = append(pats, msgPattern{key: key, re: regexp.MustCompile(b.String()), names: names, size: size})
	}
	slices.SortFunc(pats, func(a, b msgPattern) int {
		if a.size != b.size {
			return b.size - a.size
		}
		return strings.Compare(a.key, b.key)
	})
	return byText, pats
}()

// nested are the placeholders whose values are themselves Go-made
// messages (a duration in words): Translate translates them too.
var nested = map[string]bool{"wait": true, "span": true, "period": true}

// Translate returns the Go-made English message s in lang: the catalogue's
// text for it, or s unchanged when no "msg." key has that text (names,
// addresses and other values pass through).
func Translate(lang, s string) string {
	if lang == "en" || s == "" {
		return s
	}
	if key, ok := msgByText[s]; ok {
		return message(lang, key)
	}
	for _, p := range msgPatterns {
		m := p.re.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		args := make([]any, 0, 2*len(p.names))
		for i, name := range p.names {
			v := m[i+1]
			if nested[name] {
				v = Translate(lang, v)
			}
			args = append(args, name, v)
		}
		return T(lang, p.key, args...)
	}
	return s
}

// IsKnownMessage reports whether s is a Go-made message the catalogues
// know (for the tests).
func IsKnownMessage(s string) bool {
	if _, ok := msgByText[s]; ok {
		return true
	}
	for _, p := range msgPatterns {
		if p.re.MatchString(s) {
			return true
		}
	}
	return false
}
