package main

import (
	"context"
	"errors"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
)

// codeStep is the password grant's code step (provider.CodeStep) on
// login/account: the same codes, limits and lockout as the sign-in page,
// with account's errors told in the provider's terms.
type codeStep struct {
	accounts *account.Service
	// t counts wrong codes and locks as sign-ins' ends; nil for none.
	t *telemetry
}

var _ provider.CodeStep = codeStep{}

func (c codeStep) Channels(u *storage.User) []string {
	if account.CanUseSMS(u) {
		return []string{string(notify.Email), string(notify.SMS)}
	}
	return []string{string(notify.Email)}
}

func (c codeStep) SendCode(ctx context.Context, userID, binding, channel string) (string, error) {
	ch := notify.Email
	switch channel {
	case string(notify.Email):
	case string(notify.SMS):
		ch = notify.SMS
	default:
		return "", provider.ErrChannel
	}
	sent, err := c.accounts.StartOTP(ctx, userID, binding, ch)
	var (
		rl     *account.RateLimitError
		locked *account.LockedError
		ve     *account.ValidationError
	)
	switch {
	case err == nil:
		return sent.Destination, nil
	case errors.As(err, &rl):
		return "", &provider.RetryAfterError{After: rl.RetryAfter}
	case errors.As(err, &locked):
		return "", provider.ErrCodeGone
	case errors.As(err, &ve):
		return "", provider.ErrChannel
	}
	return "", err
}

func (c codeStep) CheckCode(ctx context.Context, userID, binding, code string) error {
	err := c.accounts.CheckOTP(ctx, userID, binding, code)
	var locked *account.LockedError
	if c.t != nil && errors.As(err, &locked) {
		c.t.signIn("locked")
	} else if c.t != nil && account.IsCodeFailure(err) {
		c.t.signIn("wrong_code")
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, account.ErrCodeInvalid):
		return provider.ErrCodeWrong
	case errors.Is(err, account.ErrCodeDead), errors.Is(err, account.ErrInvalidCredentials), errors.Is(err, account.ErrNotFound):
		// Dead code, locked code step (LockedError), or a user gone.
		return provider.ErrCodeGone
	}
	return err
}
