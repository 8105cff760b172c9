package login

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/torii-idp/torii/templates"
)

// notMessages are the calls whose string arguments are never shown on a
// page: logs, errors for the logs, headers, audit records.
var notMessages = map[string]bool{
	"Errorf": true, "New": true, "Set": true, "Add": true, "Get": true, "Del": true,
	"Info": true, "Warn": true, "Debug": true, "Error": true,
	"InfoContext": true, "WarnContext": true, "DebugContext": true, "ErrorContext": true,
	"Handle": true, "HandleFunc": true, "Methods": true, "Replace": true, "Contains": true,
	"HasPrefix": true, "HasSuffix": true, "Header": true, "Cookie": true,
	"has": true, // user-agent tokens
}

// words are the pieces made of a number and a unit, or a browser's brand:
// TestGoWordsTranslated checks them with real values.
var words = regexp.MustCompile(`^(Xyz (Xyzs|ago|days|hours|minutes|seconds)|Samsung Internet)$`)

// goMessages finds the sentences the Go code of the given files makes for
// people: string literals (and + chains of them, and fmt.Sprintf formats)
// that start with an upper-case letter and have a space, outside the calls
// in notMessages. A value that is not a literal stands as "Xyz", a
// humanWait(…) as "4 minutes".
func goMessages(t *testing.T, patterns ...string) []string {
	t.Helper()
	var files []string
	for _, p := range patterns {
		m, err := filepath.Glob(p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	fset := token.NewFileSet()
	var msgs []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		var visit func(n ast.Node) bool
		visit = func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				fn := ""
				switch f := n.Fun.(type) {
				case *ast.SelectorExpr:
					fn = f.Sel.Name
				case *ast.Ident:
					fn = f.Name
				}
				if notMessages[fn] {
					return false
				}
				if fn == "Sprintf" && len(n.Args) > 0 {
					if s, ok := text(n.Args[0]); ok {
						s = strings.NewReplacer("%d", "8", "%s", "Xyz", "%q", "Xyz").Replace(s)
						msgs = append(msgs, s)
						return false
					}
				}
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && (k.Name == "Type" || k.Name == "Actor") {
					return false
				}
			case *ast.BinaryExpr:
				if n.Op == token.ADD {
					if s, ok := text(n); ok {
						msgs = append(msgs, s)
						return false
					}
				}
			case *ast.BasicLit:
				if s, ok := text(n); ok {
					msgs = append(msgs, s)
				}
			}
			return true
		}
		ast.Inspect(f, visit)
	}
	var out []string
	for _, s := range msgs {
		r := []rune(s)
		if len(r) > 0 && unicode.IsUpper(r[0]) && strings.Contains(s, " ") && !strings.Contains(s, "://") {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// text is the string an expression makes, with non-literals as samples;
// ok is false when it has no string literal.
func text(e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		a, okA := text(e.X)
		b, okB := text(e.Y)
		if !okA && !okB {
			return "", false
		}
		if !okA {
			a = sample(e.X)
		}
		if !okB {
			b = sample(e.Y)
		}
		return a + b, true
	case *ast.ParenExpr:
		return text(e.X)
	}
	return "", false
}

func sample(e ast.Expr) string {
	if c, ok := e.(*ast.CallExpr); ok {
		if id, ok := c.Fun.(*ast.Ident); ok && id.Name == "humanWait" {
			return "4 minutes"
		}
	}
	return "Xyz"
}

// Every sentence the pages' Go code (login and login/account) makes has a
// catalogue entry, so that it is shown in every language.
func TestGoMessagesHaveKeys(t *testing.T) {
	msgs := goMessages(t, "*.go", "account/*.go")
	if len(msgs) < 80 {
		t.Fatalf("found only %d messages: the test's search is broken", len(msgs))
	}
	for _, s := range msgs {
		if !words.MatchString(s) && !templates.IsKnownMessage(s) {
			t.Errorf("no catalogue key for %q", s)
		}
	}
}

// The words made in Go (durations, relative times, device names) are
// translated, units and all.
func TestGoWordsTranslated(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	words := []string{
		humanWait(time.Second), humanWait(30 * time.Second), humanWait(time.Minute), humanWait(4 * time.Minute),
		relativeTime(now, now), relativeTime(now, now.Add(-time.Minute)), relativeTime(now, now.Add(-5*time.Minute)),
		relativeTime(now, now.Add(-time.Hour)), relativeTime(now, now.Add(-2*time.Hour)), relativeTime(now, now.Add(-30*time.Hour)),
		relativeTime(now, now.Add(-72*time.Hour)), relativeTime(now, now.Add(-40*24*time.Hour)),
		relativeTime(now, now.Add(time.Minute)), relativeTime(now, now.Add(5*time.Minute)), relativeTime(now, now.Add(time.Hour)),
		relativeTime(now, now.Add(3*time.Hour)), relativeTime(now, now.Add(24*time.Hour)), relativeTime(now, now.Add(30*24*time.Hour)),
		lifetimeWords(24 * time.Hour), lifetimeWords(720 * time.Hour), lifetimeWords(time.Hour), lifetimeWords(5 * time.Hour),
		deviceName(""), deviceName("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"), deviceName("Mozilla/5.0 (X11; Linux x86_64)"),
		deviceName("Mozilla/5.0 Chrome/120.0"),
	}
	for _, w := range words {
		if !templates.IsKnownMessage(w) {
			t.Errorf("no catalogue key for %q", w)
		}
		for _, lang := range templates.Languages[1:] {
			got := templates.Translate(lang, w)
			// French says minutes as English does; German and Japanese never.
			if strings.ContainsAny(got, "{}") || (lang == "de" || lang == "ja") && got == w {
				t.Errorf("%s: %q is not translated (%q)", lang, w, got)
			}
		}
	}
	// A value inside a pattern is translated too: the wait in a message.
	if got, want := templates.Translate("de", "Too many wrong codes. Try again in 4 minutes."), "Zu viele falsche Codes. Versuchen Sie es in 4 Minuten erneut."; got != want {
		t.Errorf("Translate(de) = %q, want %q", got, want)
	}
	if got, want := templates.Translate("ja", "Chrome on Linux"), "Linux の Chrome"; got != want {
		t.Errorf("Translate(ja) = %q, want %q", got, want)
	}
	if got := templates.Translate("de", "alice@example.com"); got != "alice@example.com" {
		t.Errorf("a value that is no message changed: %q", got)
	}
}
