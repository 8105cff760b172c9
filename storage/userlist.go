package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// The orders FindUsers can list users in. Each is total: ties (on
// created_at) are broken by ID, so a position in the list is a key.
const (
	SortCreated     = "created_at"
	SortCreatedDesc = "-created_at"
	SortEmail       = "email"
	SortEmailDesc   = "-email"
)

// UserSorts are the valid UserQuery.Sort values.
var UserSorts = []string{SortCreated, SortCreatedDesc, SortEmail, SortEmailDesc}

// UserQuery selects a page of users for FindUsers.
type UserQuery struct {
	// Limit is the most users returned; it must be positive.
	Limit int
	// Sort is one of UserSorts; empty means SortCreated.
	Sort string
	// Search, when set, keeps the users whose email, username or name
	// contains it, in any case (ASCII letters only on SQLite, whose lower()
	// folds nothing else). LIKE's metacharacters in it match themselves.
	Search string
	// Role, when set, keeps the users who have it.
	Role string
	// Active, when set, keeps the users who are (or are not) deactivated.
	Active *bool
	// Verified, when set, keeps the users whose email is (or is not)
	// verified.
	Verified *bool
	// After, when set, starts the page after the user at this position of
	// the order (keyset pagination: users added or removed elsewhere in
	// the list never shift a page, so paging shows no user twice and skips
	// none that existed throughout).
	After *UserKey
}

// UserKey is a user's position in a FindUsers order.
type UserKey struct {
	CreatedAt time.Time
	Email     string
	ID        string
}

// KeyOf returns u's position.
func KeyOf(u *User) UserKey { return UserKey{CreatedAt: u.CreatedAt, Email: u.Email, ID: u.ID} }

// FindUsers returns a page of users matching q, in q.Sort's order.
func (s *Store) FindUsers(ctx context.Context, q UserQuery) ([]*User, error) {
	if q.Limit <= 0 {
		return nil, fmt.Errorf("storage: find users: limit %d", q.Limit)
	}
	col, desc := "created_at", false
	switch q.Sort {
	case "", SortCreated:
	case SortCreatedDesc:
		desc = true
	case SortEmail:
		col = "email"
	case SortEmailDesc:
		col, desc = "email", true
	default:
		return nil, fmt.Errorf("storage: find users: unknown sort %q", q.Sort)
	}
	var us []*User
	sel := s.idb(ctx).NewSelect().Model(&us)
	if q.Search != "" {
		pattern := "%" + escapeLike(strings.ToLower(q.Search)) + "%"
		sel = sel.WhereGroup(" AND ", func(g *bun.SelectQuery) *bun.SelectQuery {
			return g.Where(`email LIKE ? ESCAPE '\'`, pattern).
				WhereOr(`username LIKE ? ESCAPE '\'`, pattern).
				WhereOr(`lower(name) LIKE ? ESCAPE '\'`, pattern)
		})
	}
	if q.Role != "" {
		sel = sel.Where(`roles LIKE ? ESCAPE '\'`, RolesContainPattern(q.Role))
	}
	if q.Active != nil {
		sel = sel.Where("disabled = ?", !*q.Active)
	}
	if q.Verified != nil {
		sel = sel.Where("email_verified = ?", *q.Verified)
	}
	if q.After != nil {
		var key any = q.After.CreatedAt.UTC()
		if col == "email" {
			key = q.After.Email
		}
		op := ">"
		if desc {
			op = "<"
		}
		// (col, id) op (key, id), spelled out: both databases would take a
		// row value, but this form lets either use the index on col.
		sel = sel.WhereGroup(" AND ", func(g *bun.SelectQuery) *bun.SelectQuery {
			return g.Where("? "+op+" ?", bun.Ident(col), key).
				WhereOr("? = ? AND id "+op+" ?", bun.Ident(col), key, q.After.ID)
		})
	}
	order := " ASC"
	if desc {
		order = " DESC"
	}
	sel = sel.OrderExpr("?"+order, bun.Ident(col)).OrderExpr("id" + order).Limit(int64(q.Limit))
	if err := sel.Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: find users: %w", translate(err))
	}
	return us, nil
}

// escapeLike makes s match itself in a LIKE pattern with ESCAPE '\'.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// ResetDeviceAttempts clears the failure counts and locks of every browser
// trusted for the user.
func (s *Store) ResetDeviceAttempts(ctx context.Context, userID string) error {
	_, err := s.idb(ctx).NewUpdate().TableExpr("devices").
		Set("failed_logins = 0").Set("lockouts = 0").Set("locked_until = NULL").
		Where("user_id = ?", userID).
		Where("(failed_logins <> 0 OR lockouts <> 0 OR locked_until IS NOT NULL)").Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: reset device attempts: %w", translate(err))
	}
	return nil
}

// ErrUserActive is DeleteDeactivatedUser's answer for a user who is not
// deactivated.
var ErrUserActive = errors.New("storage: user is active")

// DeleteDeactivatedUser deletes a user as DeleteUser does, but only while
// deactivated, decided in the delete itself: a user activated meanwhile is
// ErrUserActive, an unknown one ErrNotFound.
func (s *Store) DeleteDeactivatedUser(ctx context.Context, id string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		res, err := s.idb(ctx).NewDelete().Model((*User)(nil)).Where("id = ?", id).Where("disabled = ?", true).Exec(ctx)
		if err != nil {
			return fmt.Errorf("storage: delete user: %w", translate(err))
		}
		if err := oneRow(res, "delete user"); errors.Is(err, ErrNotFound) {
			if _, err := s.User(ctx, id); err != nil {
				return err
			}
			return ErrUserActive
		} else if err != nil {
			return err
		}
		return s.RevokeSubjectTokens(ctx, id)
	})
}
