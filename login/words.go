package login

import (
	"strconv"
	"strings"
	"time"

	"github.com/torii-idp/torii/templates"
)

// deviceName names a browser in words from its user agent, as "Chrome on
// Linux" or "Safari on iPhone", for the account page. It only looks for
// well-known tokens in the (stored, cleaned, at most 512 bytes) string and
// never echoes any of it: what it does not recognise is "Unknown browser"
// or "… on an unknown system".
func deviceName(ua string) string {
	browser, system := browserOf(ua), systemOf(ua)
	switch {
	case browser == "" && system == "":
		return "Unknown browser"
	case browser == "":
		return "A browser on " + system
	case system == "":
		return browser + " on an unknown system"
	}
	return browser + " on " + system
}

// browserOf recognises the browser. Order matters: Edge, Opera and Samsung
// Internet also say Chrome and Safari; Chrome also says Safari.
func browserOf(ua string) string {
	has := func(s string) bool { return strings.Contains(ua, s) }
	switch {
	case has("Edg/"), has("EdgA/"), has("EdgiOS/"), has("Edge/"):
		return "Edge"
	case has("OPR/"), has("Opera"):
		return "Opera"
	case has("SamsungBrowser/"):
		return "Samsung Internet"
	case has("Firefox/"), has("FxiOS/"):
		return "Firefox"
	case has("Chromium/"):
		return "Chromium"
	case has("CriOS/"), has("Chrome/"):
		return "Chrome"
	case has("Safari/") && (has("Version/") || has("iPhone") || has("iPad")):
		return "Safari"
	case has("curl/"):
		return "curl"
	}
	return ""
}

// systemOf recognises the operating system or device. Android and Chrome OS
// also say Linux; iOS also says Mac OS X.
func systemOf(ua string) string {
	has := func(s string) bool { return strings.Contains(ua, s) }
	switch {
	case has("iPhone"):
		return "iPhone"
	case has("iPad"):
		return "iPad"
	case has("Android"):
		return "Android"
	case has("CrOS"):
		return "ChromeOS"
	case has("Windows"):
		return "Windows"
	case has("Macintosh"), has("Mac OS X"):
		return "macOS"
	case has("Linux"), has("X11"):
		return "Linux"
	}
	return ""
}

// relativeTime says when t is from now in words: "just now", "5 minutes
// ago", "2 hours ago", "yesterday", "3 days ago", or the date beyond a
// month; in the future "in 2 hours", "in 30 days".
func relativeTime(now, t time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		// A deadline: to the nearest unit, so that 30 days less a
		// second is "in 30 days".
		return "in " + span(-d+roundingFor(-d))
	}
	switch {
	case d < time.Minute:
		return "just now"
	case d >= 24*time.Hour && d < 48*time.Hour:
		return "yesterday"
	case d >= 31*24*time.Hour:
		return "on " + t.UTC().Format(templates.EnglishDate)
	}
	return span(d) + " ago"
}

// roundingFor is half the unit span will say d in.
func roundingFor(d time.Duration) time.Duration {
	switch {
	case d >= 24*time.Hour-30*time.Minute:
		return 12 * time.Hour
	case d >= time.Hour-30*time.Second:
		return 30 * time.Minute
	}
	return 30 * time.Second
}

// span says a duration in its largest whole unit: minutes, hours or days
// (rounded down, at least 1 minute).
func span(d time.Duration) string {
	unit := func(n int, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.Itoa(n) + " " + one + "s"
	}
	switch {
	case d >= 24*time.Hour:
		return unit(int(d/(24*time.Hour)), "day")
	case d >= time.Hour:
		return unit(int(d/time.Hour), "hour")
	}
	return unit(max(int(d/time.Minute), 1), "minute")
}
