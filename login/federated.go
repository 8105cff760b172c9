package login

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/login/federation"
	"github.com/torii-idp/torii/login/notify"
	"github.com/torii-idp/torii/storage"
	"github.com/torii-idp/torii/templates"
)

// Federated sign-in (login/federation):
//
//	POST /login/federated/{provider}            start (csrf, req): 303 to the provider
//	GET  /login/federated/{provider}/callback   the provider's answer
//	GET  /login/federated/link                  "an account with this email exists": prove it is yours
//	POST /login/federated/link                  action=password (with password) or action=mail: a code is mailed
//	POST /login/federated/link/code             the code: link, then sign in
//	POST /account/federated/{provider}          link another identity (signed in)
//	POST /account/federated/unlink              unlink (provider, subject)
const (
	FederatedPrefix   = "/login/federated/"
	FederatedLinkPath = "/login/federated/link"
	// FederatedOTPSkip (Config.FederatedOTP) trusts the upstream provider:
	// no code step after a federated sign-in unless the relying party asks
	// for one with acr_values=mfa.
	FederatedOTPSkip = "skip"
	// AMRFederated is the amr value of a sign-in through a provider.
	AMRFederated = "fed"
)

// federatedRoutes mounts the federated sign-in routes (none without a
// configured provider).
func (h *Handler) federatedRoutes(r *mux.Router) {
	if h.fed == nil || len(h.fed.Buttons()) == 0 {
		return
	}
	get := []string{http.MethodGet, http.MethodHead}
	r.Handle(FederatedLinkPath, h.page(h.limited(h.linkForm))).Methods(get...)
	r.Handle(FederatedLinkPath, h.page(h.limited(h.linkProve))).Methods(http.MethodPost)
	r.Handle(FederatedLinkPath+"/code", h.page(h.limited(h.linkCode))).Methods(http.MethodPost)
	r.Handle(FederatedPrefix+"{provider}", h.page(h.limited(h.federatedStart))).Methods(http.MethodPost)
	r.Handle(FederatedPrefix+"{provider}/callback", h.page(h.limited(h.federatedCallback))).Methods(get...)
	r.Handle(AccountPath+"/federated/unlink", h.page(h.limited(h.federatedUnlink))).Methods(http.MethodPost)
	r.Handle(AccountPath+"/federated/{provider}", h.page(h.limited(h.federatedLinkStart))).Methods(http.MethodPost)
}

// fedCookie names the cookie binding a trip to the provider to this
// browser; fedLinkCookie the one naming a pending link.
func (h *Handler) fedCookie() string     { return h.hostCookie("torii_fed") }
func (h *Handler) fedLinkCookie() string { return h.hostCookie("torii_fedlink") }

func (h *Handler) hostCookie(name string) string {
	if h.secure {
		return "__Host-" + name
	}
	return name
}

func cookieValue(r *http.Request, name string) string {
	if c, err := r.Cookie(name); err == nil {
		return c.Value
	}
	return ""
}

// federatedButtons fills the "Continue with …" buttons of the sign-in and
// registration pages.
func (h *Handler) federatedButtons(data any) any {
	if h.fed == nil {
		return data
	}
	var bs []templates.FederatedButton
	for _, b := range h.fed.Buttons() {
		bs = append(bs, templates.FederatedButton{Name: b.Name, Label: b.Label})
	}
	switch p := data.(type) {
	case templates.LoginPage:
		p.Federated = bs
		return p
	case templates.RegisterPage:
		p.Federated = bs
		return p
	}
	return data
}

func (h *Handler) fedSignInEnded(outcome string) {
	if h.signIns != nil {
		h.signIns("federated", outcome)
	}
}

// codeStepEnded reports how the code step of session ls ended, under the
// method the sign-in began with (password or federated).
func (h *Handler) codeStepEnded(ls *storage.LoginSession, outcome string) {
	if ls.IDP != "" {
		h.fedSignInEnded(outcome)
		return
	}
	h.signInEnded(outcome)
}

// fedFail shows a failure page with a way back to the sign-in form.
func (h *Handler) fedFail(w http.ResponseWriter, r *http.Request, status int, req, title, message string) error {
	h.log.InfoContext(r.Context(), "login: federated sign-in refused", "status", status, "reason", title)
	return h.render(w, status, "message.html", templates.MessagePage{Title: title, Message: message,
		LinkURL: loginURL(req), LinkText: "Back to sign-in"})
}

// federatedStart serves POST /login/federated/{provider}: Torii makes the
// state, stores the flow and sends the browser to the provider.
func (h *Handler) federatedStart(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	if err := h.checkCSRF(r); err != nil {
		return err
	}
	name := mux.Vars(r)["provider"]
	if !h.fed.Configured(name) {
		return errNotFoundPage
	}
	rawReq, err := field(r.PostForm, "req")
	if err != nil {
		return err
	}
	req := validReq(rawReq)
	if req != "" {
		if _, err := h.checkPending(r.Context(), req); err != nil {
			return err
		}
	}
	return h.beginTrip(w, r, name, storage.FlowLogin, req, "")
}

func (h *Handler) beginTrip(w http.ResponseWriter, r *http.Request, name, purpose, req, userID string) error {
	start, err := h.fed.Begin(r.Context(), name, purpose, req, userID)
	if k := federation.KindOf(err); k != 0 {
		h.log.WarnContext(r.Context(), "login: federated sign-in could not start", "provider", name, "err", err)
		return h.fedFail(w, r, http.StatusBadGateway, req, h.fed.Label(name)+" is not answering",
			"We could not reach "+h.fed.Label(name)+". Try again in a moment, or sign in another way.")
	} else if err != nil {
		return err
	}
	http.SetCookie(w, h.cookie(h.fedCookie(), start.Binding, 0))
	return redirect(w, r, start.URL)
}

// federatedCallback serves GET /login/federated/{provider}/callback.
func (h *Handler) federatedCallback(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	name := mux.Vars(r)["provider"]
	if !h.fed.Configured(name) {
		return errNotFoundPage
	}
	label := h.fed.Label(name)
	binding := cookieValue(r, h.fedCookie())
	http.SetCookie(w, h.cookie(h.fedCookie(), "", -1))
	res, err := h.fed.Finish(ctx, name, r.URL.Query(), binding)
	req := ""
	if res != nil {
		req = res.Flow.RequestID
	}
	switch federation.KindOf(err) {
	case 0:
		if err != nil {
			return err
		}
	case federation.KindState:
		h.failed(r)
		h.fedSignInEnded("bad_state")
		h.log.InfoContext(ctx, "login: federated callback refused", "provider", name, "err", err)
		return h.fedFail(w, r, http.StatusBadRequest, "", "Sign-in not recognised",
			"This sign-in with "+label+" was not started in this browser, or it was used already or has expired. Start again from the sign-in page.")
	case federation.KindCancelled:
		h.fedSignInEnded("cancelled")
		return h.fedFail(w, r, http.StatusBadRequest, req, "Sign-in cancelled",
			"You cancelled the sign-in with "+label+". Nothing was changed. You can sign in another way.")
	case federation.KindUnreachable:
		h.fedSignInEnded("upstream_error")
		h.log.WarnContext(ctx, "login: federated provider unreachable", "provider", name, "err", err)
		return h.fedFail(w, r, http.StatusBadGateway, req, label+" is not answering",
			"We could not reach "+label+" in time. Nothing was changed. Try again in a moment, or sign in another way.")
	default:
		h.fedSignInEnded("upstream_error")
		h.log.WarnContext(ctx, "login: federated sign-in failed", "provider", name, "err", err)
		return h.fedFail(w, r, http.StatusBadGateway, req, "Sign-in with "+label+" failed",
			label+" did not confirm who you are. Nothing was changed. Try again, or sign in another way.")
	}
	// The audit events of what follows name the relying party the sign-in
	// is for.
	r = r.WithContext(h.withAuditClient(ctx, req))
	ctx = r.Context()
	id := account.Identity{Provider: name, Subject: res.Identity.Subject, Email: res.Identity.Email,
		EmailVerified: res.Identity.EmailVerified, Name: res.Identity.Name}
	if res.Flow.Purpose == storage.FlowLink {
		return h.finishLinkAnother(w, r, res, id)
	}
	link, err := h.store.Identity(ctx, name, id.Subject)
	switch {
	case err == nil:
		u, err := h.accounts.Get(ctx, link.UserID)
		if errors.Is(err, account.ErrNotFound) {
			return h.fedFail(w, r, http.StatusBadRequest, req, "Account not found", "The account linked to this "+label+" identity no longer exists.")
		} else if err != nil {
			return err
		}
		return h.federatedSignIn(w, r, u, id, req)
	case !errors.Is(err, storage.ErrNotFound):
		return err
	}
	if id.Email == "" {
		h.fedSignInEnded("no_email")
		return h.fedFail(w, r, http.StatusBadRequest, req, "No email address from "+label,
			label+" did not give us a verified email address. Add one there, or create an account with your email and a password.")
	}
	owner, err := h.accounts.UserByEmail(ctx, id.Email)
	var ve *account.ValidationError
	switch {
	case errors.As(err, &ve):
		return h.fedFail(w, r, http.StatusBadRequest, req, "Unusable email address",
			"The email address "+label+" gave us cannot be used for an account here.")
	case errors.Is(err, account.ErrNotFound):
		u, err := h.accounts.CreateFederated(ctx, id)
		if errors.Is(err, account.ErrEmailTaken) || errors.Is(err, account.ErrIdentityTaken) {
			// Lost a race with a registration or another first sign-in.
			return h.fedFail(w, r, http.StatusConflict, req, "Please try again",
				"Your account changed while you were signing in. Start again from the sign-in page.")
		} else if errors.As(err, &ve) {
			return h.fedFail(w, r, http.StatusBadRequest, req, "Unusable email address",
				"The email address "+label+" gave us cannot be used for an account here.")
		} else if err != nil {
			return err
		}
		h.log.InfoContext(ctx, "login: account created through a provider", "subject", u.ID, "provider", name)
		h.copyPicture(ctx, u.ID, res.Identity.Picture)
		return h.federatedSignIn(w, r, u, id, req)
	case err != nil:
		return err
	}
	// An account has this email: never linked silently. The person proves
	// the account is theirs first — only when the provider vouches for the
	// address and the account's own address is confirmed; otherwise the
	// account's own sign-in comes first.
	if !id.EmailVerified || !owner.EmailVerified || owner.Disabled {
		h.fedSignInEnded("not_linked")
		return h.fedFail(w, r, http.StatusConflict, req, "Sign in with your password first",
			"An account may already use this email address. Sign in to it with your password, then link "+label+" on your account page.")
	}
	token, err := h.fed.PendingLink(ctx, res, owner.ID)
	if err != nil {
		return err
	}
	http.SetCookie(w, h.cookie(h.fedLinkCookie(), token, 0))
	return redirect(w, r, FederatedLinkPath)
}

// copyPicture makes the provider's picture the new account's, when it can
// be had (an https URL, a public address, at most 1 MiB, an image
// account.SetAvatar accepts); otherwise the account has none.
func (h *Handler) copyPicture(ctx context.Context, userID, pictureURL string) {
	if pictureURL == "" {
		return
	}
	data, err := h.fed.Picture(ctx, pictureURL)
	if err == nil {
		err = h.accounts.SetAvatar(ctx, userID, data)
	}
	if err != nil {
		h.log.InfoContext(ctx, "login: provider picture not copied", "subject", userID, "err", err)
	}
}

// federatedSignIn signs u in through identity id: refused for a disabled
// account; an unconfirmed address goes to the verification page; then the
// code step per TORII_OTP (TORII_FEDERATED_OTP=skip trusts the provider)
// or a session with amr fed and the provider as idp.
func (h *Handler) federatedSignIn(w http.ResponseWriter, r *http.Request, u *storage.User, id account.Identity, req string) error {
	ctx := r.Context()
	if u.Disabled {
		h.fedSignInEnded("disabled")
		return h.fedFail(w, r, http.StatusForbidden, req, "Account disabled",
			"The account linked to this "+h.fed.Label(id.Provider)+" identity is disabled. Contact the administrator.")
	}
	if err := h.accounts.FederatedSignIn(ctx, u, id); err != nil {
		return err
	}
	if !u.EmailVerified {
		h.fedSignInEnded("unverified")
		return h.startVerification(w, r, u.ID, req)
	}
	needCode, err := h.federatedNeedsCode(ctx, req)
	if err != nil {
		return err
	}
	if !needCode {
		if _, err := h.newFederatedSession(ctx, w, r, u.ID, []string{AMRFederated}, id.Provider, storage.SessionComplete); err != nil {
			return err
		}
		h.log.InfoContext(ctx, "login: signed in", "subject", u.ID, "amr", AMRFederated, "idp", id.Provider)
		h.fedSignInEnded("success")
		return h.afterSignIn(w, r, req)
	}
	binding, err := h.newFederatedSession(ctx, w, r, u.ID, []string{AMRFederated}, id.Provider, storage.SessionOTP)
	if err != nil {
		return err
	}
	return h.sendCode(w, r, u.ID, binding, req)
}

// sendCode mails the first code of a sign-in bound to binding and shows
// the code page, as the password sign-in does.
func (h *Handler) sendCode(w http.ResponseWriter, r *http.Request, userID, binding, req string) error {
	_, err := h.accounts.StartOTP(r.Context(), userID, binding, notify.Email)
	var rl *account.RateLimitError
	var locked *account.LockedError
	switch {
	case errors.As(err, &locked):
		return h.codeLocked(w, r, userID, req, locked)
	case errors.As(err, &rl):
		return redirect(w, r, codeURL(req, notify.Email, "wait"))
	case err != nil:
		return err
	}
	return redirect(w, r, codeURL(req, notify.Email, ""))
}

// federatedNeedsCode: with TORII_FEDERATED_OTP=skip, only a relying party
// asking acr_values=mfa gets the code step; otherwise TORII_OTP decides as
// for a password.
func (h *Handler) federatedNeedsCode(ctx context.Context, req string) (bool, error) {
	if h.cfg.FederatedOTP != FederatedOTPSkip && h.cfg.OTP == OTPAlways {
		return true, nil
	}
	return h.mfaAsked(ctx, req)
}

// newFederatedSession replaces the browser's session (no fixation) by one
// signed in through provider idp.
func (h *Handler) newFederatedSession(ctx context.Context, w http.ResponseWriter, r *http.Request, subject string, amr []string, idp, stage string) (string, error) {
	if err := h.dropSession(ctx, r); err != nil {
		return "", err
	}
	tok := newToken()
	now := h.cfg.Now()
	life := h.cfg.SessionLifetime
	maxAge := int(life.Seconds())
	if stage != storage.SessionComplete {
		life, maxAge = otpSessionLifetime, 0
	}
	ls := &storage.LoginSession{IDHash: hashToken(tok), Subject: subject, AuthTime: now, AMR: amr, IDP: idp,
		UserAgent: cleanUserAgent(r.UserAgent()), Stage: stage, ExpiresAt: now.Add(life)}
	if err := h.store.CreateLoginSession(ctx, ls); err != nil {
		return "", err
	}
	http.SetCookie(w, h.cookie(h.sessionCookie, tok, maxAge))
	return ls.IDHash, nil
}

// completeCodeStep ends the code step of the half-signed-in session ls:
// a password sign-in gets pwd otp (and a trusted device); a federated one
// keeps its methods and provider, plus otp.
func (h *Handler) completeCodeStep(ctx context.Context, w http.ResponseWriter, r *http.Request, ls *storage.LoginSession) error {
	if ls.IDP == "" {
		return h.startSession(ctx, w, r, ls.Subject, []string{"pwd", "otp"})
	}
	amr := append(slices.Clone(ls.AMR), "otp")
	_, err := h.newFederatedSession(ctx, w, r, ls.Subject, amr, ls.IDP, storage.SessionComplete)
	return err
}

// pendingLink reads the browser's pending link and its account.
func (h *Handler) pendingLink(r *http.Request) (*storage.FederationFlow, string, *storage.User, error) {
	ctx := r.Context()
	f, binding, err := h.fed.PendingLinkOf(ctx, cookieValue(r, h.fedLinkCookie()))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, "", nil, nil
	} else if err != nil {
		return nil, "", nil, err
	}
	u, err := h.accounts.Get(ctx, f.UserID)
	if errors.Is(err, account.ErrNotFound) {
		return nil, "", nil, nil
	} else if err != nil {
		return nil, "", nil, err
	}
	if u.Disabled {
		return nil, "", nil, nil
	}
	return f, binding, u, nil
}

func (h *Handler) linkExpired(w http.ResponseWriter, r *http.Request) error {
	return h.fedFail(w, r, http.StatusBadRequest, "", "Link request expired",
		"This request to link an account has expired or was used already. Start again from the sign-in page.")
}

func (h *Handler) linkPage(w http.ResponseWriter, r *http.Request, status int, f *storage.FederationFlow, u *storage.User, step, errMsg string) error {
	return h.render(w, status, "federation-link.html", templates.FederatedLinkPage{
		CSRF: h.csrfToken(w, r), Provider: h.fed.Label(f.Provider), Email: account.Mask(u.Email, notify.Email),
		HasPassword: u.PasswordHash != "", Step: step, Error: errMsg, Minutes: h.accounts.CodeMinutes(),
	})
}

// linkForm serves GET /login/federated/link: an account has this email;
// prove that it is yours.
func (h *Handler) linkForm(w http.ResponseWriter, r *http.Request) error {
	f, _, u, err := h.pendingLink(r)
	if err != nil {
		return err
	}
	if f == nil {
		return h.linkExpired(w, r)
	}
	step := "choose"
	if r.URL.Query().Get("step") == "code" {
		step = "code"
	}
	return h.linkPage(w, r, http.StatusOK, f, u, step, "")
}

// linkProve serves POST /login/federated/link: action=password checks the
// account's password, then (or with action=mail at once) mails a code to
// the account's address.
func (h *Handler) linkProve(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	if err := h.checkCSRF(r); err != nil {
		return err
	}
	ctx := r.Context()
	f, binding, u, err := h.pendingLink(r)
	if err != nil {
		return err
	}
	if f == nil {
		return h.linkExpired(w, r)
	}
	if r.PostForm.Get("action") == "password" {
		password, err := field(r.PostForm, "password")
		if err != nil {
			return err
		}
		if password == "" || len(password) > maxPasswordBytes {
			return h.linkPage(w, r, http.StatusBadRequest, f, u, "choose", "Enter your password.")
		}
		done, wait, ok := h.attempt(r)
		if !ok {
			return h.tooMany(w, wait)
		}
		got, err := h.accounts.AuthenticateOnDevice(ctx, u.Email, password, h.deviceToken(r))
		failed := errors.Is(err, account.ErrInvalidCredentials) || (err == nil && got.ID != u.ID)
		done(failed)
		if failed {
			return h.linkPage(w, r, http.StatusUnauthorized, f, u, "choose", msgInvalidCredentials)
		} else if err != nil {
			return err
		}
	}
	_, err = h.accounts.StartOTP(ctx, u.ID, binding, notify.Email)
	var rl *account.RateLimitError
	var locked *account.LockedError
	switch {
	case errors.As(err, &locked):
		return h.linkPage(w, r, http.StatusTooManyRequests, f, u, "choose", "Too many wrong codes. Try again in "+humanWait(locked.Until.Sub(h.cfg.Now()))+".")
	case errors.As(err, &rl):
		return h.linkPage(w, r, http.StatusTooManyRequests, f, u, "code", "A code was sent a moment ago. Use it, or try again in "+humanWait(rl.RetryAfter)+".")
	case err != nil:
		return err
	}
	return redirect(w, r, FederatedLinkPath+"?step=code")
}

// linkCode serves POST /login/federated/link/code: the right code links
// the identity (once) and signs the account in (amr fed otp).
func (h *Handler) linkCode(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	if err := h.checkCSRF(r); err != nil {
		return err
	}
	code, err := field(r.PostForm, "code")
	if err != nil {
		return err
	}
	ctx := r.Context()
	f, binding, u, err := h.pendingLink(r)
	if err != nil {
		return err
	}
	if f == nil {
		return h.linkExpired(w, r)
	}
	if _, ok := account.NormalizeCode(code); !ok {
		return h.linkPage(w, r, http.StatusBadRequest, f, u, "code", msgCodeShape)
	}
	done, wait, ok := h.attempt(r)
	if !ok {
		return h.tooMany(w, wait)
	}
	err = h.accounts.CheckOTP(ctx, u.ID, binding, code)
	var locked *account.LockedError
	done(errors.As(err, &locked) || account.IsCodeFailure(err))
	switch {
	case errors.As(err, &locked):
		return h.linkPage(w, r, http.StatusTooManyRequests, f, u, "choose", "Too many wrong codes. Try again in "+humanWait(locked.Until.Sub(h.cfg.Now()))+".")
	case account.IsCodeFailure(err):
		return h.linkPage(w, r, http.StatusUnauthorized, f, u, "code", "That code is not right. Check it and try again.")
	case err != nil:
		return err
	}
	taken, err := h.fed.TakePendingLink(ctx, cookieValue(r, h.fedLinkCookie()))
	if errors.Is(err, storage.ErrNotFound) {
		return h.linkExpired(w, r)
	} else if err != nil {
		return err
	}
	http.SetCookie(w, h.cookie(h.fedLinkCookie(), "", -1))
	id := account.Identity{Provider: taken.Provider, Subject: taken.Subject, Email: taken.Email, EmailVerified: true}
	if err := h.accounts.Link(ctx, u.ID, id); errors.Is(err, account.ErrIdentityTaken) {
		return h.fedFail(w, r, http.StatusConflict, taken.RequestID, "Already linked",
			"This "+h.fed.Label(taken.Provider)+" identity is linked to an account already.")
	} else if err != nil {
		return err
	}
	if err := h.accounts.FederatedSignIn(ctx, u, id); err != nil {
		return err
	}
	if _, err := h.newFederatedSession(ctx, w, r, u.ID, []string{AMRFederated, "otp"}, taken.Provider, storage.SessionComplete); err != nil {
		return err
	}
	h.log.InfoContext(ctx, "login: identity linked and signed in", "subject", u.ID, "idp", taken.Provider)
	h.fedSignInEnded("success")
	return h.afterSignIn(w, r, taken.RequestID)
}

// federatedLinkStart serves POST /account/federated/{provider}: a signed-in
// user links another identity.
func (h *Handler) federatedLinkStart(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	if err := h.checkCSRF(r); err != nil {
		return err
	}
	name := mux.Vars(r)["provider"]
	if !h.fed.Configured(name) {
		return errNotFoundPage
	}
	_, u, err := h.current(r)
	if err != nil {
		return err
	}
	if u == nil {
		return redirect(w, r, loginURL(""))
	}
	return h.beginTrip(w, r, name, storage.FlowLink, "", u.ID)
}

// finishLinkAnother ends a "Link another" trip: the browser must still be
// signed in as the user who began it.
func (h *Handler) finishLinkAnother(w http.ResponseWriter, r *http.Request, res *federation.Result, id account.Identity) error {
	ctx := r.Context()
	_, u, err := h.current(r)
	if err != nil {
		return err
	}
	if u == nil || u.ID != res.Flow.UserID {
		return h.fedFail(w, r, http.StatusBadRequest, "", "Sign-in not recognised",
			"Sign in to the account you want to link first, then link "+h.fed.Label(id.Provider)+" from your account page.")
	}
	if err := h.accounts.Link(ctx, u.ID, id); errors.Is(err, account.ErrIdentityTaken) {
		return redirect(w, r, AccountPath+"?done=identity-taken")
	} else if err != nil {
		return err
	}
	return redirect(w, r, AccountPath+"?done=identity-linked")
}

// federatedUnlink serves POST /account/federated/unlink (provider,
// subject): refused when it would leave the account no way to sign in.
func (h *Handler) federatedUnlink(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	if err := h.checkCSRF(r); err != nil {
		return err
	}
	_, u, err := h.current(r)
	if err != nil {
		return err
	}
	if u == nil {
		return redirect(w, r, loginURL(""))
	}
	name, subject := r.PostForm.Get("provider"), r.PostForm.Get("subject")
	err = h.accounts.Unlink(r.Context(), u.ID, name, subject)
	switch {
	case errors.Is(err, account.ErrLastSignInMethod):
		return h.render(w, http.StatusConflict, "message.html", templates.MessagePage{Title: "Cannot unlink",
			Message: "This is the only way to sign in to your account. Set a password first (use \"Forgot your password?\" on the sign-in page), then unlink it.",
			LinkURL: AccountPath, LinkText: "Back to your account"})
	case errors.Is(err, account.ErrNotFound):
		return errNotFoundPage
	case err != nil:
		return err
	}
	return redirect(w, r, AccountPath+"?done=identity-unlinked")
}

// identityLabels describes linked identities for the account page.
func (h *Handler) identityLabels(ctx context.Context, userID string) ([]templates.FederatedIdentity, []templates.FederatedButton, error) {
	if h.fed == nil || len(h.fed.Buttons()) == 0 {
		return nil, nil, nil
	}
	ids, err := h.accounts.Identities(ctx, userID)
	if err != nil {
		return nil, nil, err
	}
	var out []templates.FederatedIdentity
	for _, id := range ids {
		label := h.fed.Label(id.Provider)
		if label == "" {
			label = strings.ToUpper(id.Provider[:1]) + id.Provider[1:]
		}
		out = append(out, templates.FederatedIdentity{Provider: id.Provider, Label: label, Subject: id.Subject, Email: id.Email})
	}
	var bs []templates.FederatedButton
	for _, b := range h.fed.Buttons() {
		bs = append(bs, templates.FederatedButton{Name: b.Name, Label: b.Label})
	}
	return out, bs, nil
}
