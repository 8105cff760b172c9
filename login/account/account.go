// Package account is Torii's user domain: creating users, checking their
// passwords (argon2id), counting failures and locking accounts, and listing
// and deleting users. It knows nothing of HTTP; the browser pages and the
// JSON API both call it.
package account

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/storage"
)

// Config tunes the service. The zero value gives the defaults documented on
// each field.
type Config struct {
	// LockoutThreshold is the number of consecutive wrong passwords that
	// locks an account; 0 means 5.
	LockoutThreshold int
	// LockoutBase is how long the account is locked when it reaches the
	// threshold; each further lock of the same run of failures doubles it.
	// 0 means 1 minute.
	LockoutBase time.Duration
	// LockoutMax caps the lock duration; 0 means 1 hour.
	LockoutMax time.Duration
	// DeviceLifetime is how long a browser stays trusted for an account
	// after it last completed a sign-in of it (RememberDevice); 0 means 90
	// days.
	DeviceLifetime time.Duration
	// RememberLifetime is how long a browser whose user chose "don't ask
	// for a code on this device" skips the code step (RememberBrowser);
	// 0 turns the choice off and makes every remembered device count for
	// nothing.
	RememberLifetime time.Duration
	// Argon2 holds the costs of new password hashes.
	Argon2 Argon2Params
	// Password is the policy for new passwords.
	Password PasswordPolicy
	// MaxConcurrentHashes bounds how many argon2id computations run at once
	// (each takes Argon2.Memory); further sign-ins wait their turn. 0 means
	// runtime.GOMAXPROCS(0).
	MaxConcurrentHashes int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	// Notifier sends codes and notices (the outbox); nil means the
	// methods that must send fail with ErrNoNotifier (the CLI needs none).
	Notifier notify.Enqueuer
	// Issuer is Torii's public base URL, used in links in mails: never
	// taken from a request's Host header.
	Issuer string
	// OTPLifetime is how long a one-time code works; 0 means 10 minutes.
	OTPLifetime time.Duration
	// OTPMaxAttempts is how many wrong entries kill a code; 0 means 5.
	OTPMaxAttempts int
	// ResendInterval is the least time between two codes for one account;
	// 0 means 30 seconds (negative: none).
	ResendInterval time.Duration
	// ResendWindow and ResendMax: at most ResendMax codes per account, and
	// per destination, in ResendWindow; 0 means 5 per 15 minutes.
	ResendWindow time.Duration
	ResendMax    int
	// OTPLockoutThreshold is how many consecutive wrong codes (across
	// codes) lock the account, with the same back-off as passwords; counted
	// apart from password failures. 0 means 10.
	OTPLockoutThreshold int
	// ResetLifetime is how long a password-reset link works; 0 means 30
	// minutes.
	ResetLifetime time.Duration
	// InviteLifetime is how long the set-password link of an invited user
	// (Invite) works; 0 means 72 hours.
	InviteLifetime time.Duration
	// VerifyLinkLifetime is how long an email-verification link works; 0
	// means 8 hours.
	VerifyLinkLifetime time.Duration
	// RequireComposition also demands upper case, lower case, a digit and
	// a symbol in new passwords (off by default, as NIST 800-63B advises).
	RequireComposition bool
	// DefaultLanguage is the language of mails whose context carries none
	// (notify.WithLanguage): those an administrator causes, through the
	// admin API or the CLI. "" means "en".
	DefaultLanguage string
}

// mailLanguage is the language of the messages composed for ctx: the one
// of the request that causes them, else Config.DefaultLanguage. A user's
// own language is not stored: an administrator's action mails in the
// default language.
func (s *Service) mailLanguage(ctx context.Context) string {
	return notify.LanguageOf(ctx, s.cfg.DefaultLanguage)
}

// Service manages users. It is safe for concurrent use.
type Service struct {
	store *storage.Store
	cfg   Config
	// dummy is a hash with the current costs that no password matches; it
	// is checked for unknown users so that timing does not tell whether an
	// account exists.
	dummy phcHash
	slots chan struct{}

	keyOnce sync.Mutex
	secrets map[string][]byte // by name; see secret
	// testHook, when set by tests, is called at named points of
	// Authenticate ("looked-up", then "refused" or "counted" and
	// "compared"), checkCode ("code-read", "code-compared") and Register
	// ("register-looked-up") to force interleavings and count comparisons.
	testHook func(stage string)
}

// New returns a Service over store.
func New(store *storage.Store, cfg Config) *Service {
	if cfg.LockoutThreshold <= 0 {
		cfg.LockoutThreshold = 5
	}
	if cfg.LockoutBase <= 0 {
		cfg.LockoutBase = time.Minute
	}
	if cfg.LockoutMax <= 0 {
		cfg.LockoutMax = time.Hour
	}
	cfg.LockoutMax = max(cfg.LockoutMax, cfg.LockoutBase)
	cfg.Argon2 = cfg.Argon2.withDefaults()
	if cfg.MaxConcurrentHashes <= 0 {
		cfg.MaxConcurrentHashes = runtime.GOMAXPROCS(0)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.OTPLifetime, 10*time.Minute)
	def(&cfg.DeviceLifetime, 90*24*time.Hour)
	def(&cfg.ResendInterval, 30*time.Second)
	cfg.ResendInterval = max(cfg.ResendInterval, 0)
	def(&cfg.ResendWindow, 15*time.Minute)
	def(&cfg.ResetLifetime, 30*time.Minute)
	def(&cfg.InviteLifetime, 72*time.Hour)
	def(&cfg.VerifyLinkLifetime, 8*time.Hour)
	if cfg.OTPMaxAttempts <= 0 {
		cfg.OTPMaxAttempts = 5
	}
	if cfg.ResendMax <= 0 {
		cfg.ResendMax = 5
	}
	if cfg.OTPLockoutThreshold <= 0 {
		cfg.OTPLockoutThreshold = 10
	}
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	cfg.Password.Rules = append([]PasswordRule{notCommon}, cfg.Password.Rules...)
	if cfg.RequireComposition {
		cfg.Password.Rules = append(cfg.Password.Rules, composition)
	}
	p := cfg.Argon2
	dummy := phcHash{memory: p.Memory, time: p.Time, threads: p.Threads, salt: make([]byte, p.SaltLen), key: make([]byte, p.KeyLen)}
	rand.Read(dummy.salt)
	rand.Read(dummy.key)
	return &Service{store: store, cfg: cfg, dummy: dummy, slots: make(chan struct{}, cfg.MaxConcurrentHashes)}
}

// Errors returned by Service methods; test them with errors.Is.
var (
	// ErrInvalidCredentials means the login name and password do not
	// identify an active, unlocked user. It says nothing about which part
	// was wrong.
	ErrInvalidCredentials = errors.New("account: invalid credentials")
	// ErrEmailTaken means another user has the same canonical email.
	ErrEmailTaken = errors.New("account: email address already registered")
	// ErrEmailLookAlike means another user's email looks the same (the
	// same UTS #39 skeleton: alice@example.com and alıce@example.com). It
	// matches ErrEmailTaken with errors.Is.
	ErrEmailLookAlike = fmt.Errorf("%w in a form that looks the same", ErrEmailTaken)
	// ErrUsernameTaken means another user has the same canonical username.
	ErrUsernameTaken = errors.New("account: username already taken")
	// ErrNotFound means no user has the given ID.
	ErrNotFound = errors.New("account: user not found")
)

// ValidationError reports input that cannot be accepted. Message is a
// sentence that may be shown to the person who typed the input; neither
// field ever repeats the input.
type ValidationError struct {
	// Field names the input: "email", "username", "password", "phone",
	// "name", "roles", "offset" or "limit".
	Field   string
	Message string
}

func (e *ValidationError) Error() string {
	return "account: invalid " + e.Field + ": " + e.Message
}

// LockedError is returned by Authenticate for an account that is locked
// after too many wrong passwords, whatever the password given. It matches
// ErrInvalidCredentials with errors.Is, so callers that do not care get the
// generic failure; callers that do can read Until with errors.As.
type LockedError struct {
	// Until is when the lock ends.
	Until time.Time
}

func (e *LockedError) Error() string { return "account: invalid credentials: account locked" }

// Is makes errors.Is(err, ErrInvalidCredentials) true.
func (e *LockedError) Is(target error) bool { return target == ErrInvalidCredentials }

// RoleAdmin is the built-in role of Torii's administrators: a user with it
// may be granted the scope torii:admin. Other role names need no
// declaration either: any valid name may be given.
const RoleAdmin = "admin"

// rolePattern is what a role name looks like.
var rolePattern = regexp.MustCompile(`^[a-z][a-z0-9_.:-]{0,63}$`)

// ValidRoleName reports whether name can be a role: a lower-case ASCII
// letter, then at most 63 lower-case letters, digits, '_', '.', ':' or '-'.
// Such a name never holds a quote, a backslash or %, so it can be found in
// the stored JSON array (storage.RolesContainPattern).
func ValidRoleName(name string) bool { return rolePattern.MatchString(name) }

// rolesError refuses a role name, without repeating it.
func rolesError() error {
	return &ValidationError{Field: "roles", Message: "A role name must start with a lower-case letter and have at most 64 lower-case letters, digits, '.', '_', ':' or '-'."}
}

// checkRoles returns rolesError unless every name is valid.
func checkRoles(names []string) error {
	for _, r := range names {
		if !ValidRoleName(r) {
			return rolesError()
		}
	}
	return nil
}

// NewUser is the input to Create. Email and Password are required; the rest
// is optional.
type NewUser struct {
	Email    string
	Password string
	// Username is an optional second login name (see CanonicalUsername).
	Username string
	// Phone, when given, is an E.164 number: "+" and 8 to 15 digits.
	Phone string
	// Name is the display name: at most 200 characters.
	Name string
	// Roles are role names (see ValidRoleName), such as RoleAdmin; stored
	// sorted and without duplicates. None by default.
	Roles         []string
	EmailVerified bool
	PhoneVerified bool
	// invite: the user has no password yet (Invite); Password is ignored.
	invite bool
}

// Create validates nu, hashes the password and stores a new user with a
// fresh random ID (a UUIDv4, the OIDC "sub"; never derived from the email).
// It fails with a *ValidationError for bad input (the first problem found;
// an email whose local part or a domain label mixes scripts is one),
// ErrEmailTaken or ErrUsernameTaken when the canonical email or username is
// in use (whatever case it was typed in), ErrEmailLookAlike (matching
// ErrEmailTaken) when another user's email looks the same, or a wrapped
// database error.
func (s *Service) Create(ctx context.Context, nu NewUser) (*storage.User, error) {
	u, err := s.newUser(nu)
	if err != nil {
		return nil, err
	}
	if mixesScripts(u.Email) {
		return nil, mixedScriptsError()
	}
	if !nu.invite {
		if u.PasswordHash, err = s.hashPassword(ctx, nu.Password); err != nil {
			return nil, err
		}
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateUser(ctx, u); err != nil {
			return err
		}
		return s.audit(ctx, "account.created", u.ID, map[string]any{"invite": nu.invite})
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return nil, s.whichTaken(ctx, u, err)
	}
	if err != nil {
		return nil, fmt.Errorf("account: create user: %w", err)
	}
	return u, nil
}

// FillEmailSkeletons gives every user stored before email skeletons
// existed the skeleton of their address (storage.Store.FillEmailSkeletons);
// it runs right after the migrations. Of two existing users whose addresses
// look alike, the later is left without one (both still sign in); each such
// pair is logged at warn, by user ID only, for an operator to look at.
func FillEmailSkeletons(ctx context.Context, store *storage.Store, log *slog.Logger) error {
	clashes, err := store.FillEmailSkeletons(ctx, emailSkeleton)
	for _, c := range clashes {
		log.WarnContext(ctx, "account: two users have email addresses that look alike; the later is left without an email skeleton",
			"user_id", c.UserID, "other_user_id", c.OtherID)
	}
	if err != nil {
		return fmt.Errorf("account: %w", err)
	}
	return nil
}

// newUser validates nu into a user without a password hash.
func (s *Service) newUser(nu NewUser) (*storage.User, error) {
	email, err := CanonicalEmail(nu.Email)
	if err != nil {
		return nil, err
	}
	u := &storage.User{
		ID:            uuid.NewString(),
		Email:         email,
		EmailSkeleton: emailSkeleton(email),
		EmailVerified: nu.EmailVerified,
		PhoneVerified: nu.PhoneVerified,
	}
	if strings.TrimSpace(nu.Username) != "" {
		name, err := CanonicalUsername(nu.Username)
		if err != nil {
			return nil, err
		}
		u.Username = &name
	}
	if !nu.invite {
		if err := s.cfg.Password.Check(nu.Password); err != nil {
			return nil, err
		}
	}
	if nu.Phone != "" {
		if !validPhone(nu.Phone) {
			return nil, &ValidationError{Field: "phone", Message: "The phone number must be in international format: + and 8 to 15 digits, as in +14155550100."}
		}
		u.Phone = nu.Phone
	} else if nu.PhoneVerified {
		return nil, &ValidationError{Field: "phone", Message: "A phone number marked verified is required."}
	}
	name, ok := cleanName(nu.Name)
	if !ok {
		return nil, &ValidationError{Field: "name", Message: msgNameInvalid}
	}
	u.Name = name
	if err := checkRoles(nu.Roles); err != nil {
		return nil, err
	}
	u.Roles = slices.Compact(slices.Sorted(slices.Values(nu.Roles)))
	return u, nil
}

// mixedScriptsError refuses an email address that mixes scripts.
func mixedScriptsError() error {
	return &ValidationError{Field: "email", Message: "The email address mixes letters of different scripts (such as Latin and Cyrillic) in one part."}
}

// whichTaken tells which unique field of u made CreateUser fail with
// ErrAlreadyExists.
func (s *Service) whichTaken(ctx context.Context, u *storage.User, createErr error) error {
	other, err := s.store.UserByEmailLookAlike(ctx, u.Email, u.EmailSkeleton)
	if err == nil && other.ID == u.ID {
		// An update of u: its own address clashes with nobody.
		err = storage.ErrNotFound
	}
	switch {
	case err == nil && other.Email == u.Email:
		return ErrEmailTaken
	case err == nil:
		return ErrEmailLookAlike
	case !errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("account: create user: %w", err)
	}
	if u.Username != nil {
		other, err := s.store.UserByLogin(ctx, *u.Username)
		if err == nil && other.ID != u.ID {
			return ErrUsernameTaken
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("account: create user: %w", err)
		}
	}
	// The clashing user was deleted meanwhile, or the random ID collided.
	return fmt.Errorf("account: create user: %w", createErr)
}

// validID reports whether id could be a stored user ID; anything else is
// answered with ErrNotFound without asking the database.
func validID(id string) bool {
	if id == "" || len(id) > 255 || !utf8.ValidString(id) {
		return false
	}
	return !strings.ContainsRune(id, 0)
}

// Get returns the user with the given ID, or ErrNotFound.
func (s *Service) Get(ctx context.Context, id string) (*storage.User, error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	u, err := s.store.User(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: get user: %w", err)
	}
	return u, nil
}

// SetRoles adds the roles add to the user's set and takes the roles remove
// out of it (a name in both is removed), atomically, and returns the user
// as changed. Adding a role the user has, or removing one they have not,
// is no error. It fails with a *ValidationError on "roles" if a name is
// not valid (nothing changes), or ErrNotFound for an unknown user.
func (s *Service) SetRoles(ctx context.Context, userID string, add, remove []string) (*storage.User, error) {
	if err := checkRoles(add); err != nil {
		return nil, err
	}
	if err := checkRoles(remove); err != nil {
		return nil, err
	}
	if !validID(userID) {
		return nil, ErrNotFound
	}
	var u *storage.User
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.store.SetUserRoles(ctx, userID, add, remove); err != nil {
			return err
		}
		var err error
		if u, err = s.store.User(ctx, userID); err != nil {
			return err
		}
		return s.audit(ctx, "admin.user_roles_set", userID, map[string]any{"added": add, "removed": remove, "roles": u.Roles})
	})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("account: set roles: %w", err)
	}
	return u, nil
}

// MaxListLimit is the largest page List returns.
const MaxListLimit = 1000

// List returns at most limit users (1 to MaxListLimit) ordered by email,
// after skipping offset (0 or more). Out-of-range arguments give a
// *ValidationError.
func (s *Service) List(ctx context.Context, offset, limit int) ([]*storage.User, error) {
	if offset < 0 {
		return nil, &ValidationError{Field: "offset", Message: "The offset must not be negative."}
	}
	if limit < 1 || limit > MaxListLimit {
		return nil, &ValidationError{Field: "limit", Message: fmt.Sprintf("The limit must be between 1 and %d.", MaxListLimit)}
	}
	us, err := s.store.Users(ctx, offset, limit)
	if err != nil {
		return nil, fmt.Errorf("account: list users: %w", err)
	}
	return us, nil
}

// Delete removes the user with the given ID, their sessions and consents,
// and revokes their tokens. It fails with ErrNotFound for an unknown ID.
func (s *Service) Delete(ctx context.Context, id string) error {
	if !validID(id) {
		return ErrNotFound
	}
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.DeleteUser(ctx, id); err != nil {
			return err
		}
		return s.audit(ctx, "account.deleted", id, nil)
	})
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("account: delete user: %w", err)
	}
	return nil
}
