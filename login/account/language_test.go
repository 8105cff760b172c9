package account

import (
	"context"
	"strings"
	"testing"

	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/storage/storagetest"
)

// A mail an administrator causes (no request language in the context) is
// in Config.DefaultLanguage; one a person's request causes, in that
// request's language.
func TestMailLanguage(t *testing.T) {
	storagetest.ForEach(t, func(t *testing.T, open func(testing.TB) *storage.Store) {
		e := newFlowEnv(t, open(t))
		e.s.cfg.DefaultLanguage = "fr"
		u := e.user(t, "ines@example.com", "")
		if err := e.s.SendPasswordReset(t.Context(), u.ID); err != nil {
			t.Fatal(err)
		}
		if m := e.rec.last(t, "ines@example.com"); m.Subject != "Choisissez un nouveau mot de passe" || !strings.Contains(m.HTML, `<html lang="fr">`) {
			t.Errorf("admin-sent reset: subject %q, want the default language's", m.Subject)
		}
		ctx := notify.WithLanguage(t.Context(), func(context.Context) string { return "es" })
		if err := e.s.SendPasswordReset(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if m := e.rec.last(t, "ines@example.com"); m.Subject != "Elige una contraseña nueva" {
			t.Errorf("reset from a Spanish request: subject %q", m.Subject)
		}
	})
}
