package account

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Argon2Params are the argon2id costs used for new password hashes. A zero
// field takes the OWASP recommendation shown. Hashes keep their own
// parameters (PHC string format), so changing these later does not
// invalidate stored passwords.
type Argon2Params struct {
	// Memory is the memory cost in KiB; 0 means 19456 (19 MiB).
	Memory uint32
	// Time is the number of passes; 0 means 2.
	Time uint32
	// Threads is the degree of parallelism; 0 means 1.
	Threads uint8
	// SaltLen is the salt length in bytes; 0 means 16.
	SaltLen uint32
	// KeyLen is the derived key length in bytes; 0 means 32.
	KeyLen uint32
}

func (p Argon2Params) withDefaults() Argon2Params {
	if p.Memory == 0 {
		p.Memory = 19456
	}
	if p.Time == 0 {
		p.Time = 2
	}
	if p.Threads == 0 {
		p.Threads = 1
	}
	if p.SaltLen == 0 {
		p.SaltLen = 16
	}
	if p.KeyLen == 0 {
		p.KeyLen = 32
	}
	return p
}

// Bounds on the parameters accepted from a stored hash, so that a corrupt
// or hostile row cannot make verification allocate gigabytes or spin.
const (
	maxHashMemory  = 1 << 21 // KiB (2 GiB)
	maxHashTime    = 64
	minHashSaltLen = 8
	maxHashSaltLen = 64
	minHashKeyLen  = 16
	maxHashKeyLen  = 64
)

// PasswordRule is one further check of a new password, run after the
// length checks on the normalised password. It returns a message for the
// person choosing the password ("This password is too common.") to refuse
// it, or "" to accept it.
type PasswordRule func(password string) (problem string)

// PasswordPolicy decides which new passwords are acceptable. The zero value
// is the default policy: 8 to 128 characters (runes, counted after NFKC
// normalisation), any Unicode text including spaces and emoji, no control
// characters, no truncation. Rules extend it, e.g. with a list of common
// or breached passwords.
type PasswordPolicy struct {
	// MinLength is the minimum number of characters; 0 means 8.
	MinLength int
	// MaxLength is the maximum number of characters; 0 means 128.
	MaxLength int
	// Rules run in order after the length checks; the first problem wins.
	Rules []PasswordRule
}

// Check reports whether password may be chosen, as a *ValidationError for
// the field "password". The error never contains the password.
func (p PasswordPolicy) Check(password string) error {
	minLen, maxLen := p.MinLength, p.MaxLength
	if minLen <= 0 {
		minLen = 8
	}
	if maxLen <= 0 {
		maxLen = 128
	}
	if !utf8.ValidString(password) {
		return &ValidationError{Field: "password", Message: "The password contains characters that are not allowed."}
	}
	pw := normalizePassword(password)
	for _, r := range pw {
		if unicode.IsControl(r) {
			return &ValidationError{Field: "password", Message: "The password contains characters that are not allowed."}
		}
	}
	switch n := utf8.RuneCountInString(pw); {
	case n < minLen:
		return &ValidationError{Field: "password", Message: fmt.Sprintf("The password must have at least %d characters.", minLen)}
	case n > maxLen:
		return &ValidationError{Field: "password", Message: fmt.Sprintf("The password must have at most %d characters.", maxLen)}
	}
	for _, rule := range p.Rules {
		if problem := rule(pw); problem != "" {
			return &ValidationError{Field: "password", Message: problem}
		}
	}
	return nil
}

// normalizePassword applies NFKC, as NIST SP 800-63B advises, so that the
// same password typed on two keyboards (composed or decomposed accents,
// full-width forms) hashes the same.
func normalizePassword(pw string) string { return norm.NFKC.String(pw) }

// phcHash is a parsed argon2id hash in PHC string format.
type phcHash struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

var b64 = base64.RawStdEncoding.Strict()

// String encodes h as $argon2id$v=19$m=M,t=T,p=P$SALT$KEY.
func (h phcHash) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, h.memory, h.time, h.threads, b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

var errBadHash = errors.New("account: malformed password hash")

// parsePHC parses an argon2id hash in PHC string format, checking that its
// parameters are within sane bounds.
func parsePHC(s string) (phcHash, error) {
	var h phcHash
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return h, errBadHash
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return h, errBadHash
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		if !ok || v == "" || (len(v) > 1 && v[0] == '0') {
			return h, errBadHash
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return h, errBadHash
		}
		vals[i] = n
	}
	h.memory, h.time = uint32(vals[0]), uint32(vals[1])
	if vals[2] < 1 || vals[2] > 255 || h.time < 1 || h.time > maxHashTime ||
		h.memory > maxHashMemory || uint64(h.memory) < 8*vals[2] {
		return h, errBadHash
	}
	h.threads = uint8(vals[2])
	var err error
	if h.salt, err = b64.DecodeString(parts[4]); err != nil || len(h.salt) < minHashSaltLen || len(h.salt) > maxHashSaltLen {
		return h, errBadHash
	}
	if h.key, err = b64.DecodeString(parts[5]); err != nil || len(h.key) < minHashKeyLen || len(h.key) > maxHashKeyLen {
		return h, errBadHash
	}
	return h, nil
}

// matches reports, in constant time, whether password derives h's key.
func (h phcHash) matches(password string) bool {
	key := argon2.IDKey([]byte(normalizePassword(password)), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

// hashPassword checks password against the policy and returns its argon2id
// hash in PHC string format.
func (s *Service) hashPassword(ctx context.Context, password string) (string, error) {
	if err := s.cfg.Password.Check(password); err != nil {
		return "", err
	}
	p := s.cfg.Argon2
	h := phcHash{memory: p.Memory, time: p.Time, threads: p.Threads, salt: make([]byte, p.SaltLen)}
	rand.Read(h.salt)
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	h.key = argon2.IDKey([]byte(normalizePassword(password)), h.salt, h.time, h.memory, h.threads, p.KeyLen)
	return h.String(), nil
}

// verify reports whether password matches h, holding a hashing slot.
func (s *Service) verify(ctx context.Context, h phcHash, password string) (bool, error) {
	if err := s.acquire(ctx); err != nil {
		return false, err
	}
	defer s.release()
	return h.matches(password), nil
}

// acquire takes one of the slots that bound how many argon2 computations
// (19 MiB each by default) run at once.
func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("account: wait for a hashing slot: %w", context.Cause(ctx))
	}
}

func (s *Service) release() { <-s.slots }

// HashCost measures one argon2id verification with the default parameters:
// what the password grant and every sign-in spend by design.
func HashCost() time.Duration {
	p := Argon2Params{}.withDefaults()
	salt := make([]byte, p.SaltLen)
	start := time.Now()
	argon2.IDKey([]byte("a password of ordinary length"), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return time.Since(start)
}
