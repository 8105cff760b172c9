package account

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/storage"
)

// rawRows returns every row of table, each column as bytes (times, numbers
// and NULLs formatted), read directly from the database.
func rawRows(t *testing.T, st *storage.Store, table string) [][][]byte {
	t.Helper()
	rows, err := st.DB().QueryContext(t.Context(), "SELECT * FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][][]byte
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([][]byte, len(cols))
		for i, v := range vals {
			switch v := v.(type) {
			case []byte:
				row[i] = v
			case string:
				row[i] = []byte(v)
			default:
				row[i] = fmt.Append(nil, v)
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Codes and link tokens are stored only as hashes: after sending a sign-in
// code, an SMS code, a registration code + link + ticket and a reset link,
// no row of one_time_codes or action_tokens holds any of them in clear.
func TestCodesAndTokensStoredHashed(t *testing.T) {
	forEachClocked(t, noLimits, func(t *testing.T, e *flowEnv) {
		ctx := t.Context()
		u := e.user(t, "uma@example.com", "")
		secrets := map[string]string{}
		if _, err := e.s.StartOTP(ctx, u.ID, "attempt", notify.Email); err != nil {
			t.Fatal(err)
		}
		secrets["sign-in code"] = codeIn(t, e.rec.last(t, u.Email))
		if _, err := e.s.StartPhoneVerification(ctx, u.ID, "+15557770004"); err != nil {
			t.Fatal(err)
		}
		secrets["phone code"] = codeIn(t, e.rec.last(t, "+15557770004"))
		ticket, err := e.s.Register(ctx, NewUser{Email: "vic@example.com", Password: "a quiet walrus sings"})
		if err != nil {
			t.Fatal(err)
		}
		m := e.rec.last(t, "vic@example.com")
		secrets["registration ticket"] = ticket
		secrets["verification code"] = codeIn(t, m)
		secrets["verification link token"] = tokenIn(t, m)
		decoy, err := e.s.Register(ctx, NewUser{Email: "uma@example.com", Password: "a quiet walrus sings"})
		if err != nil {
			t.Fatal(err)
		}
		secrets["decoy ticket"] = decoy
		if err := e.s.RequestPasswordReset(ctx, "uma@example.com"); err != nil {
			t.Fatal(err)
		}
		secrets["reset token"] = tokenIn(t, e.rec.last(t, u.Email))

		sawHash := false // proof that the raw read sees the stored values
		for _, table := range []string{"one_time_codes", "action_tokens"} {
			rows := rawRows(t, e.store, table)
			if len(rows) == 0 {
				t.Fatalf("%s is empty", table)
			}
			for _, row := range rows {
				for col, v := range row {
					sawHash = sawHash || bytes.Equal(v, []byte(hashToken(secrets["reset token"])))
					for what, secret := range secrets {
						if bytes.Contains(v, []byte(secret)) {
							t.Errorf("%s column %d holds the %s in clear", table, col, what)
						}
					}
				}
			}
		}
		if !sawHash {
			t.Error("the reset token's hash is not among the raw action_tokens values")
		}
		// The hashes are there: each token is found by its hash only.
		for _, what := range []string{"registration ticket", "verification link token", "reset token"} {
			purpose := map[string]string{"registration ticket": tokenRegistration, "verification link token": tokenVerifyLink, "reset token": tokenReset}[what]
			if _, err := e.store.ActionToken(ctx, hashToken(secrets[what]), purpose); err != nil {
				t.Errorf("%s: no row under its hash: %v", what, err)
			}
			if _, err := e.store.ActionToken(ctx, secrets[what], purpose); err == nil {
				t.Errorf("%s: a row under the token itself", what)
			}
		}
	})
}
