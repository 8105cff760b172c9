package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/torii-idp/torii/templates"
)

// TORII_ACCENT_COLOR is checked with the WCAG formula against the page
// backgrounds of both themes; each refusal says why, exactly.
func TestCheckAccent(t *testing.T) {
	tests := []struct {
		accent, label, problem string
	}{
		{"#2563eb", "#ffffff", ""},
		{"#2563EB", "#ffffff", ""},
		{"#c2410c", "#ffffff", ""},
		{"#ffff00", "", "#ffff00 has a contrast of 1.07:1 with the light page background #ffffff; WCAG AA needs 3:1 for buttons on both themes (e.g. #2563eb)"},
		{"#1d4ed8", "", "#1d4ed8 has a contrast of 2.58:1 with the dark page background #161b22; WCAG AA needs 3:1 for buttons on both themes (e.g. #2563eb)"},
		{"blue", "", `"blue" must be a colour written #rrggbb, e.g. #2563eb`},
		{"#12345", "", `"#12345" must be a colour written #rrggbb, e.g. #2563eb`},
		{"#12345g", "", `"#12345g" must be a colour written #rrggbb, e.g. #2563eb`},
	}
	for _, tc := range tests {
		label, problem := checkAccent(tc.accent)
		if label != tc.label || problem != tc.problem {
			t.Errorf("checkAccent(%q) = %q, %q; want %q, %q", tc.accent, label, problem, tc.label, tc.problem)
		}
	}
	if got, want := contrast("#ffffff", "#000000"), 21.0; got != want {
		t.Errorf("contrast(white, black) = %v, want %v", got, want)
	}
}

// The stylesheet's colour pairs keep WCAG AA contrast in the light and the
// dark theme: text 4.5:1, component boundaries and focus 3:1 (issue 13).
func TestThemeContrast(t *testing.T) {
	css, err := fs.ReadFile(templates.Static(), "style.css")
	if err != nil {
		t.Fatal(err)
	}
	light, dark, ok := strings.Cut(string(css), "@media (prefers-color-scheme: dark)")
	if !ok {
		t.Fatal("style.css has no dark theme")
	}
	prop := regexp.MustCompile(`--([a-z-]+):\s*(#[0-9a-f]{6});`)
	themes := map[string]map[string]string{"light": {}, "dark": {}}
	for name, text := range map[string]string{"light": light, "dark": dark} {
		if name == "dark" {
			text, _, _ = strings.Cut(text, "\n}\n")
		}
		for _, m := range prop.FindAllStringSubmatch(text, -1) {
			themes[name][m[1]] = m[2]
		}
	}
	pairs := []struct {
		fg, bg string
		min    float64
	}{
		{"fg", "surface", aaText}, {"fg", "bg", aaText}, {"muted", "surface", aaText}, {"link", "surface", aaText},
		{"link", "soft", aaText}, {"on-accent", "accent", aaText}, {"on-accent", "accent-hover", aaText},
		{"error", "surface", aaText}, {"error", "error-bg", aaText}, {"notice", "notice-bg", aaText},
		{"accent", "surface", aaComponent}, {"accent", "bg", aaComponent}, {"input-border", "surface", aaComponent},
		{"focus", "surface", aaComponent}, {"focus", "bg", aaComponent},
	}
	for theme, colours := range themes {
		for _, p := range pairs {
			fg, bg := colours[p.fg], colours[p.bg]
			if fg == "" || bg == "" {
				t.Errorf("%s theme: --%s or --%s missing", theme, p.fg, p.bg)
				continue
			}
			if c := contrast(fg, bg); c < p.min {
				t.Errorf("%s theme: --%s %s on --%s %s = %.2f:1, want at least %.1f:1", theme, p.fg, fg, p.bg, bg, c, p.min)
			}
		}
	}
	// The backgrounds checkAccent measures against are the stylesheet's.
	for _, b := range themeBackgrounds {
		found := false
		for _, colours := range themes {
			found = found || colours["surface"] == b.hex || colours["bg"] == b.hex
		}
		if !found {
			t.Errorf("themeBackgrounds has %s %s, not in style.css", b.name, b.hex)
		}
	}
}

// TORII_LOGO_FILE: a raster image is read; anything else is refused with
// the reason.
func TestReadLogo(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, body []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	png := write("logo.png", rpLogo())
	svg := write("logo.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`))
	empty := write("empty.png", nil)
	big := write("big.png", append(rpLogo(), make([]byte, maxLogoBytes)...))
	for _, tc := range []struct {
		name, path, ctype, problem string
	}{
		{"png", png, "image/png", ""},
		{"svg", svg, "", fmt.Sprintf("%q is text/plain; charset=utf-8, not a PNG, JPEG, WebP or GIF image", svg)},
		{"empty", empty, "", fmt.Sprintf("%q is empty", empty)},
		{"too large", big, "", fmt.Sprintf("%q is larger than 256 KiB", big)},
		{"a directory", dir, "", fmt.Sprintf("cannot read %q: read %s: is a directory", dir, dir)},
	} {
		body, ctype, problem := readLogo(tc.path)
		if ctype != tc.ctype || problem != tc.problem || (problem == "" && len(body) == 0) {
			t.Errorf("%s: readLogo = %d bytes, %q, %q; want %q, %q", tc.name, len(body), ctype, problem, tc.ctype, tc.problem)
		}
	}
}
