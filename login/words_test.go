package login

import (
	"strings"
	"testing"
	"time"

	"github.com/torii-idp/torii/templates"
)

func TestDeviceName(t *testing.T) {
	for _, tc := range []struct{ ua, want string }{
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36", "Chrome on Linux"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0", "Edge on Windows"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari on macOS"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iPhone"},
		{"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/130.0 Mobile/15E148 Safari/604.1", "Chrome on iPad"},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36", "Chrome on Android"},
		{"Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", "Samsung Internet on Android"},
		{"Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0", "Firefox on Linux"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0", "Opera on Windows"},
		{"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36", "Chrome on ChromeOS"},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/130.0.0.0 Safari/537.36", "Chrome on Linux"},
		{"curl/8.5.0", "curl on an unknown system"},
		{"Go-http-client/1.1", "Unknown browser"},
		{"", "Unknown browser"},
		{"<script>alert(1)</script> Windows", "A browser on Windows"},
	} {
		if got := deviceName(tc.ua); got != tc.want {
			t.Errorf("deviceName(%q) = %q, want %q", tc.ua, got, tc.want)
		}
	}
}

func TestRelativeTime(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{now, "just now"},
		{now.Add(-59 * time.Second), "just now"},
		{now.Add(-time.Minute), "1 minute ago"},
		{now.Add(-5*time.Minute - 30*time.Second), "5 minutes ago"},
		{now.Add(-2 * time.Hour), "2 hours ago"},
		{now.Add(-23 * time.Hour), "23 hours ago"},
		{now.Add(-30 * time.Hour), "yesterday"},
		{now.Add(-3 * 24 * time.Hour), "3 days ago"},
		{now.Add(-40 * 24 * time.Hour), "on 28 Oct 2026"},
		{now.Add(30*24*time.Hour - time.Second), "in 30 days"},
		{now.Add(2 * time.Hour), "in 2 hours"},
		{now.Add(90 * time.Second), "in 2 minutes"},
	} {
		if got := relativeTime(now, tc.t); got != tc.want {
			t.Errorf("relativeTime(now, now%+v) = %q, want %q", tc.t.Sub(now), got, tc.want)
		}
	}
}

// The code page's "for 30 days" follows TORII_REMEMBER_DEVICE.
func TestLifetimeWords(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{720 * time.Hour, "30 days"},
		{168 * time.Hour, "7 days"},
		{24 * time.Hour, "1 day"},
		{36 * time.Hour, "36 hours"},
		{time.Hour, "1 hour"},
		{90 * time.Minute, "2 hours"},
		{8760 * time.Hour, "365 days"},
	} {
		if got := lifetimeWords(tc.in); got != tc.want {
			t.Errorf("lifetimeWords(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The account page's dates in words (title attributes) follow the page's
// language.
func TestLocalizeDates(t *testing.T) {
	page := templates.AccountPage{
		Sessions: []templates.AccountSession{{SinceDate: "7 Dec 2026 14:05 UTC", Since: "on 2 Jan 2026"}},
		Devices:  []templates.AccountDevice{{LastUsedDate: "7 Dec 2026 14:05 UTC", UntilDate: "6 Jan 2027 14:05 UTC"}},
	}
	got := localize("de", page).(templates.AccountPage)
	if s := got.Sessions[0]; s.SinceDate != "7.12.2026, 14:05 UTC" || !strings.Contains(s.Since, "2.1.2026") {
		t.Errorf("German session dates = %q, %q", s.SinceDate, s.Since)
	}
	if d := got.Devices[0]; d.LastUsedDate != "7.12.2026, 14:05 UTC" || d.UntilDate != "6.1.2027, 14:05 UTC" {
		t.Errorf("German device dates = %q, %q", d.LastUsedDate, d.UntilDate)
	}
	if page.Sessions[0].SinceDate != "7 Dec 2026 14:05 UTC" {
		t.Error("localize changed the page it was given")
	}
}
