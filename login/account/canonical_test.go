package account

import (
	"errors"
	"strings"
	"testing"
)

func TestCanonicalEmail(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" means rejected
	}{
		{"alice@example.com", "alice@example.com"},
		{"Alice@Example.COM", "alice@example.com"},
		{"  alice@example.com \t", "alice@example.com"},
		{"ａｌｉｃｅ@ｅｘａｍｐｌｅ.ｃｏｍ", "alice@example.com"}, // full-width
		{"alice＠example.com", "alice@example.com"}, // full-width @
		{"o'brien+tag@example.com", "o'brien+tag@example.com"},
		{"Müller@Bücher.de", "müller@bücher.de"},
		{"cafe\u0301@example.com", "caf\u00e9@example.com"}, // NFC composition
		{"a@b", "a@b"},
		{"alıce@example.com", "alıce@example.com"}, // dotless ı stays itself
		{"", ""},
		{"   ", ""},
		{"alice", ""},
		{"alice@", ""},
		{"@example.com", ""},
		{"a@b@c", ""},
		{"Bob <bob@x.io>", ""},
		{"<bob@x.io>", ""},
		{"bob@x.io (comment)", ""},
		{`"bob smith"@x.io`, ""},
		{`"bob"@x.io`, ""},
		{"bob@[127.0.0.1]", ""},
		{"bob smith@x.io", ""},
		{"a..b@x.io", ""},
		{"a@x..io", ""},
		{"a@-x.io", ""},
		{"a@x-.io", ""},
		{"a@x_y.io", ""},
		{"ali\u200bce@example.com", ""}, // zero-width space
		{"alice@exa\u200dmple.com", ""}, // zero-width joiner
		{"\u202ealice@example.com", ""}, // right-to-left override
		{"\ufeffalice@example.com", ""}, // byte-order mark
		{"alice\x00@example.com", ""},   // NUL
		{"alice\x07@example.com", ""},   // control
		{"alice\n@example.com", ""},
		{"alice@example.com\xff", ""}, // invalid UTF-8
		{"alice@example.com\n", "alice@example.com"},
		{"\U000E0001alice@example.com", ""}, // tag character (Cf)
		{"alice\U0010FFFD@example.com", ""}, // private use
		{strings.Repeat("a", 64) + "@example.com", strings.Repeat("a", 64) + "@example.com"},
		{strings.Repeat("a", 65) + "@example.com", ""},
		{"a@" + strings.Repeat("b", 63) + ".com", "a@" + strings.Repeat("b", 63) + ".com"},
		{"a@" + strings.Repeat("b", 64) + ".com", ""},
		{"a@" + strings.Repeat("b.", 125) + "io", "a@" + strings.Repeat("b.", 125) + "io"}, // 254
		{"a@" + strings.Repeat("b.", 126) + "io", ""},                                      // 256
		{strings.Repeat("a", 10_000) + "@example.com", ""},
		{"' OR 1=1--@x.io", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := CanonicalEmail(tc.in)
			if tc.want == "" {
				var ve *ValidationError
				if !errors.As(err, &ve) || ve.Field != "email" {
					t.Fatalf("CanonicalEmail(%q) = %q, %v; want a *ValidationError for email", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CanonicalEmail(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			// Canonical forms are fixed points.
			if again, err := CanonicalEmail(got); err != nil || again != got {
				t.Errorf("CanonicalEmail(%q) = %q, %v; want it unchanged", got, again, err)
			}
		})
	}
}

func TestCanonicalUsername(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"alice", "alice"},
		{"Alice", "alice"},
		{" ALICE_99 ", "alice_99"},
		{"a.b-c_d", "a.b-c_d"},
		{"ａｌｉｃｅ", "alice"},
		{"abc", "abc"},
		{"ab", ""},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{strings.Repeat("a", 65), ""},
		{"alice@example.com", ""},
		{"ali ce", ""},
		{"alicé", ""},
		{"аlice", ""}, // Cyrillic а
		{"alıce", ""}, // dotless ı
		{"ali\u200bce", ""},
		{"alice\x00", ""},
		{"🦊🦊🦊", ""},
		{"' OR 1=1--", ""},
		{"\xff\xfe\xfd", ""},
		{strings.Repeat("a", 10_000), ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := CanonicalUsername(tc.in)
			if tc.want == "" {
				var ve *ValidationError
				if !errors.As(err, &ve) || ve.Field != "username" {
					t.Fatalf("CanonicalUsername(%q) = %q, %v; want a *ValidationError for username", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CanonicalUsername(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestValidPhone(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"+14155550100", true},
		{"+12345678", true},          // 8 digits
		{"+123456789012345", true},   // 15 digits
		{"+1234567", false},          // 7 digits
		{"+1234567890123456", false}, // 16 digits
		{"14155550100", false},
		{"+04155550100", false},
		{"+1 415 555 0100", false},
		{"+1-415-555-0100", false},
		{"+", false},
		{"", false},
		{"+١٢٣٤٥٦٧٨٩", false}, // Arabic-Indic digits
	}
	for _, tc := range tests {
		if got := validPhone(tc.in); got != tc.want {
			t.Errorf("validPhone(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"", "", true},
		{"  Ada Lovelace ", "Ada Lovelace", true},
		{"José Ñúñez", "José Ñúñez", true},
		{"山田 太郎", "山田 太郎", true},
		{"👩\u200d💻 Dev", "👩\u200d💻 Dev", true}, // ZWJ emoji sequence
		{"Robert'); DROP TABLE users;--", "Robert'); DROP TABLE users;--", true},
		{strings.Repeat("é", 200), strings.Repeat("é", 200), true},
		{strings.Repeat("é", 201), "", false},
		{strings.Repeat("a", 10_000), "", false},
		{"Ada\x00", "", false},
		{"Ada\nLovelace", "", false},
		{"Ada \u202eecalevoL", "", false},
		{"\xffAda", "", false},
	}
	for _, tc := range tests {
		got, ok := cleanName(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("cleanName(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestMixesScripts(t *testing.T) {
	tests := []struct {
		in   string // a canonical address
		want bool
	}{
		{"alice@example.com", false},
		{"alıce@example.com", false},              // dotless ı is Latin
		{"müller@bücher.de", false},               // Latin with diacritics
		{"o'brien+tag-1.x_y@ex-ample.com", false}, // Common punctuation and digits count for none
		{"алиса@пример.рф", false},                // Cyrillic throughout
		{"alice@пример.рф", false},                // each part in one script
		{"αλίκη@example.com", false},              // Greek local part, Latin domain
		{"yamada山田たろうタロウ@example.jp", false},      // Latin + Han + Hiragana + Katakana
		{"user@例え.jp", false},                     // Han + Hiragana in one label
		{"wang王ㄅ@example.tw", false},              // Latin + Han + Bopomofo
		{"kim김金@example.kr", false},               // Latin + Hangul + Han
		{"tarōー@example.jp", false},               // ー is Common
		{"аlice@example.com", true},               // Cyrillic а in a Latin local part
		{"alice@exаmple.com", true},               // Cyrillic а in a Latin domain label
		{"alice@example.cоm", true},               // Cyrillic о in the top-level label
		{"pаypal.alice@example.com", true},        // mixed even with a dot between
		{"alice.αβ@example.com", true},            // Latin + Greek
		{"user٣@example.com", true},               // Latin + an Arabic-Indic digit
		{"김たなか@example.com", true},                // Hangul + Hiragana
		{"ㄅ김@example.com", true},                  // Bopomofo + Hangul
		{"王ㄅ김@example.com", true},                 // Han + Bopomofo + Hangul
	}
	for _, tc := range tests {
		if got := mixesScripts(tc.in); got != tc.want {
			t.Errorf("mixesScripts(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// What UTS #39's confusables table (through mtibben/confusables) makes
// look alike, and what not.
func TestEmailSkeleton(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"alice@example.com", "alıce@example.com", true},  // dotless ı
		{"alice@example.com", "alice@exаmple.com", true},  // Cyrillic а
		{"alice@example.com", "аlice@example.com", true},  // Cyrillic а
		{"alice@example.com", "alice@example.cοm", true},  // Greek ο
		{"alice@example.com", "a1ice@example.com", true},  // 1 and l
		{"alice@example.com", "alice@examp1e.com", true},  // 1 and l
		{"sam@example.com", "sarn@example.com", true},     // m and rn
		{"apple@example.com", "аррlе@example.com", true},  // Cyrillic а р е
		{"alice@example.com", "aiice@example.com", false}, // i and l differ
		{"bob@example.com", "b0b@example.com", false},     // 0 looks like O, and addresses are lower case
		{"dave@example.com", "clave@example.com", false},  // d and cl differ
		{"will@example.com", "vvill@example.com", false},  // w and vv differ
		{"alice@example.com", "alïce@example.com", false}, // a diaeresis stays
		{"alice@example.com", "alice@example.org", false},
	}
	for _, tc := range tests {
		a, b := emailSkeleton(tc.a), emailSkeleton(tc.b)
		if (a == b) != tc.same {
			t.Errorf("emailSkeleton(%q) = %q, emailSkeleton(%q) = %q; want equal %v", tc.a, a, tc.b, b, tc.same)
		}
	}
	if got := emailSkeleton("alice@example.com"); got != "alice@exarnple.corn" {
		t.Errorf("emailSkeleton(alice@example.com) = %q, want %q", got, "alice@exarnple.corn")
	}
}
