package login

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/templates"
)

// pending loads the authorization request req and its client; either one
// missing (expired, answered, client deleted) is errExpired.
func (h *Handler) pending(ctx context.Context, req string) (*storage.AuthRequest, *storage.Client, error) {
	ar, err := h.checkPending(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	c, err := h.store.Client(ctx, ar.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, errExpired
	}
	if err != nil {
		return nil, nil, err
	}
	return ar, c, nil
}

// consentScopes returns the scopes of a stored request form that u may be
// granted (provider.GrantableScopes: torii:admin only with the role admin),
// in order, without duplicates: the page asks for those, and records them.
func consentScopes(form string, u *storage.User) ([]string, error) {
	scopes, err := requestedScopes(form)
	if err != nil {
		return nil, err
	}
	return provider.GrantableScopes(u, scopes), nil
}

// requestedScopes returns the scopes of a stored request form, in order,
// without duplicates.
func requestedScopes(form string) ([]string, error) {
	v, err := url.ParseQuery(form)
	if err != nil {
		return nil, fmt.Errorf("login: parse stored request: %w", err)
	}
	var scopes []string
	for _, s := range strings.Fields(v.Get("scope")) {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return scopes, nil
}

func clientName(c *storage.Client) string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// consentForm serves GET /consent?req=ID.
func (h *Handler) consentForm(w http.ResponseWriter, r *http.Request) error {
	req := validReq(r.URL.Query().Get("req"))
	if req == "" {
		return errExpired
	}
	_, u, err := h.current(r)
	if err != nil {
		return err
	}
	if u == nil {
		return redirect(w, r, loginURL(req))
	}
	ar, c, err := h.pending(r.Context(), req)
	if err != nil {
		return err
	}
	scopes, err := consentScopes(ar.Form, u)
	if err != nil {
		return err
	}
	return h.render(w, http.StatusOK, "consent.html", templates.ConsentPage{
		ClientName: clientName(c),
		Scopes:     scopes,
		User:       u.Email,
		CSRF:       h.csrfToken(w, r),
		Req:        req,
		App:        appOfClient(c),
	})
}

// consent serves POST /consent: action=allow records the consent and
// resumes the request; action=deny resumes it with deny=1.
func (h *Handler) consent(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	if err := h.checkCSRF(r); err != nil {
		return err
	}
	rawReq, err := field(r.PostForm, "req")
	if err != nil {
		return err
	}
	req := validReq(rawReq)
	if req == "" {
		return errExpired
	}
	action, err := field(r.PostForm, "action")
	if err != nil {
		return err
	}
	if action != "allow" && action != "deny" {
		return errBadRequest
	}
	ls, u, err := h.current(r)
	if err != nil {
		return err
	}
	if ls == nil {
		return redirect(w, r, loginURL(req))
	}
	ctx := r.Context()
	ar, c, err := h.pending(ctx, req)
	if err != nil {
		return err
	}
	if action == "deny" {
		h.log.InfoContext(ctx, "login: consent denied", "subject", ls.Subject, "client_id", c.ID)
		return redirect(w, r, resumeURL(req)+"&deny=1")
	}
	scopes, err := consentScopes(ar.Form, u)
	if err != nil {
		return err
	}
	if err := h.saveConsent(ctx, ls.Subject, c.ID, scopes); err != nil {
		return err
	}
	h.log.InfoContext(ctx, "login: consent granted", "subject", ls.Subject, "client_id", c.ID, "scopes", strings.Join(scopes, " "))
	return redirect(w, r, resumeURL(req))
}

// saveConsent records that subject granted clientID the scopes, keeping the
// scopes granted before: allowing "profile" today does not take back
// "email" allowed yesterday.
func (h *Handler) saveConsent(ctx context.Context, subject, clientID string, scopes []string) error {
	granted := slices.Clone(scopes)
	prev, err := h.store.Consent(ctx, subject, clientID)
	switch {
	case err == nil:
		for _, s := range prev.Scopes {
			if !slices.Contains(granted, s) {
				granted = append(granted, s)
			}
		}
	case !errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("login: read consent: %w", err)
	}
	err = h.store.InTx(ctx, func(ctx context.Context) error {
		if err := h.store.SaveConsent(ctx, &storage.Consent{Subject: subject, ClientID: clientID, Scopes: granted}); err != nil {
			return err
		}
		return h.store.RecordAudit(ctx, &storage.AuditEvent{Type: "consent.granted", Actor: "user:" + subject,
			Subject: subject, ClientID: clientID, Detail: map[string]any{"scopes": granted}})
	})
	if err != nil {
		return fmt.Errorf("login: save consent: %w", err)
	}
	return nil
}
