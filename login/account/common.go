package account

import (
	_ "embed"
	"strings"
	"sync"
	"unicode"
)

// commonPasswords holds the 10,000 most common passwords of at least 8
// characters, lower-cased, one per line, from the password frequency list
// of zxcvbn 4.4.2 (MIT licence, © 2012-2016 Dan Wheeler and Dropbox, Inc.),
// itself drawn from leaked password corpora. NIST SP 800-63B asks that new
// passwords be checked against such a list.
//
//go:embed common-passwords.txt
var commonPasswords string

var commonSet = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 10000)
	for _, p := range strings.Split(commonPasswords, "\n") {
		if p != "" {
			set[p] = struct{}{}
		}
	}
	return set
})

// notCommon refuses a password from the list, in any letter case.
func notCommon(password string) string {
	if _, ok := commonSet()[strings.ToLower(password)]; ok {
		return "This password is too common: choose one that others are unlikely to use."
	}
	return ""
}

// composition asks for upper case, lower case, a digit and a symbol (only
// with Config.RequireComposition).
func composition(password string) string {
	var upper, lower, digit, other bool
	for _, r := range password {
		switch {
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		default:
			other = true
		}
	}
	if !upper || !lower || !digit || !other {
		return "The password must contain an upper-case letter, a lower-case letter, a digit and a symbol."
	}
	return ""
}
