package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGroupCommit checks SQLite's grouped single writes: every caller gets
// its own statement's outcome, whatever else shares its commit, and what
// a caller was told succeeded is committed.
func TestGroupCommit(t *testing.T) {
	ctx := t.Context()
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "group.db")
	s, err := Open(ctx, dbURL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.group == nil {
		t.Fatal("a SQLite store has no group committer")
	}
	if _, err := s.db.ExecContext(ctx, "CREATE TABLE g (k TEXT PRIMARY KEY, v INTEGER NOT NULL CHECK (v >= 0))"); err != nil {
		t.Fatal(err)
	}
	const insert = "INSERT INTO g (k, v) VALUES (?, ?)"
	var takes [100]atomic.Int32

	tests := []struct {
		name string
		// run is one caller's statement; want is the error it must get
		// (nil for success) and rows the rows it must report.
		calls func(i int) (query string, args []any, wantErr bool, wantRows int64)
		n     int
	}{
		{"distinct inserts", func(i int) (string, []any, bool, int64) {
			return insert, []any{fmt.Sprintf("a%d", i), i}, false, 1
		}, 200},
		{"every fifth insert breaks a constraint", func(i int) (string, []any, bool, int64) {
			if i%5 == 0 {
				return insert, []any{fmt.Sprintf("b%d", i), -1}, true, 0
			}
			return insert, []any{fmt.Sprintf("b%d", i), i}, false, 1
		}, 200},
		{"duplicate keys", func(i int) (string, []any, bool, int64) {
			if i%2 == 1 {
				return insert, []any{fmt.Sprintf("a%d", i), i}, true, 0 // inserted by the first case
			}
			return insert, []any{fmt.Sprintf("c%d", i), i}, false, 1
		}, 100},
		{"updates report their own rows", func(i int) (string, []any, bool, int64) {
			if i < 50 {
				return "UPDATE g SET v = v + 1 WHERE k = ?", []any{fmt.Sprintf("a%d", i)}, false, 1
			}
			return "UPDATE g SET v = v + 1 WHERE k = ?", []any{"missing"}, false, 0
		}, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make([]error, tt.n)
			for i := range tt.n {
				wg.Go(func() {
					<-start
					q, args, wantErr, wantRows := tt.calls(i)
					res, err := s.execPrepared(ctx, q, args...)
					switch {
					case wantErr && err == nil:
						errs[i] = fmt.Errorf("call %d: no error, want one", i)
					case !wantErr && err != nil:
						errs[i] = fmt.Errorf("call %d: %v", i, err)
					case err == nil:
						if n, _ := res.RowsAffected(); n != wantRows {
							errs[i] = fmt.Errorf("call %d: %d rows, want %d", i, n, wantRows)
						}
					}
				})
			}
			close(start)
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Error(err)
			}
		})
	}

	// What the callers were told is what is stored.
	var n int
	if err := s.rdb.NewRaw("SELECT count(*) FROM g").Scan(ctx, &n); err != nil {
		t.Fatal(err)
	}
	if want := 200 + 160 + 50; n != want {
		t.Errorf("%d rows stored, want %d", n, want)
	}
	var bumped int
	if err := s.rdb.NewRaw("SELECT count(*) FROM g WHERE k LIKE 'a%' AND v = CAST(substr(k, 2) AS INTEGER) + 1").Scan(ctx, &bumped); err != nil {
		t.Fatal(err)
	}
	if bumped != 50 {
		t.Errorf("%d rows updated once, want 50", bumped)
	}

	// Statements returning a row (a take) share batches with failing ones:
	// each caller reads its own row, once; a missing row is ErrNoRows.
	t.Run("takes return their own row", func(t *testing.T) {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, 300)
		for i := range 300 {
			wg.Go(func() {
				<-start
				if i%3 == 0 {
					if _, err := s.execPrepared(ctx, insert, fmt.Sprintf("d%d", i), -1); err == nil {
						errs[i] = fmt.Errorf("call %d: a broken insert succeeded", i)
					}
					return
				}
				// c0, c2, …, c98 exist (v = the number); four callers take each.
				k := (i / 3 % 50) * 2
				row, err := s.queryRowWriter(ctx, "DELETE FROM g WHERE k = ? RETURNING v", fmt.Sprintf("c%d", k))
				if err != nil {
					errs[i] = err
					return
				}
				var v int
				switch err := row.Scan(&v); {
				case errors.Is(err, sql.ErrNoRows):
					takes[k].Add(1000)
				case err != nil:
					errs[i] = fmt.Errorf("call %d: %v", i, err)
				case v != k:
					errs[i] = fmt.Errorf("call %d: took v=%d from c%d", i, v, k)
				default:
					takes[k].Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Error(err)
		}
		for k := 0; k < 100; k += 2 {
			// One caller took the row, the three others found nothing.
			if n := takes[k].Load(); n != 3001 {
				t.Errorf("c%d: %d takes and %d misses, want 1 and 3", k, n%1000, n/1000)
			}
		}
		var left int
		if err := s.rdb.NewRaw("SELECT count(*) FROM g WHERE k LIKE 'c%' OR k LIKE 'd%'").Scan(ctx, &left); err != nil || left != 0 {
			t.Errorf("%d c or d rows left (%v), want 0", left, err)
		}
	})

	// Units (a SQLite transaction's writes) share batches: of the units
	// claiming one row exactly one wins, a loser's other writes are undone
	// (whether the claim comes first, with no savepoint, or after a write),
	// and a unit with a failing statement fails alone and leaves nothing.
	t.Run("units claim once and undo the losers", func(t *testing.T) {
		for k := range 20 {
			if _, err := s.execPrepared(ctx, insert, fmt.Sprintf("f%d", k), 1); err != nil {
				t.Fatal(err)
			}
		}
		errUsed := errors.New("used")
		var wins [20]atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, 200)
		for i := range 200 {
			wg.Go(func() {
				<-start
				v := i
				if i%7 == 0 {
					v = -1 // breaks the constraint
				}
				unit := []unitStmt{
					{query: "UPDATE g SET v = 0 WHERE k = ? AND v = 1", args: []any{fmt.Sprintf("f%d", i%20)}, notOne: errUsed},
					{query: insert, args: []any{fmt.Sprintf("h%d", i), v}},
				}
				if i%2 == 1 {
					unit[0], unit[1] = unit[1], unit[0]
				}
				err := s.group.unit(unit)
				switch {
				case i%7 == 0 && err == nil:
					errs[i] = fmt.Errorf("unit %d: a broken insert succeeded", i)
				case err == nil:
					wins[i%20].Add(1)
				case i%7 != 0 && !errors.Is(err, errUsed):
					errs[i] = fmt.Errorf("unit %d: %v", i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Error(err)
		}
		won := 0
		for k := range 20 {
			if n := wins[k].Load(); n != 1 {
				t.Errorf("f%d claimed by %d units, want 1", k, n)
			}
			won += int(wins[k].Load())
		}
		var rows, claimed int
		if err := s.rdb.NewRaw("SELECT count(*) FROM g WHERE k LIKE 'h%'").Scan(ctx, &rows); err != nil {
			t.Fatal(err)
		}
		if err := s.rdb.NewRaw("SELECT count(*) FROM g WHERE k LIKE 'f%' AND v = 0").Scan(ctx, &claimed); err != nil {
			t.Fatal(err)
		}
		// Every row has unbroken claimants, so each is won exactly once.
		if rows != 20 || claimed != 20 || won != 20 {
			t.Errorf("%d units won, %d inserts and %d claims stored; want 20 each", won, rows, claimed)
		}
	})

	// A unit's first statement that must change one row and changes more
	// is undone all the same, among other writes or alone.
	t.Run("a first statement changing more rows than one is undone", func(t *testing.T) {
		errUsed := errors.New("used")
		for round := range 5 {
			for _, k := range []string{"m1", "m2"} {
				if _, err := s.execPrepared(ctx, "INSERT OR REPLACE INTO g (k, v) VALUES (?, ?)", k, 1); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for i := range 10 {
				wg.Go(func() {
					if _, err := s.execPrepared(ctx, insert, fmt.Sprintf("o%d-%d", round, i), i); err != nil {
						t.Error(err)
					}
				})
			}
			err := s.group.unit([]unitStmt{
				{query: "UPDATE g SET v = 0 WHERE k IN ('m1', 'm2') AND v = 1", notOne: errUsed},
				{query: insert, args: []any{fmt.Sprintf("n%d", round), 1}},
			})
			wg.Wait()
			if !errors.Is(err, errUsed) {
				t.Errorf("round %d: unit = %v, want errUsed", round, err)
			}
			var changed int
			if err := s.rdb.NewRaw("SELECT count(*) FROM g WHERE k IN ('m1', 'm2') AND v = 0 OR k LIKE 'n%'").
				Scan(ctx, &changed); err != nil || changed != 0 {
				t.Errorf("round %d: %d rows of the undone unit left (%v), want 0", round, changed, err)
			}
		}
	})

	// Close while writes are under way: none hangs, and each write whose
	// caller was told it succeeded is in the file.
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok int
	)
	for i := range 100 {
		wg.Go(func() {
			if _, err := s.execPrepared(context.Background(), insert, fmt.Sprintf("z%d", i), i); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	s.Close()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(20 * time.Second):
		t.Fatal("writes still waiting 20 s after Close")
	}
	again, err := Open(ctx, dbURL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	var stored int
	if err := again.rdb.NewRaw("SELECT count(*) FROM g WHERE k LIKE 'z%'").Scan(ctx, &stored); err != nil {
		t.Fatal(err)
	}
	if stored != ok {
		t.Errorf("%d writes told they succeeded, %d stored", ok, stored)
	}
}
