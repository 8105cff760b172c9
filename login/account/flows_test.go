package account

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// recorder is a notify.Enqueuer that keeps what it is given.
type recorder struct {
	mu   sync.Mutex
	msgs []notify.Message
}

func (r *recorder) Enqueue(_ context.Context, m notify.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	return nil
}

func (r *recorder) last(t *testing.T, to string) notify.Message {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.msgs) - 1; i >= 0; i-- {
		if r.msgs[i].To == to {
			return r.msgs[i]
		}
	}
	t.Fatalf("no message to %s", to)
	return notify.Message{}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

var (
	codeRE = regexp.MustCompile(`\b\d{6}\b`)
	linkRE = regexp.MustCompile(`https?://\S+`)
)

func codeIn(t *testing.T, m notify.Message) string {
	t.Helper()
	c := codeRE.FindString(m.Text)
	if c == "" {
		t.Fatalf("no code in %q", m.Text)
	}
	return c
}

func tokenIn(t *testing.T, m notify.Message) string {
	t.Helper()
	l := linkRE.FindString(m.Text)
	u, err := url.Parse(l)
	if err != nil || u.Query().Get("token") == "" {
		t.Fatalf("no link with a token in %q", m.Text)
	}
	return u.Query().Get("token")
}

type flowEnv struct {
	s     *Service
	store *storage.Store
	rec   *recorder
	clock *storagetest.Clock
}

func newFlowEnv(t *testing.T, st *storage.Store) *flowEnv {
	rec := &recorder{}
	// The store stamps codes with the real time: the service's clock runs
	// with it (a frozen one would fall behind on a slow machine).
	clock := storagetest.NewRunningClock()
	s := New(st, Config{Notifier: rec, Issuer: "https://id.example.test", Now: clock.Now})
	return &flowEnv{s: s, store: st, rec: rec, clock: clock}
}

func (e *flowEnv) user(t *testing.T, email string, verifiedPhone string) *storage.User {
	t.Helper()
	u, err := e.s.Create(t.Context(), NewUser{Email: email, Password: "a quiet walrus sings", EmailVerified: true,
		Phone: verifiedPhone, PhoneVerified: verifiedPhone != ""})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSignInCodes(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := newFlowEnv(t, open(t))
		ctx := t.Context()
		u := e.user(t, "ann@example.com", "+15551230001")
		other := e.user(t, "ben@example.com", "")

		ch, err := e.s.StartOTP(ctx, u.ID, "attempt-1", notify.Email)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Destination != "a•••@example.com" || ch.Channel != notify.Email {
			t.Errorf("challenge = %+v", ch)
		}
		code := codeIn(t, e.rec.last(t, "ann@example.com"))
		wrong := "000000"
		if wrong == code {
			wrong = "111111"
		}
		for _, tc := range []struct {
			name, binding, userID, code string
			want                        error
		}{
			{"wrong", "attempt-1", u.ID, wrong, ErrCodeInvalid},
			{"7 digits", "attempt-1", u.ID, code + "1", ErrCodeInvalid},
			{"letters", "attempt-1", u.ID, "12ab56", ErrCodeInvalid},
			{"another attempt", "attempt-2", u.ID, code, ErrCodeDead},
			{"another user", "attempt-1", other.ID, code, ErrCodeDead},
		} {
			if err := e.s.CheckOTP(ctx, tc.userID, tc.binding, tc.code); !errors.Is(err, tc.want) {
				t.Errorf("%s: CheckOTP = %v, want %v", tc.name, err, tc.want)
			}
		}
		if err := e.s.CheckOTP(ctx, u.ID, "attempt-1", " "+code+" "); err != nil {
			t.Fatalf("right code: %v", err)
		}
		if err := e.s.CheckOTP(ctx, u.ID, "attempt-1", code); !errors.Is(err, ErrCodeDead) {
			t.Errorf("reused code: %v, want ErrCodeDead", err)
		}

		// Expiry.
		e.clock.Advance(31 * time.Second)
		e.s.StartOTP(ctx, u.ID, "attempt-3", notify.Email)
		code = codeIn(t, e.rec.last(t, "ann@example.com"))
		e.clock.Advance(11 * time.Minute)
		if err := e.s.CheckOTP(ctx, u.ID, "attempt-3", code); !errors.Is(err, ErrCodeDead) {
			t.Errorf("expired code: %v, want ErrCodeDead", err)
		}

		// Five wrong entries kill a code; the sixth entry, even right, fails.
		e.s.StartOTP(ctx, u.ID, "attempt-4", notify.SMS)
		sms := e.rec.last(t, "+15551230001")
		if sms.Channel != notify.SMS || len(sms.Text) > 160 {
			t.Errorf("SMS = %+v", sms)
		}
		code = codeIn(t, sms)
		wrong = "000000"
		if wrong == code {
			wrong = "111111"
		}
		for i := 1; i <= 5; i++ {
			want := ErrCodeInvalid
			if i == 5 {
				want = ErrCodeDead
			}
			if err := e.s.CheckOTP(ctx, u.ID, "attempt-4", wrong); !errors.Is(err, want) {
				t.Errorf("wrong entry %d: %v, want %v", i, err, want)
			}
		}
		if err := e.s.CheckOTP(ctx, u.ID, "attempt-4", code); !errors.Is(err, ErrCodeDead) {
			t.Errorf("6th entry (right code): %v, want ErrCodeDead", err)
		}
		var ve *ValidationError
		if _, err := e.s.StartOTP(ctx, other.ID, "b", notify.SMS); !errors.As(err, &ve) {
			t.Errorf("SMS to a user without a verified phone: %v", err)
		}
	})
}

func TestResendLimits(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := newFlowEnv(t, open(t))
		ctx := t.Context()
		u := e.user(t, "cat@example.com", "")
		if _, err := e.s.StartOTP(ctx, u.ID, "a", notify.Email); err != nil {
			t.Fatal(err)
		}
		var rl *RateLimitError
		if _, err := e.s.StartOTP(ctx, u.ID, "a", notify.Email); !errors.As(err, &rl) || rl.RetryAfter <= 0 || rl.RetryAfter > 31*time.Second {
			t.Fatalf("resend at once = %v, want a RateLimitError of about 30 s", err)
		}
		for i := 2; i <= 5; i++ {
			e.clock.Advance(31 * time.Second)
			if _, err := e.s.StartOTP(ctx, u.ID, "a", notify.Email); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		e.clock.Advance(31 * time.Second)
		if _, err := e.s.StartOTP(ctx, u.ID, "a", notify.Email); !errors.As(err, &rl) {
			t.Errorf("6th send in 15 minutes = %v, want a RateLimitError", err)
		}
		if n := e.rec.count(); n != 5 {
			t.Errorf("%d messages sent, want 5", n)
		}
		e.clock.Advance(16 * time.Minute)
		if _, err := e.s.StartOTP(ctx, u.ID, "a", notify.Email); err != nil {
			t.Errorf("after the window: %v", err)
		}
	})
}

func TestCodeLockout(t *testing.T) {
	e := newFlowEnv(t, storagetest.NewSQLite(t))
	ctx := t.Context()
	u := e.user(t, "dan@example.com", "")
	var locked *LockedError
	for i := 0; i < 10; i++ {
		e.clock.Advance(31 * time.Second)
		binding := "b" + string(rune('a'+i/5))
		if i%5 == 0 {
			if _, err := e.s.StartOTP(ctx, u.ID, binding, notify.Email); err != nil {
				t.Fatal(err)
			}
		}
		err := e.s.CheckOTP(ctx, u.ID, binding, "999999")
		if i == 9 && !errors.As(err, &locked) {
			t.Errorf("10th wrong code: %v, want a LockedError", err)
		}
	}
	if !errors.Is(locked, ErrInvalidCredentials) {
		t.Error("LockedError does not match ErrInvalidCredentials")
	}
	got, _ := e.store.User(ctx, u.ID)
	if got.FailedLogins != 0 || got.FailedOTPs != 10 {
		t.Errorf("failures: password %d, code %d; want counted apart (0, 10)", got.FailedLogins, got.FailedOTPs)
	}
}

func TestRegistration(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := newFlowEnv(t, open(t))
		ctx := t.Context()
		ticket, err := e.s.Register(ctx, NewUser{Email: "Eve@Example.com", Password: "a quiet walrus sings", Name: "Ève 🦊", Username: "eve"})
		if err != nil {
			t.Fatal(err)
		}
		u, _ := e.store.UserByLogin(ctx, "eve@example.com")
		if u == nil || u.EmailVerified || u.Name != "Ève 🦊" {
			t.Fatalf("registered user = %+v", u)
		}
		m := e.rec.last(t, "eve@example.com")
		if !strings.Contains(m.Subject, "Confirm") || !strings.HasPrefix(linkRE.FindString(m.Text), "https://id.example.test/verify?token=") {
			t.Errorf("verification mail = %+v", m)
		}
		if masked, _ := e.s.TicketEmail(ctx, ticket); masked != "e•••@example.com" {
			t.Errorf("TicketEmail = %q", masked)
		}
		if _, err := e.s.VerifyEmailCode(ctx, ticket, "000001"); !errors.Is(err, ErrCodeInvalid) && codeIn(t, m) != "000001" {
			t.Errorf("wrong code: %v", err)
		}
		got, err := e.s.VerifyEmailCode(ctx, ticket, codeIn(t, m))
		if err != nil || !got.EmailVerified {
			t.Fatalf("VerifyEmailCode = %v, %v", got, err)
		}
		if _, err := e.s.VerifyEmailLink(ctx, tokenIn(t, m)); !errors.Is(err, ErrLinkInvalid) {
			t.Errorf("the link still works after verification by code: %v", err)
		}

		// A taken address: the same kind of answer, a mail to the owner,
		// and a ticket that verifies nothing.
		before := e.rec.count()
		ticket2, err := e.s.Register(ctx, NewUser{Email: "EVE@example.com", Password: "another quiet walrus"})
		if err != nil || ticket2 == "" {
			t.Fatalf("Register(taken) = %q, %v; want a ticket and no error", ticket2, err)
		}
		owner := e.rec.last(t, "eve@example.com")
		if e.rec.count() != before+1 || !strings.Contains(owner.Subject, "tried to register") {
			t.Errorf("owner mail = %+v", owner)
		}
		if masked, _ := e.s.TicketEmail(ctx, ticket2); masked != "e•••@example.com" {
			t.Errorf("TicketEmail(decoy) = %q", masked)
		}
		for _, c := range []string{"000000", "123456", "999999"} {
			if _, err := e.s.VerifyEmailCode(ctx, ticket2, c); err == nil {
				t.Fatalf("a decoy ticket verified with %s", c)
			}
		}

		bad := []NewUser{
			{Email: "not-an-email", Password: "a quiet walrus sings"},
			{Email: "x@example.com", Password: strings.Repeat("p", 129)},
			{Email: "x@example.com", Password: "password123"},
			{Email: "x@example.com", Password: "short"},
			{Email: "x@example.com", Password: "a quiet walrus sings", Username: "eve"},
			{Email: "x@example.com", Password: "a quiet walrus sings", Name: "bad\u202Ename"},
		}
		for _, nu := range bad {
			var ve *ValidationError
			if _, err := e.s.Register(ctx, nu); !errors.As(err, &ve) {
				t.Errorf("Register(%q/%q) = %v, want a ValidationError", nu.Email, nu.Username, err)
			}
		}
	})
}

func TestVerificationLinkAndResend(t *testing.T) {
	e := newFlowEnv(t, storagetest.NewSQLite(t))
	ctx := t.Context()
	ticket, err := e.s.Register(ctx, NewUser{Email: "fay@example.com", Password: "a quiet walrus sings"})
	if err != nil {
		t.Fatal(err)
	}
	first := e.rec.last(t, "fay@example.com")
	var rl *RateLimitError
	if _, err := e.s.ResendVerification(ctx, ticket); !errors.As(err, &rl) {
		t.Errorf("immediate resend = %v, want a RateLimitError", err)
	}
	e.clock.Advance(31 * time.Second)
	ticket2, err := e.s.ResendVerification(ctx, ticket)
	if err != nil {
		t.Fatal(err)
	}
	second := e.rec.last(t, "fay@example.com")
	if _, err := e.s.VerifyEmailLink(ctx, tokenIn(t, first)); !errors.Is(err, ErrLinkInvalid) {
		t.Errorf("the first link works after a resend: %v", err)
	}
	if _, err := e.s.VerifyEmailCode(ctx, ticket, codeIn(t, first)); err == nil {
		t.Error("the first code works after a resend")
	}
	u, err := e.s.VerifyEmailLink(ctx, tokenIn(t, second))
	if err != nil || !u.EmailVerified {
		t.Fatalf("VerifyEmailLink = %v, %v", u, err)
	}
	if _, err := e.s.VerifyEmailLink(ctx, tokenIn(t, second)); !errors.Is(err, ErrLinkInvalid) {
		t.Errorf("link reused: %v", err)
	}
	_ = ticket2
}

func TestPasswordReset(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := newFlowEnv(t, open(t))
		ctx := t.Context()
		u := e.user(t, "gil@example.com", "")
		// A session and a refresh token that the reset must end.
		e.store.CreateLoginSession(ctx, &storage.LoginSession{IDHash: "sess", Subject: u.ID, AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
		c := &storage.Client{ID: "app", RedirectURIs: []string{}, GrantTypes: []string{}, ResponseTypes: []string{}, Scopes: []string{}, Audience: []string{}}
		e.store.CreateClient(ctx, c)
		req := fosite.NewRequest()
		req.ID, req.Client, req.RequestedAt = "r1", c, time.Now()
		sess := &fositeSession{Subject: u.ID}
		req.Session = sess
		if err := e.store.CreateRefreshTokenSession(ctx, "rt-sig", "", req); err != nil {
			t.Fatal(err)
		}

		if err := e.s.RequestPasswordReset(ctx, "nobody@example.com"); err != nil || e.rec.count() != 0 {
			t.Fatalf("reset for an unknown address = %v with %d mails; want nil and none", err, e.rec.count())
		}
		if err := e.s.RequestPasswordReset(ctx, "GIL@example.com"); err != nil {
			t.Fatal(err)
		}
		first := tokenIn(t, e.rec.last(t, "gil@example.com"))
		e.s.RequestPasswordReset(ctx, "gil@example.com")
		token := tokenIn(t, e.rec.last(t, "gil@example.com"))
		for name, bad := range map[string]string{"tampered": token[:len(token)-2] + "xx", "empty": "", "garbage": "a.b.c"} {
			if err := e.s.CheckResetToken(ctx, bad); !errors.Is(err, ErrLinkInvalid) {
				t.Errorf("%s link: %v", name, err)
			}
		}
		var ve *ValidationError
		if err := e.s.ResetPassword(ctx, token, "password123"); !errors.As(err, &ve) {
			t.Errorf("reset to a common password: %v", err)
		}
		if err := e.s.ResetPassword(ctx, token, "a brand new walrus"); err != nil {
			t.Fatal(err)
		}
		if err := e.s.ResetPassword(ctx, token, "yet another walrus"); !errors.Is(err, ErrLinkInvalid) {
			t.Errorf("reused link: %v", err)
		}
		if err := e.s.CheckResetToken(ctx, first); !errors.Is(err, ErrLinkInvalid) {
			t.Errorf("an older link survived the reset: %v", err)
		}
		got, _ := e.store.User(ctx, u.ID)
		if !got.PasswordChangedAt.Valid {
			t.Error("password_changed_at not set")
		}
		if _, err := e.store.LoginSession(ctx, "sess"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("session survived the reset: %v", err)
		}
		if _, err := e.store.GetRefreshTokenSession(ctx, "rt-sig", &fositeSession{}); !errors.Is(err, fosite.ErrInactiveToken) {
			t.Errorf("refresh token survived the reset: %v", err)
		}
		if m := e.rec.last(t, "gil@example.com"); !strings.Contains(m.Subject, "changed") {
			t.Errorf("no notice mail: %+v", m)
		}
		if _, err := e.s.Authenticate(ctx, "gil@example.com", "a brand new walrus"); err != nil {
			t.Errorf("sign-in with the new password: %v", err)
		}

		// Expired link.
		e.clock.Advance(time.Hour)
		e.s.RequestPasswordReset(ctx, "gil@example.com")
		old := tokenIn(t, e.rec.last(t, "gil@example.com"))
		e.clock.Advance(31 * time.Minute)
		if err := e.s.ResetPassword(ctx, old, "a third walrus here"); !errors.Is(err, ErrLinkInvalid) {
			t.Errorf("expired link: %v", err)
		}
	})
}

func TestChangePasswordAndDeactivate(t *testing.T) {
	e := newFlowEnv(t, storagetest.NewSQLite(t))
	ctx := t.Context()
	u := e.user(t, "hal@example.com", "")
	e.store.CreateLoginSession(ctx, &storage.LoginSession{IDHash: "keep", Subject: u.ID, AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
	e.store.CreateLoginSession(ctx, &storage.LoginSession{IDHash: "other", Subject: u.ID, AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
	if err := e.s.ChangePassword(ctx, u.ID, PasswordChange{Old: "wrong password", New: "a brand new walrus", KeepSession: "keep"}); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("wrong old password: %v", err)
	}
	if got, _ := e.store.User(ctx, u.ID); got.FailedLogins != 1 {
		t.Errorf("a wrong old password was not counted toward the lockout")
	}
	if err := e.s.ChangePassword(ctx, u.ID, PasswordChange{Old: "a quiet walrus sings", New: "a brand new walrus", KeepSession: "keep"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.LoginSession(ctx, "keep"); err != nil {
		t.Errorf("the current session ended: %v", err)
	}
	if _, err := e.store.LoginSession(ctx, "other"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("another session survived the change: %v", err)
	}
	if err := e.s.Deactivate(ctx, u.ID, "wrong", ""); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("deactivate with a wrong password: %v", err)
	}
	if err := e.s.Deactivate(ctx, u.ID, "a brand new walrus", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Authenticate(ctx, "hal@example.com", "a brand new walrus"); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("a deactivated account signs in: %v", err)
	}
}

func TestProfilePhoneSessionsApps(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := newFlowEnv(t, open(t))
		ctx := t.Context()
		u := e.user(t, "ivy@example.com", "")
		other := e.user(t, "jon@example.com", "")
		got, err := e.s.UpdateProfile(ctx, u.ID, Profile{Name: "Ivy 🌿", Username: "Ivy_2", Bio: "Line one\nLine two"})
		if err != nil || got.PreferredUsername() != "ivy_2" || got.Bio != "Line one\nLine two" {
			t.Fatalf("UpdateProfile = %+v, %v", got, err)
		}
		var ve *ValidationError
		if _, err := e.s.UpdateProfile(ctx, other.ID, Profile{Username: "ivy_2"}); !errors.As(err, &ve) || ve.Field != "username" {
			t.Errorf("taken username: %v", err)
		}
		if _, err := e.s.UpdateProfile(ctx, u.ID, Profile{Bio: strings.Repeat("b", 501)}); !errors.As(err, &ve) {
			t.Errorf("long bio: %v", err)
		}

		if _, err := e.s.StartPhoneVerification(ctx, u.ID, "555"); !errors.As(err, &ve) {
			t.Errorf("bad phone: %v", err)
		}
		if _, err := e.s.StartPhoneVerification(ctx, u.ID, "+15557770001"); err != nil {
			t.Fatal(err)
		}
		code := codeIn(t, e.rec.last(t, "+15557770001"))
		if err := e.s.VerifyPhone(ctx, u.ID, code); err != nil {
			t.Fatal(err)
		}
		got, _ = e.store.User(ctx, u.ID)
		if got.Phone != "+15557770001" || !got.PhoneVerified || !CanUseSMS(got) {
			t.Errorf("after verification: phone %q verified %v", got.Phone, got.PhoneVerified)
		}

		e.store.CreateLoginSession(ctx, &storage.LoginSession{IDHash: "mine", Subject: u.ID, AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
		e.store.CreateLoginSession(ctx, &storage.LoginSession{IDHash: "theirs", Subject: other.ID, AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
		if ls, _ := e.s.Sessions(ctx, u.ID); len(ls) != 1 || ls[0].IDHash != "mine" {
			t.Errorf("Sessions = %v", ls)
		}
		if err := e.s.EndSession(ctx, u.ID, "theirs"); !errors.Is(err, ErrNotFound) {
			t.Errorf("ending another user's session: %v", err)
		}
		if err := e.s.EndSession(ctx, u.ID, "mine"); err != nil {
			t.Errorf("EndSession: %v", err)
		}

		c := &storage.Client{ID: "app", Name: "The App", RedirectURIs: []string{}, GrantTypes: []string{}, ResponseTypes: []string{}, Scopes: []string{}, Audience: []string{}}
		e.store.CreateClient(ctx, c)
		e.store.SaveConsent(ctx, &storage.Consent{Subject: u.ID, ClientID: "app", Scopes: []string{"openid", "email"}})
		apps, _ := e.s.Apps(ctx, u.ID)
		if len(apps) != 1 || apps[0].ClientName != "The App" {
			t.Errorf("Apps = %+v", apps)
		}
		if err := e.s.RevokeApp(ctx, u.ID, "app"); err != nil {
			t.Fatal(err)
		}
		if apps, _ := e.s.Apps(ctx, u.ID); len(apps) != 0 {
			t.Errorf("after revoke: %+v", apps)
		}
	})
}

// A 1×1 lossless WebP image.
const tinyWebP = "UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA=="

func TestAvatar(t *testing.T) {
	e := newFlowEnv(t, storagetest.NewSQLite(t))
	ctx := t.Context()
	u := e.user(t, "kay@example.com", "")
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	img.Set(3, 3, color.RGBA{200, 10, 10, 255})
	var pngBuf, jpgBuf bytes.Buffer
	png.Encode(&pngBuf, img)
	jpeg.Encode(&jpgBuf, img, nil)
	webp, _ := base64.StdEncoding.DecodeString(tinyWebP)
	big := make([]byte, 5<<20)
	copy(big, pngBuf.Bytes())

	for _, tc := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"png", pngBuf.Bytes(), true},
		{"jpeg", jpgBuf.Bytes(), true},
		{"webp", webp, true},
		{"5 MiB", big, false},
		{"svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="1" height="1"/></svg>`), false},
		{"php renamed .png", []byte("<?php system($_GET['c']); ?>"), false},
		{"truncated png", pngBuf.Bytes()[:40], false},
		{"html", []byte("<html><script>alert(1)</script></html>"), false},
		{"empty", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.s.SetAvatar(ctx, u.ID, tc.data)
			var ve *ValidationError
			if tc.ok != (err == nil) || (!tc.ok && (!errors.As(err, &ve) || ve.Field != "avatar")) {
				t.Fatalf("SetAvatar = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				return
			}
			data, etag, err := e.s.Avatar(ctx, u.ID)
			if err != nil || etag == "" {
				t.Fatal(err)
			}
			if _, format, err := image.Decode(bytes.NewReader(data)); err != nil || format != "png" {
				t.Errorf("stored avatar is %q (%v), want a re-encoded PNG", format, err)
			}
		})
	}
	if err := e.s.RemoveAvatar(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.s.Avatar(ctx, u.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("after removal: %v", err)
	}
}

// fositeSession is a minimal fosite session for the refresh-token fixture.
type fositeSession struct {
	Subject   string
	ExpiresAt map[fosite.TokenType]time.Time
}

func (s *fositeSession) SetExpiresAt(k fosite.TokenType, t time.Time) {
	if s.ExpiresAt == nil {
		s.ExpiresAt = map[fosite.TokenType]time.Time{}
	}
	s.ExpiresAt[k] = t
}
func (s *fositeSession) GetExpiresAt(k fosite.TokenType) time.Time { return s.ExpiresAt[k] }
func (s *fositeSession) GetUsername() string                       { return "" }
func (s *fositeSession) GetSubject() string                        { return s.Subject }
func (s *fositeSession) Clone() fosite.Session                     { c := *s; return &c }
