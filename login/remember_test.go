package login

import (
	"testing"
	"time"
)

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
