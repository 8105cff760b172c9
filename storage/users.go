package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/uptrace/bun"
)

// User is a person who can sign in. Email and Username are stored in their
// canonical (lower-case) form; the account package canonicalises them.
type User struct {
	bun.BaseModel `bun:"table:users"`

	// ID is the stable opaque subject ("sub") of the user.
	ID            string  `bun:"id,pk"`
	Email         string  `bun:"email"`
	EmailVerified bool    `bun:"email_verified"`
	Username      *string `bun:"username"`
	Phone         string  `bun:"phone"`
	PhoneVerified bool    `bun:"phone_verified"`
	Name          string  `bun:"name"`
	Bio           string  `bun:"bio"`
	// EmailSkeleton is the UTS #39 skeleton of Email, which look-alike
	// addresses share; unique. Empty (NULL) for a user from before
	// skeletons were stored until FillEmailSkeletons gives them one.
	EmailSkeleton string `bun:"email_skeleton,nullzero"`
	// PendingPhone is a number being verified, not yet Phone.
	PendingPhone string `bun:"pending_phone"`
	// PendingEmail is a new address being verified, not yet Email.
	PendingEmail string `bun:"pending_email"`
	// AvatarETag is empty when the user has no avatar.
	AvatarETag   string `bun:"avatar_etag"`
	PasswordHash string `bun:"password_hash"`
	// Roles is the user's set of role names, sorted and without
	// duplicates; never nil after a read ([]string{} for none). The
	// account package checks the names (account.ValidRoleName).
	Roles    []string `bun:"roles"`
	Disabled bool     `bun:"disabled"`
	// FailedLogins, Lockouts and LockedUntil are the password lockout of
	// browsers the account does not trust (PasswordCounter); FailedOTPs,
	// OTPLockouts and OTPLockedUntil the code step's (CodeCounter).
	FailedLogins      int          `bun:"failed_logins"`
	Lockouts          int          `bun:"lockouts"`
	LockedUntil       sql.NullTime `bun:"locked_until"`
	FailedOTPs        int          `bun:"failed_otps"`
	OTPLockouts       int          `bun:"otp_lockouts"`
	OTPLockedUntil    sql.NullTime `bun:"otp_locked_until"`
	PasswordChangedAt sql.NullTime `bun:"password_changed_at"`
	// KeptGrant is the grant whose tokens survived the last password
	// change ("" for none): it stays valid although older than the change.
	KeptGrant string    `bun:"kept_grant"`
	CreatedAt time.Time `bun:"created_at"`
	UpdatedAt time.Time `bun:"updated_at"`
}

// PreferredUsername returns the username, or "" when the user has none.
func (u *User) PreferredUsername() string {
	if u.Username == nil {
		return ""
	}
	return *u.Username
}

// CreateUser stores a new user, its roles sorted and without duplicates.
// It fails with ErrAlreadyExists when the ID, email or username is taken.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	now := s.nowUTC()
	u.CreatedAt, u.UpdatedAt = now, now
	u.Roles = roleSet(u.Roles, nil, nil)
	if _, err := s.idb(ctx).NewInsert().Model(u).Exec(ctx); err != nil {
		return fmt.Errorf("storage: create user: %w", translate(err))
	}
	return nil
}

// userColumns are the users table's columns in the order scanUser reads.
const userColumns = `id, email, email_verified, username, phone, phone_verified, name, bio, pending_phone,
avatar_etag, password_hash, roles, disabled, failed_logins, lockouts, locked_until, failed_otps, otp_lockouts,
otp_locked_until, password_changed_at, created_at, updated_at, email_skeleton, kept_grant, pending_email`

const selectUser = `SELECT ` + userColumns + ` FROM users WHERE id = ?`

// User returns the user with the given ID, or ErrNotFound. It runs on many
// requests (sessions, refreshes, userinfo), as a prepared statement, or
// not at all when the user was read ahead (a refresh on PostgreSQL).
func (s *Store) User(ctx context.Context, id string) (*User, error) {
	if cache := requestCacheOf(ctx); cache != nil {
		if u := cache.takeUser(id); u != nil {
			return u, nil
		}
	}
	row, err := s.queryRowPrepared(ctx, selectUser, id)
	if err != nil {
		return nil, fmt.Errorf("storage: get user: %w", err)
	}
	u := new(User)
	if err := row.Scan(u.scanDest(nil)...); err != nil {
		return nil, fmt.Errorf("storage: get user: %w", translate(err))
	}
	return u, nil
}

// scanDest returns the destinations of userColumns for Scan, after
// before's.
func (u *User) scanDest(before []any) []any {
	return append(before, &u.ID, &u.Email, &u.EmailVerified, &u.Username, &u.Phone, &u.PhoneVerified, &u.Name, &u.Bio,
		&u.PendingPhone, &u.AvatarETag, &u.PasswordHash, (*jsonList)(&u.Roles), &u.Disabled, &u.FailedLogins, &u.Lockouts,
		nullTime{&u.LockedUntil}, &u.FailedOTPs, &u.OTPLockouts, nullTime{&u.OTPLockedUntil}, nullTime{&u.PasswordChangedAt},
		dbTime{&u.CreatedAt}, dbTime{&u.UpdatedAt}, nullString{&u.EmailSkeleton}, &u.KeptGrant, &u.PendingEmail)
}

// UserByLogin returns the user whose canonical email or username equals
// login, or ErrNotFound.
func (s *Store) UserByLogin(ctx context.Context, login string) (*User, error) {
	u := new(User)
	err := s.idb(ctx).NewSelect().Model(u).
		WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where("email = ?", login).WhereOr("username = ?", login)
		}).Limit(1).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: get user by login: %w", translate(err))
	}
	return u, nil
}

// UserByEmailLookAlike returns the user whose canonical email is email or,
// when none is, whose email skeleton is skeleton (an address that looks the
// same), or ErrNotFound.
func (s *Store) UserByEmailLookAlike(ctx context.Context, email, skeleton string) (*User, error) {
	u := new(User)
	err := s.idb(ctx).NewSelect().Model(u).
		WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where("email = ?", email).WhereOr("email_skeleton = ?", skeleton)
		}).OrderExpr("CASE WHEN email = ? THEN 0 ELSE 1 END", email).Limit(1).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: get user by email: %w", translate(err))
	}
	return u, nil
}

// SkeletonClash names two users with look-alike addresses: UserID was left
// without an email skeleton because OtherID, created before, holds it.
type SkeletonClash struct{ UserID, OtherID string }

// skeletonFillPage is how many users FillEmailSkeletons fills in one
// transaction.
var skeletonFillPage = 500

// FillEmailSkeletons gives every user without an email skeleton (a user
// from before skeletons were stored) the skeleton of their email, computed
// by skeleton, oldest user first. A user whose skeleton an older user holds
// keeps none and is returned with that user. It can run while others
// register: the unique index decides, and a page that loses a race to a
// registration is filled again.
func (s *Store) FillEmailSkeletons(ctx context.Context, skeleton func(email string) string) ([]SkeletonClash, error) {
	var clashes []SkeletonClash
	skipped := 0 // the users left without a skeleton so far, first in the order
	for races := 0; ; {
		var page []User
		err := s.db.NewSelect().Model(&page).Column("id", "email").Where("email_skeleton IS NULL").
			Order("created_at", "id").Offset(int64(skipped)).Limit(int64(skeletonFillPage)).Scan(ctx)
		if err != nil {
			return clashes, fmt.Errorf("storage: fill email skeletons: %w", translate(err))
		}
		if len(page) == 0 {
			return clashes, nil
		}
		ids := make([]string, len(page))
		err = s.InTx(ctx, func(ctx context.Context) error {
			for i, u := range page {
				ids[i] = u.ID
				sk := skeleton(u.Email)
				if _, err := s.idb(ctx).NewUpdate().Model((*User)(nil)).Set("email_skeleton = ?", sk).
					Where("id = ?", u.ID).Where("email_skeleton IS NULL").
					Where("NOT EXISTS (SELECT 1 FROM users AS other WHERE other.email_skeleton = ?)", sk).Exec(ctx); err != nil {
					return err
				}
			}
			return nil
		})
		if errors.Is(translate(err), ErrAlreadyExists) && races < 3 {
			races++ // a registration took a skeleton meanwhile: fill the page again
			continue
		}
		if err != nil {
			return clashes, fmt.Errorf("storage: fill email skeletons: %w", translate(err))
		}
		var left []User
		if err := s.db.NewSelect().Model(&left).Column("id", "email").Where("id IN (?)", bun.In(ids)).
			Where("email_skeleton IS NULL").Scan(ctx); err != nil {
			return clashes, fmt.Errorf("storage: fill email skeletons: %w", translate(err))
		}
		skipped += len(left)
		for _, u := range left {
			var other string
			err := s.db.NewSelect().Model((*User)(nil)).Column("id").Where("email_skeleton = ?", skeleton(u.Email)).Scan(ctx, &other)
			if err != nil && !errors.Is(translate(err), ErrNotFound) {
				return clashes, fmt.Errorf("storage: fill email skeletons: %w", translate(err))
			}
			clashes = append(clashes, SkeletonClash{UserID: u.ID, OtherID: other})
		}
	}
}

// Users lists users ordered by email, at most limit of them after skipping
// offset.
func (s *Store) Users(ctx context.Context, offset, limit int) ([]*User, error) {
	var us []*User
	if err := s.idb(ctx).NewSelect().Model(&us).Order("email").Offset(int64(offset)).Limit(int64(limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: list users: %w", translate(err))
	}
	return us, nil
}

// DeleteUser removes a user, their sessions and consents (foreign keys), and
// revokes every token issued to them.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		if err := s.RevokeSubjectTokens(ctx, id); err != nil {
			return err
		}
		res, err := s.idb(ctx).NewDelete().Model((*User)(nil)).Where("id = ?", id).Exec(ctx)
		if err != nil {
			return fmt.Errorf("storage: delete user: %w", translate(err))
		}
		return oneRow(res, "delete user")
	})
}

// oneRow turns "no row affected" into ErrNotFound.
func oneRow(res sql.Result, op string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("storage: %s: %w", op, err)
	}
	if n == 0 {
		return fmt.Errorf("storage: %s: %w", op, ErrNotFound)
	}
	return nil
}

// UpdateUser writes the given columns of u (by ID), and updated_at.
func (s *Store) UpdateUser(ctx context.Context, u *User, columns ...string) error {
	u.UpdatedAt = s.nowUTC()
	res, err := s.idb(ctx).NewUpdate().Model(u).Column(append(columns, "updated_at")...).WherePK().Exec(ctx)
	if err != nil {
		return fmt.Errorf("storage: update user: %w", translate(err))
	}
	return oneRow(res, "update user")
}

// SetUserRoles adds the roles add to the user's set and takes the roles
// remove out of it (a name in both ends up removed), in one transaction
// that holds the row (SELECT … FOR UPDATE on PostgreSQL, the single
// writer on SQLite), so concurrent changes of one user's roles never lose
// one another. It bumps updated_at and returns the new set, sorted. Adding
// a role the user has, or removing one they have not, is no error; an
// unknown user is ErrNotFound. Names are stored as given: callers check
// them (account.ValidRoleName).
func (s *Store) SetUserRoles(ctx context.Context, id string, add, remove []string) ([]string, error) {
	var roles []string
	err := s.InTx(ctx, func(ctx context.Context) error {
		q := s.idb(ctx).NewSelect().Model((*User)(nil)).Column("roles").Where("id = ?", id)
		if s.dialect == Postgres {
			q = q.For("UPDATE")
		}
		var raw string
		if err := q.Scan(ctx, &raw); err != nil {
			return translate(err)
		}
		current, err := decodeList([]byte(raw))
		if err != nil {
			return fmt.Errorf("decode roles: %w", err)
		}
		roles = roleSet(current, add, remove)
		encoded, err := json.Marshal(roles)
		if err != nil {
			return err
		}
		// The row is held: the update changes it.
		_, err = s.idb(ctx).NewUpdate().Model((*User)(nil)).Set("roles = ?", string(encoded)).
			Set("updated_at = ?", s.nowUTC()).Where("id = ?", id).Exec(ctx)
		return translate(err)
	})
	if err != nil {
		return nil, fmt.Errorf("storage: set user roles: %w", err)
	}
	return roles, nil
}

// roleSet returns roles with add added and remove taken out, sorted and
// without duplicates; never nil.
func roleSet(roles, add, remove []string) []string {
	out := make([]string, 0, len(roles)+len(add))
	for _, r := range append(slices.Clone(roles), add...) {
		if !slices.Contains(remove, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// RolesContainPattern returns the LIKE pattern that matches the roles
// column of users who have role, for
//
//	roles LIKE ? ESCAPE '\'
//
// on either database. The quoted name is matched in the JSON array; a role
// name has no quote, backslash or %, but may have _, LIKE's one-character
// wildcard, which the pattern escapes: a_b does not match axb.
func RolesContainPattern(role string) string {
	return `%"` + escapeLike(role) + `"%`
}
