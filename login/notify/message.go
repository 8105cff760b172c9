// Package notify delivers Torii's mail and SMS through a durable outbox: a
// message is stored in the same transaction as the action that caused it,
// then sent by a worker with retries, once even with several nodes: one
// node at a time holds a message, for longer than an attempt can last. (A
// retry can still repeat a message the server took but whose answer was
// lost, as with any SMTP client.)
package notify

import "context"

// Channel is how a message travels.
type Channel string

// The channels.
const (
	Email Channel = "email"
	SMS   Channel = "sms"
)

// Message is one mail or SMS, fully rendered.
type Message struct {
	Channel Channel
	// To is an email address or an E.164 phone number.
	To string
	// Subject is the mail subject; unused for SMS.
	Subject string
	// Text is the plain-text body (the whole SMS).
	Text string
	// HTML is the optional HTML alternative of a mail.
	HTML string
}

// Enqueuer stores messages for delivery. Enqueue called with a context that
// carries a storage transaction stores the message inside it, so the
// message exists if and only if the action that caused it committed.
type Enqueuer interface {
	Enqueue(ctx context.Context, m Message) error
}
