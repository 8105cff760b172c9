package account

import (
	"net/mail"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mtibben/confusables"
	"golang.org/x/text/unicode/norm"
)

const (
	maxEmailLen     = 254 // bytes, RFC 5321 path limit less the angle brackets
	maxLocalPartLen = 64  // bytes, RFC 5321
	maxLabelLen     = 63  // bytes, RFC 1035
	minUsernameLen  = 3
	maxUsernameLen  = 64
	maxNameLen      = 200 // runes
	maxRawLogin     = 1024
)

// canonicalText is the first step for emails and usernames: reject invalid
// UTF-8, apply NFKC (full-width and compatibility forms become their plain
// equivalents, so "ａｌｉｃｅ" and "alice" are one name), trim white space
// and lower-case.
func canonicalText(s string) (string, bool) {
	if len(s) > maxRawLogin || !utf8.ValidString(s) {
		return "", false
	}
	s = strings.TrimSpace(norm.NFKC.String(s))
	// Lower-casing can leave a string that is no longer in NFKC.
	return norm.NFKC.String(strings.ToLower(s)), true
}

// CanonicalEmail returns the canonical form of an email address, the form
// that is stored and looked up: NFKC-normalised, trimmed and lower-cased.
// It fails with a *ValidationError (field "email") for invalid UTF-8, white
// space, control, format (zero-width, bidi) or unassigned characters, more
// than 254 bytes, a display name, comment, quoted local part or domain
// literal, or anything net/mail.ParseAddress rejects.
func CanonicalEmail(s string) (string, error) {
	bad := func(msg string) (string, error) {
		return "", &ValidationError{Field: "email", Message: msg}
	}
	s, ok := canonicalText(s)
	switch {
	case !ok:
		return bad("The email address is not valid.")
	case s == "":
		return bad("Enter an email address.")
	case len(s) > maxEmailLen:
		return bad("The email address is too long.")
	}
	for _, r := range s {
		if !unicode.IsGraphic(r) || unicode.IsSpace(r) || r == '"' || r == '[' || r == ']' {
			return bad("The email address contains characters that are not allowed.")
		}
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s || strings.Count(s, "@") != 1 {
		return bad("The email address is not valid.")
	}
	local, domain, _ := strings.Cut(s, "@")
	if len(local) > maxLocalPartLen || !validDomain(domain) {
		return bad("The email address is not valid.")
	}
	return s, nil
}

// emailSkeleton is the UTS #39 skeleton of a canonical email address:
// addresses that look alike share it (alice@example.com, alıce@example.com
// with a dotless ı, alice@exаmple.com with a Cyrillic а), so it is stored,
// unique, beside the address. The table also maps m to rn and 1 to l, so
// sarn@ and sam@ share a skeleton, as do a1ice@ and alice@ (0 maps to a
// capital O, which no canonical address holds: b0b@ and bob@ do not).
func emailSkeleton(canon string) string { return confusables.Skeleton(canon) }

// mixesScripts reports whether the local part or a domain label of a
// canonical email address mixes letters of several Unicode scripts, beyond
// what UTS #39's Highly Restrictive level allows (Latin with Han, Hiragana
// and Katakana; with Han and Bopomofo; with Han and Hangul). Common and
// Inherited characters (digits, punctuation, combining marks) belong to no
// script. Such an address is refused when it is set; it is still a valid
// login name.
func mixesScripts(canon string) bool {
	local, domain, _ := strings.Cut(canon, "@")
	if mixed(local) {
		return true
	}
	for label := range strings.SplitSeq(domain, ".") {
		if mixed(label) {
			return true
		}
	}
	return false
}

// allowedMixes are the sets of scripts UTS #39's Highly Restrictive level
// allows together in one string.
var allowedMixes = [][]*unicode.RangeTable{
	{unicode.Latin, unicode.Han, unicode.Hiragana, unicode.Katakana},
	{unicode.Latin, unicode.Han, unicode.Bopomofo},
	{unicode.Latin, unicode.Han, unicode.Hangul},
}

// mixed reports whether s holds letters of scripts that no single set of
// allowedMixes covers.
func mixed(s string) bool {
	var scripts []*unicode.RangeTable
	for _, r := range s {
		sc := scriptOf(r)
		if sc != nil && !slices.Contains(scripts, sc) {
			scripts = append(scripts, sc)
		}
	}
	if len(scripts) <= 1 {
		return false
	}
	for _, allowed := range allowedMixes {
		if !slices.ContainsFunc(scripts, func(sc *unicode.RangeTable) bool { return !slices.Contains(allowed, sc) }) {
			return false
		}
	}
	return true
}

// scriptOf returns the Unicode script of r, or nil for Common, Inherited
// and unassigned characters.
func scriptOf(r rune) *unicode.RangeTable {
	switch {
	case r < utf8.RuneSelf:
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return unicode.Latin
		}
		return nil
	case unicode.Is(unicode.Common, r), unicode.Is(unicode.Inherited, r):
		return nil
	}
	for _, table := range unicode.Scripts {
		if unicode.Is(table, r) {
			return table
		}
	}
	return nil
}

// validDomain checks a host name: dot-separated labels of 1 to 63 bytes made
// of letters (any script), marks, digits and inner hyphens.
func validDomain(d string) bool {
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > maxLabelLen || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) {
				return false
			}
		}
	}
	return true
}

// CanonicalUsername returns the canonical form of a username: NFKC,
// trimmed, lower-cased, 3 to 64 characters among a-z, 0-9, '.', '_' and '-'.
// It never contains '@', so it can never equal an email address. Other
// input fails with a *ValidationError (field "username"); non-ASCII letters
// are refused so that look-alike names from other scripts cannot exist.
func CanonicalUsername(s string) (string, error) {
	bad := func(msg string) (string, error) {
		return "", &ValidationError{Field: "username", Message: msg}
	}
	s, ok := canonicalText(s)
	switch {
	case !ok:
		return bad("The username is not valid.")
	case len(s) < minUsernameLen:
		return bad("The username must have at least 3 characters.")
	case len(s) > maxUsernameLen:
		return bad("The username must have at most 64 characters.")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return bad("The username may contain only letters a-z, digits, '.', '_' and '-'.")
		}
	}
	return s, nil
}

// validPhone reports whether s is an E.164 number: '+', then 8 to 15 digits,
// the first of which is not 0.
func validPhone(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// cleanName validates a display name: valid UTF-8, at most 200 characters,
// no control characters and no bidi override or isolate controls (which can
// make a name display as something else). Joiners used by some scripts and
// by emoji sequences are allowed. It returns the trimmed name.
func cleanName(s string) (string, bool) {
	if len(s) > 4*maxNameLen || !utf8.ValidString(s) {
		return "", false
	}
	s = strings.TrimSpace(norm.NFC.String(s))
	if utf8.RuneCountInString(s) > maxNameLen {
		return "", false
	}
	for _, r := range s {
		if unicode.IsControl(r) || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') {
			return "", false
		}
	}
	return s, true
}
