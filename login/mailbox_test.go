package login_test

import (
	"context"
	"regexp"
	"sync"
	"testing"

	"github.com/torii-idp/torii/login/notify"
)

// mailbox is a notify.Enqueuer that keeps every message, so tests can read
// the codes and links Torii sends.
type mailbox struct {
	mu   sync.Mutex
	msgs []notify.Message
}

func (m *mailbox) Enqueue(_ context.Context, msg notify.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, msg)
	return nil
}

func (m *mailbox) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.msgs)
}

// last returns the newest message to to.
func (m *mailbox) last(t *testing.T, to string) notify.Message {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.msgs) - 1; i >= 0; i-- {
		if m.msgs[i].To == to {
			return m.msgs[i]
		}
	}
	t.Fatalf("no message to %s", to)
	return notify.Message{}
}

var (
	sixDigits = regexp.MustCompile(`\b\d{6}\b`)
	aLink     = regexp.MustCompile(`https?://\S+`)
)

func (m *mailbox) code(t *testing.T, to string) string {
	t.Helper()
	c := sixDigits.FindString(m.last(t, to).Text)
	if c == "" {
		t.Fatalf("no code in the message to %s", to)
	}
	return c
}

func (m *mailbox) link(t *testing.T, to string) string {
	t.Helper()
	l := aLink.FindString(m.last(t, to).Text)
	if l == "" {
		t.Fatalf("no link in the message to %s", to)
	}
	return l
}
