package account

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestPasswordPolicy(t *testing.T) {
	common := func(pw string) string {
		if pw == "password123" {
			return "This password is too common."
		}
		return ""
	}
	tests := []struct {
		name   string
		policy PasswordPolicy
		pw     string
		ok     bool
	}{
		{"7 chars", PasswordPolicy{}, "abcdefg", false},
		{"8 chars", PasswordPolicy{}, "abcdefgh", true},
		{"128 chars", PasswordPolicy{}, strings.Repeat("a", 128), true},
		{"129 chars", PasswordPolicy{}, strings.Repeat("a", 129), false},
		{"spaces allowed", PasswordPolicy{}, "correct horse battery", true},
		{"7 emoji", PasswordPolicy{}, strings.Repeat("🦊", 7), false},
		{"8 emoji (32 bytes) counts 8", PasswordPolicy{}, strings.Repeat("🦊", 8), true},
		{"128 emoji", PasswordPolicy{}, strings.Repeat("🦊", 128), true},
		{"129 emoji", PasswordPolicy{}, strings.Repeat("🦊", 129), false},
		{"unicode letters", PasswordPolicy{}, "пароль-日本語-ñ", true},
		{"invalid UTF-8", PasswordPolicy{}, "abcdefgh\xff", false},
		{"NUL", PasswordPolicy{}, "abcd\x00efgh", false},
		{"control char", PasswordPolicy{}, "abcd\x1befgh", false},
		{"custom min", PasswordPolicy{MinLength: 15}, "abcdefghijklmn", false},
		{"custom max", PasswordPolicy{MaxLength: 10}, "abcdefghijk", false},
		{"rule refuses", PasswordPolicy{Rules: []PasswordRule{common}}, "password123", false},
		{"rule accepts", PasswordPolicy{Rules: []PasswordRule{common}}, "password124", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Check(tc.pw)
			if tc.ok {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != "password" {
				t.Fatalf("Check = %v, want *ValidationError for password", err)
			}
			if strings.Contains(err.Error(), tc.pw) {
				t.Errorf("error %q repeats the password", err)
			}
		})
	}
}

func TestPasswordRuleSeesNormalisedPassword(t *testing.T) {
	var seen string
	p := PasswordPolicy{Rules: []PasswordRule{func(pw string) string { seen = pw; return "" }}}
	if err := p.Check("ＰＡＳＳＷＯＲＤ"); err != nil { // full-width
		t.Fatal(err)
	}
	if seen != "PASSWORD" {
		t.Errorf("rule saw %q, want %q", seen, "PASSWORD")
	}
}

var phcPattern = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashRoundTrip(t *testing.T) {
	s := New(nil, Config{})
	ctx := t.Context()
	long := strings.Repeat("x1Y2z3", 17)[:100] // 100 characters
	tests := []struct {
		name     string
		password string
		try      string
		want     bool
	}{
		{"same", "correct horse", "correct horse", true},
		{"wrong", "correct horse", "correct horsf", false},
		{"case matters", "correct horse", "Correct horse", false},
		{"100 chars vs its first 72", long, long[:72], false},
		{"100 chars", long, long, true},
		{"emoji", "🦊🐺🦝🦡🦨🦦🦥🐿", "🦊🐺🦝🦡🦨🦦🦥🐿", true},
		{"emoji, one changed", "🦊🐺🦝🦡🦨🦦🦥🐿", "🦊🐺🦝🦡🦨🦦🦥🐀", false},
		{"composed vs decomposed accents", "caf\u00e9-cr\u00e8me", "cafe\u0301-cre\u0300me", true},
		{"full-width vs ASCII", "ｓｐａｒｒｏｗ９８７", "sparrow987", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := s.hashPassword(ctx, tc.password)
			if err != nil {
				t.Fatalf("hashPassword: %v", err)
			}
			if !phcPattern.MatchString(enc) {
				t.Fatalf("hash %q is not in the expected PHC form", enc)
			}
			if strings.Contains(enc, tc.password) {
				t.Fatalf("hash contains the password")
			}
			h, err := parsePHC(enc)
			if err != nil {
				t.Fatalf("parsePHC(%q) = %v", enc, err)
			}
			if got := h.matches(tc.try); got != tc.want {
				t.Errorf("matches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHashSaltsDiffer(t *testing.T) {
	s := New(nil, Config{})
	a, err := s.hashPassword(t.Context(), "same password")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.hashPassword(t.Context(), "same password")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("two hashes of one password are equal: %q", a)
	}
}

// A hash made with other costs still verifies: the parameters are read from
// the stored string.
func TestHashOtherParameters(t *testing.T) {
	old := New(nil, Config{Argon2: Argon2Params{Memory: 8 * 1024, Time: 1, Threads: 2, SaltLen: 24, KeyLen: 48}})
	enc, err := old.hashPassword(t.Context(), "old password")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=8192,t=1,p=2$") {
		t.Fatalf("hash %q does not record its parameters", enc)
	}
	h, err := parsePHC(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.salt) != 24 || len(h.key) != 48 {
		t.Errorf("salt %d bytes, key %d bytes; want 24, 48", len(h.salt), len(h.key))
	}
	if !h.matches("old password") || h.matches("old passwore") {
		t.Error("hash with other parameters does not verify correctly")
	}
}

func TestParsePHCRejects(t *testing.T) {
	salt, key := "c2FsdHNhbHRzYWx0c2FsdA", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	good := fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=1$%s$%s", salt, key)
	if _, err := parsePHC(good); err != nil {
		t.Fatalf("parsePHC(%q) = %v, want nil", good, err)
	}
	bad := map[string]string{
		"empty":             "",
		"bcrypt":            "$2a$10$abcdefghijklmnopqrstuuJ5n1lF6d1iYhHqj3s1uYqv6Bf1vXqS",
		"argon2i":           fmt.Sprintf("$argon2i$v=19$m=19456,t=2,p=1$%s$%s", salt, key),
		"version 16":        fmt.Sprintf("$argon2id$v=16$m=19456,t=2,p=1$%s$%s", salt, key),
		"no version":        fmt.Sprintf("$argon2id$m=19456,t=2,p=1$%s$%s", salt, key),
		"params reordered":  fmt.Sprintf("$argon2id$v=19$t=2,m=19456,p=1$%s$%s", salt, key),
		"missing param":     fmt.Sprintf("$argon2id$v=19$m=19456,t=2$%s$%s", salt, key),
		"extra param":       fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=1,x=1$%s$%s", salt, key),
		"negative":          fmt.Sprintf("$argon2id$v=19$m=-1,t=2,p=1$%s$%s", salt, key),
		"leading zero":      fmt.Sprintf("$argon2id$v=19$m=019456,t=2,p=1$%s$%s", salt, key),
		"not a number":      fmt.Sprintf("$argon2id$v=19$m=lots,t=2,p=1$%s$%s", salt, key),
		"t=0":               fmt.Sprintf("$argon2id$v=19$m=19456,t=0,p=1$%s$%s", salt, key),
		"p=0":               fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=0$%s$%s", salt, key),
		"p=256":             fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=256$%s$%s", salt, key),
		"memory too high":   fmt.Sprintf("$argon2id$v=19$m=4294967295,t=2,p=1$%s$%s", salt, key),
		"memory < 8p":       fmt.Sprintf("$argon2id$v=19$m=7,t=2,p=1$%s$%s", salt, key),
		"time too high":     fmt.Sprintf("$argon2id$v=19$m=19456,t=1000000,p=1$%s$%s", salt, key),
		"salt not base64":   fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=1$%s$%s", "!!!!!!!!!!!!", key),
		"salt padded":       fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=1$%s==$%s", salt, key),
		"salt too short":    fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=1$%s$%s", "c2FsdA", key),
		"key too short":     fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=1$%s$%s", salt, "a2V5"),
		"missing key":       fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=1$%s", salt),
		"trailing part":     good + "$x",
		"no leading dollar": strings.TrimPrefix(good, "$"),
	}
	for name, s := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := parsePHC(s); !errors.Is(err, errBadHash) {
				t.Errorf("parsePHC(%q) = %v, want errBadHash", s, err)
			}
		})
	}
}

func TestLockFor(t *testing.T) {
	s := New(nil, Config{})
	tests := []struct {
		n    int
		want string
	}{
		{1, "1m0s"}, {2, "2m0s"}, {3, "4m0s"}, {4, "8m0s"}, {5, "16m0s"}, {6, "32m0s"},
		{7, "1h0m0s"}, {8, "1h0m0s"}, {1000, "1h0m0s"},
	}
	for _, tc := range tests {
		if got := s.lockFor(tc.n).String(); got != tc.want {
			t.Errorf("lockFor(%d) = %s, want %s", tc.n, got, tc.want)
		}
	}
}
