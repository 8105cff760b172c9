package storage_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ory/fosite"

	"github.com/torii-idp/torii/storage"
)

func TestIsUnavailable(t *testing.T) {
	pg := func(code string) error { return &pgconn.PgError{Code: code, Message: "m"} }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"ErrUnavailable", storage.ErrUnavailable, true},
		{"ErrUnavailable wrapped", fmt.Errorf("storage: commit: %w", storage.ErrUnavailable), true},
		{"inside fosite's server_error", fosite.ErrServerError.WithWrap(fmt.Errorf("account: authenticate: %w", storage.ErrUnavailable)), true},
		{"joined with a rollback error", errors.Join(storage.ErrUnavailable, errors.New("rollback")), true},
		{"driver.ErrBadConn", fmt.Errorf("x: %w", driver.ErrBadConn), true},
		{"sql.ErrConnDone", sql.ErrConnDone, true},
		{"pool deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"admin shutdown 57P01", pg("57P01"), true},
		{"crash shutdown 57P02", pg("57P02"), true},
		{"cannot connect now 57P03", pg("57P03"), true},
		{"connection failure 08006", pg("08006"), true},
		{"too many connections 53300", pg("53300"), true},
		{"raw driver error in fosite's unrecognised error", fosite.ErrorToRFC6749Error(pg("57P01")), true},
		{"unique violation", pg("23505"), false},
		{"serialization failure", pg("40001"), false},
		{"no rows", sql.ErrNoRows, false},
		{"not found", storage.ErrNotFound, false},
		{"invalid_grant", fosite.ErrInvalidGrant, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := storage.IsUnavailable(tt.err); got != tt.want {
				t.Errorf("IsUnavailable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
