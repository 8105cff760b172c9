package account

import (
	"errors"
	"testing"

	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// auditTypes returns the types of the events about subject, oldest first.
func auditTypes(t *testing.T, st *storage.Store, subject string) []string {
	t.Helper()
	es, err := st.AuditEvents(t.Context(), storage.AuditQuery{Subject: subject, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	types := make([]string, len(es))
	for i, e := range es {
		types[len(es)-1-i] = e.Type
	}
	return types
}

func lastAudit(t *testing.T, st *storage.Store, subject, typ string) *storage.AuditEvent {
	t.Helper()
	es, err := st.AuditEvents(t.Context(), storage.AuditQuery{Subject: subject, Type: typ, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 {
		t.Fatalf("no %s event for %s (events: %v)", typ, subject, auditTypes(t, st, subject))
	}
	return es[0]
}

func TestAuditEvents(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newFlowEnv(t, b.Open(t))
			ctx := storage.WithAuditMeta(t.Context(), storage.AuditMeta{IP: "198.51.100.7", UserAgent: "test-agent", RequestID: "rq"})
			u := e.user(t, "ada@example.com", "")
			other := e.user(t, "bob@example.com", "")

			t.Run("SignIn", func(t *testing.T) {
				if _, err := e.s.Authenticate(ctx, "ada@example.com", "a quiet walrus sings"); err != nil {
					t.Fatal(err)
				}
				ev := lastAudit(t, e.store, u.ID, "sign_in.success")
				if ev.Actor != "user:"+u.ID || ev.IP != "198.51.100.7" || ev.UserAgent != "test-agent" || ev.RequestID != "rq" {
					t.Errorf("sign_in.success = %+v, want actor user:%s and the request's IP, agent and ID", ev, u.ID)
				}
				if _, err := e.s.Authenticate(ctx, "ada@example.com", "wrong"); !errors.Is(err, ErrInvalidCredentials) {
					t.Fatalf("wrong password: %v", err)
				}
				if ev := lastAudit(t, e.store, u.ID, "sign_in.failure"); ev.Detail["reason"] != "wrong_password" || ev.Actor != "" {
					t.Errorf("sign_in.failure = %+v, want reason wrong_password, no actor", ev)
				}
				if _, err := e.s.Authenticate(ctx, "nobody@example.com", "wrong"); !errors.Is(err, ErrInvalidCredentials) {
					t.Fatalf("unknown login: %v", err)
				}
				if ev := lastAudit(t, e.store, "", "sign_in.failure"); ev.Detail["reason"] != "unknown" {
					t.Errorf("unknown login's sign_in.failure = %+v, want reason unknown", ev)
				}
			})

			t.Run("Lockout", func(t *testing.T) {
				var locked *LockedError
				for i := 0; i < 20 && !errors.As(func() error { _, err := e.s.Authenticate(ctx, "bob@example.com", "wrong"); return err }(), &locked); i++ {
				}
				if locked == nil {
					t.Fatal("bob was never locked out")
				}
				lastAudit(t, e.store, other.ID, "account.locked")
				if ev := lastAudit(t, e.store, other.ID, "sign_in.failure"); ev.Detail["reason"] != "locked" {
					t.Errorf("sign-in on a locked account = %+v, want reason locked", ev)
				}
			})

			t.Run("PasswordChanged", func(t *testing.T) {
				if err := e.s.ChangePassword(ctx, u.ID, PasswordChange{Old: "a quiet walrus sings", New: "a brand new walrus"}); err != nil {
					t.Fatal(err)
				}
				if ev := lastAudit(t, e.store, u.ID, "password.changed"); ev.Actor != "user:"+u.ID {
					t.Errorf("password.changed actor = %q, want user:%s", ev.Actor, u.ID)
				}
			})

			t.Run("AdminActor", func(t *testing.T) {
				actx := storage.WithAuditActor(ctx, "client:admin-tool")
				if _, err := e.s.SetRoles(actx, u.ID, []string{"editor"}, nil); err != nil {
					t.Fatal(err)
				}
				if ev := lastAudit(t, e.store, u.ID, "admin.user_roles_set"); ev.Actor != "client:admin-tool" {
					t.Errorf("admin.user_roles_set actor = %q, want client:admin-tool", ev.Actor)
				}
				if _, err := e.s.SetActive(actx, other.ID, false); err != nil {
					t.Fatal(err)
				}
				if err := e.s.DeleteDeactivated(actx, other.ID); err != nil {
					t.Fatal(err)
				}
				if ev := lastAudit(t, e.store, other.ID, "admin.user_deleted"); ev.Actor != "client:admin-tool" {
					t.Errorf("admin.user_deleted actor = %q, want client:admin-tool", ev.Actor)
				}
				lastAudit(t, e.store, other.ID, "admin.user_deactivated")
			})

			t.Run("FailedAction", func(t *testing.T) {
				carol := e.user(t, "carol@example.com", "")
				taken := "ada@example.com"
				if _, err := e.s.AdminUpdate(storage.WithAuditActor(ctx, "cli"), carol.ID, AdminChanges{Email: &taken}); !errors.Is(err, ErrEmailTaken) {
					t.Fatalf("AdminUpdate(taken email) = %v, want ErrEmailTaken", err)
				}
				for _, typ := range auditTypes(t, e.store, carol.ID) {
					if typ == "admin.user_updated" {
						t.Errorf("a failed update left an admin.user_updated event")
					}
				}
			})

			t.Run("Deactivated", func(t *testing.T) {
				if err := e.s.Deactivate(ctx, u.ID, "a brand new walrus", ""); err != nil {
					t.Fatal(err)
				}
				lastAudit(t, e.store, u.ID, "account.deactivated")
			})
		})
	}
}
