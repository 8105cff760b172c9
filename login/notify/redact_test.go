package notify

import (
	"errors"
	"strings"
	"testing"

	"github.com/torii-idp/torii/storage"
)

// An attempt's error keeps nothing of its message that may be a code, a
// token or the recipient, however a server quoted it, and keeps the rest.
func TestSanitizeRedacts(t *testing.T) {
	const token = "N5XGQYLOMVZWC3DJNZTWK4TFMJQWY3DJNZTWK4TFMJQWY3DJ"
	m := &storage.OutboxMessage{Channel: "email", Recipient: "dee@example.com", Subject: "Confirm your email address",
		BodyText: "Your confirmation code is 424242.\nhttps://id.example/verify?token=" + token + "\n",
		BodyHTML: `<p style="font-size:28px">424242</p><a href="https://id.example/verify?token=` + token + `">confirm</a>`}
	tests := []struct {
		name, err, want string
	}{
		{"nothing quoted", "smtp: 451 4.3.0 try again later", "smtp: 451 4.3.0 try again later"},
		{"the code", "554 5.7.1 rejected: Your confirmation code is 424242.", "554 5.7.1 rejected: Your confirmation code is [redacted]."},
		{"the link", "554 spam: https://id.example/verify?token=" + token, "554 spam: https://id.example/verify?token=[redacted]"},
		{"a token cut short", "554 spam: https://id.example/verify?token=" + token[:11], "554 spam: https://id.example/verify?token=[redacted]"},
		{"the recipient", "550 5.1.1 <dee@example.com>: mailbox unavailable", "550 5.1.1 <[recipient]>: mailbox unavailable"},
		{"a number of the server's own", "550 queue 987654321 full", "550 queue 987654321 full"},
		{"credentials in a URL", "dial smtp://torii:mail-pass@mail.example:587 refused", "dial smtp://mail.example:587 refused"},
		{"the code across the cut at 300 bytes", strings.Repeat("x ", 148) + "424242", strings.Repeat("x ", 148) + "[red"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sanitize(errors.New(tc.err), m); got != tc.want {
				t.Errorf("sanitize(%q) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}
