package login_test

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/torii-idp/torii/login"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

const (
	msgIncorrect = "The username or password is incorrect."
	msgLocked    = "Too many failed attempts. Try again in"
)

// One browser (one CSRF token, one IP) sends 59 parallel sign-ins for one
// account, one of them with the right password (SECURITY 46): at most the
// lockout threshold's worth is compared, and every other answer is the
// same lock message, the right password's too.
func TestLoginBurst(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		t.Parallel()
		e := newEnvWith(t, open, false, func(c *login.Config) {
			c.IPRateLimit = login.Limit{N: 1000, Per: time.Minute}
			c.IPFailureLimit = login.Limit{N: 1000, Per: time.Minute}
		})
		b := e.browser()
		tok := b.csrf(login.LoginPath)
		const n, rightOne = 59, 40
		resps := make([]*response, n)
		var wg sync.WaitGroup
		for i := range n {
			pw := "wrong password"
			if i == rightOne {
				pw = alicePassword
			}
			wg.Go(func() {
				resps[i] = b.post(login.LoginPath, url.Values{"csrf": {tok}, "username": {"alice"}, "password": {pw}})
			})
		}
		wg.Wait()
		var incorrect, locked, signedIn int
		for i, r := range resps {
			switch {
			case r.StatusCode == http.StatusSeeOther && i == rightOne:
				signedIn++
			case r.StatusCode == http.StatusUnauthorized && strings.Contains(r.body, msgIncorrect):
				incorrect++
			case r.StatusCode == http.StatusUnauthorized && strings.Contains(r.body, msgLocked):
				locked++
			default:
				t.Errorf("attempt %d = %d:\n%s", i, r.StatusCode, r.body)
			}
		}
		// At most the threshold's worth is compared. If the right password
		// was among them it signed in and ended the run of failures, so at
		// most the threshold's worth more may be compared after it (the
		// attacker then had the password already).
		maxCompared := 5
		if signedIn == 1 {
			maxCompared = 2*5 - 1 + 1
		}
		if incorrect+signedIn > maxCompared || locked != n-incorrect-signedIn {
			t.Errorf("%d incorrect, %d signed in, %d locked; want at most %d compared, the rest locked", incorrect, signedIn, locked, maxCompared)
		}
		if signedIn == 0 && !strings.Contains(resps[rightOne].body, msgLocked) {
			t.Errorf("the right password, refused, answered differently from the wrong ones:\n%s", resps[rightOne].body)
		}
		u, err := e.store.User(t.Context(), e.alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		if signedIn == 0 && (u.FailedLogins != 5 || u.Lockouts != 1) {
			t.Errorf("after the burst: %d failures, %d locks; want 5 and 1", u.FailedLogins, u.Lockouts)
		}
	})
}

// The client IP's failure budget is taken before the password is checked:
// of 30 parallel wrong passwords (for different names, so that no account
// lock interferes) with a budget of 3, exactly 3 are checked and the others
// get 429 with Retry-After.
func TestIPFailureBudgetBurst(t *testing.T) {
	e := newEnvWith(t, storagetest.NewSQLite, false, func(c *login.Config) {
		c.IPRateLimit = login.Limit{N: 1000, Per: time.Minute}
		c.IPFailureLimit = login.Limit{N: 3, Per: time.Hour}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	b := e.browser()
	tok := b.csrf(login.LoginPath)
	const n = 30
	resps := make([]*response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resps[i] = b.postFrom("203.0.113.7", login.LoginPath, url.Values{"csrf": {tok},
				"username": {"nobody" + string(rune('a'+i)) + "@example.com"}, "password": {"wrong password"}})
		})
	}
	wg.Wait()
	var checked, refused int
	for i, r := range resps {
		switch r.StatusCode {
		case http.StatusUnauthorized:
			checked++
		case http.StatusTooManyRequests:
			refused++
			if r.Header.Get("Retry-After") == "" {
				t.Errorf("attempt %d: 429 without Retry-After", i)
			}
		default:
			t.Errorf("attempt %d = %d", i, r.StatusCode)
		}
	}
	if checked != 3 || refused != n-3 {
		t.Errorf("%d checked, %d refused; want 3 and %d", checked, refused, n-3)
	}
	// A right password gives its failure back: it does not use the budget.
	other := "198.51.100.9"
	for range 5 {
		if r := b.postFrom(other, login.LoginPath, url.Values{"csrf": {tok}, "username": {"alice"}, "password": {alicePassword}}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("right password = %d, want 303", r.StatusCode)
		}
	}
}

// SECURITY 47: a browser that completed a sign-in of the account carries a
// device cookie, and others' wrong passwords do not lock it out.
func TestDeviceCookieSurvivesOthersLockout(t *testing.T) {
	for _, https := range []bool{false, true} {
		name := "http"
		if https {
			name = "https"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnvWith(t, storagetest.NewSQLite, https, func(c *login.Config) {
				c.IPRateLimit = login.Limit{N: 1000, Per: time.Minute}
				c.IPFailureLimit = login.Limit{N: 1000, Per: time.Minute}
			})
			cookieName := "torii_device"
			if https {
				cookieName = "__Host-torii_device"
			}
			mine := e.browser()
			r := mine.signIn("", "alice", alicePassword)
			c := r.cookie(cookieName)
			if r.StatusCode != http.StatusSeeOther || c == nil {
				t.Fatalf("sign-in = %d, device cookie %v", r.StatusCode, c)
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure != https || c.Domain != "" ||
				c.MaxAge < 89*24*3600 || !strings.HasPrefix(c.Value, "d1.") {
				t.Errorf("device cookie = %+v", c)
			}
			// Sign out: the device cookie stays, the session goes.
			if r := mine.post(login.LogoutPath, url.Values{"csrf": {mine.csrf(login.LogoutPath)}}); r.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign-out = %d", r.StatusCode)
			}

			attacker := e.browser()
			tok := attacker.csrf(login.LoginPath)
			for range 6 {
				attacker.post(login.LoginPath, url.Values{"csrf": {tok}, "username": {"alice"}, "password": {"guess"}})
			}
			if r := attacker.post(login.LoginPath, url.Values{"csrf": {tok}, "username": {"alice"}, "password": {alicePassword}}); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, msgLocked) {
				t.Fatalf("right password in the attacker's browser = %d, want the lock", r.StatusCode)
			}
			if r := e.browser().signIn("", "alice", alicePassword); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, msgLocked) {
				t.Errorf("right password in a new browser = %d, want the lock", r.StatusCode)
			}
			// A copied cookie value for another account, or a forged one,
			// does not help.
			forger := e.browser()
			forger.setJarCookie(cookieName, c.Value[:len(c.Value)-4]+"AAAA")
			if r := forger.signIn("", "alice", alicePassword); r.StatusCode != http.StatusUnauthorized {
				t.Errorf("forged device cookie = %d, want 401", r.StatusCode)
			}
			if r := mine.signIn("", "alice", alicePassword); r.StatusCode != http.StatusSeeOther {
				t.Errorf("right password in alice's own browser during the attack = %d, want 303:\n%s", r.StatusCode, r.body)
			}
		})
	}
}
