package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The page backgrounds of the two themes (templates/static/style.css: --bg
// and --surface, light and dark) an accent colour must stand out on.
var themeBackgrounds = []struct{ name, hex string }{
	{"light page background", "#ffffff"},
	{"light page surround", "#f6f8fa"},
	{"dark page background", "#161b22"},
	{"dark page surround", "#0d1117"},
}

// WCAG 2.1 AA: 4.5:1 for text, 3:1 for user-interface components (1.4.11).
const (
	aaText      = 4.5
	aaComponent = 3.0
)

// maxLogoBytes bounds TORII_LOGO_FILE.
const maxLogoBytes = 256 << 10

// logoTypes are the image types TORII_LOGO_FILE may hold, by their sniffed
// content type: no SVG (it can carry script).
var logoTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/webp": true, "image/gif": true}

// luminance is the WCAG relative luminance of a #rrggbb colour.
func luminance(hex string) float64 {
	v, _ := strconv.ParseUint(strings.TrimPrefix(hex, "#"), 16, 32)
	ch := func(c uint64) float64 {
		s := float64(c) / 255
		if s <= 0.03928 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(v>>16&0xff) + 0.7152*ch(v>>8&0xff) + 0.0722*ch(v&0xff)
}

// contrast is the WCAG contrast ratio of two #rrggbb colours (1 to 21).
func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// validHexColor reports whether s is #rrggbb.
func validHexColor(s string) bool {
	if len(s) != 7 || s[0] != '#' {
		return false
	}
	_, err := strconv.ParseUint(s[1:], 16, 32)
	return err == nil
}

// checkAccent checks TORII_ACCENT_COLOR: a #rrggbb colour for the buttons
// of both themes. The buttons must stand out on every page background (3:1,
// WCAG 1.4.11) and their label, white or black, must be readable on it
// (4.5:1). It returns the label colour, or the first problem.
func checkAccent(accent string) (label string, problem string) {
	if !validHexColor(accent) {
		return "", fmt.Sprintf("%q must be a colour written #rrggbb, e.g. #2563eb", accent)
	}
	accent = strings.ToLower(accent)
	for _, bg := range themeBackgrounds {
		if c := contrast(accent, bg.hex); c < aaComponent {
			return "", fmt.Sprintf("%s has a contrast of %.2f:1 with the %s %s; WCAG AA needs %.0f:1 for buttons on both themes (e.g. #2563eb)",
				accent, c, bg.name, bg.hex, aaComponent)
		}
	}
	label = "#ffffff"
	if contrast(accent, "#000000") > contrast(accent, label) {
		label = "#000000"
	}
	if c := contrast(accent, label); c < aaText {
		return "", fmt.Sprintf("%s leaves its button labels (%s) a contrast of %.2f:1; WCAG AA needs %.1f:1", accent, label, c, aaText)
	}
	return label, ""
}

// themeCSS is the stylesheet of an accent colour checked by checkAccent.
func themeCSS(accent, label string) string {
	return fmt.Sprintf(":root { --accent: %[1]s; --accent-hover: %[1]s; --on-accent: %[2]s; }\n"+
		"@media (prefers-color-scheme: dark) { :root { --accent: %[1]s; --accent-hover: %[1]s; --on-accent: %[2]s; } }\n",
		strings.ToLower(accent), label)
}

// readLogo reads TORII_LOGO_FILE and returns its bytes and content type,
// or the problem.
func readLogo(path string) ([]byte, string, string) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Sprintf("cannot read %q: %v", path, err)
	}
	defer f.Close()
	body := make([]byte, maxLogoBytes+1)
	n, err := io.ReadFull(f, body)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, "", fmt.Sprintf("cannot read %q: %v", path, err)
	}
	body = body[:n]
	switch {
	case n == 0:
		return nil, "", fmt.Sprintf("%q is empty", path)
	case n > maxLogoBytes:
		return nil, "", fmt.Sprintf("%q is larger than %d KiB", path, maxLogoBytes>>10)
	}
	ctype := http.DetectContentType(body)
	if !logoTypes[ctype] {
		return nil, "", fmt.Sprintf("%q is %s, not a PNG, JPEG, WebP or GIF image", path, ctype)
	}
	return body, ctype, ""
}

// checkSiteName checks TORII_SITE_NAME: short text without control
// characters.
func checkSiteName(s string) string {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > 60 || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "must be text of at most 60 characters without control characters"
	}
	return ""
}
