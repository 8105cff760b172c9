package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
)

// clientRequest is a client's registration metadata as the admin API takes
// it: the names the CLI prints (RFC 7591's, and Torii's own where RFC 7591
// has none). On PATCH, absent members stay as they are. The ID, the
// secret's hash and the creation time cannot be set; a client_secret may
// be chosen at creation only (else one is generated).
type clientRequest struct {
	ClientID                 *string   `json:"client_id"`
	ClientSecret             *string   `json:"client_secret"`
	ClientName               *string   `json:"client_name"`
	RedirectURIs             *[]string `json:"redirect_uris"`
	PostLogoutRedirectURIs   *[]string `json:"post_logout_redirect_uris"`
	AllowedCORSOrigins       *[]string `json:"allowed_cors_origins"`
	GrantTypes               *[]string `json:"grant_types"`
	ResponseTypes            *[]string `json:"response_types"`
	Scope                    *string   `json:"scope"`
	TokenEndpointAuthMethod  *string   `json:"token_endpoint_auth_method"`
	SkipConsent              *bool     `json:"skip_consent"`
	PKCE                     *string   `json:"pkce"`
	AccessTokenFormat        *string   `json:"access_token_format"`
	IDTokenSignedResponseAlg *string   `json:"id_token_signed_response_alg"`
	LogoURI                  *string   `json:"logo_uri"`
	ClientURI                *string   `json:"client_uri"`
}

// maxListItems bounds each list member of a client.
const maxListItems = 100

// apply sets the members given on spec; a value no client could have is a
// validation problem (the rest is provider.ClientSpec.Validate's).
func (in *clientRequest) apply(spec *provider.ClientSpec) *Problem {
	var f fields
	str := func(name string, from *string, to *string) {
		if from != nil {
			f.check(name, *from, maxStringBytes)
			*to = *from
		}
	}
	list := func(name string, from *[]string, to *[]string) {
		if from == nil {
			return
		}
		if len(*from) > maxListItems {
			f = append(f, FieldError{Field: name, Message: "has too many items"})
			return
		}
		for _, s := range *from {
			f.check(name, s, 2048)
		}
		*to = append([]string{}, *from...)
	}
	str("client_name", in.ClientName, &spec.Name)
	list("redirect_uris", in.RedirectURIs, &spec.RedirectURIs)
	list("post_logout_redirect_uris", in.PostLogoutRedirectURIs, &spec.PostLogoutRedirectURIs)
	list("allowed_cors_origins", in.AllowedCORSOrigins, &spec.CORSOrigins)
	list("grant_types", in.GrantTypes, &spec.GrantTypes)
	if in.ResponseTypes != nil && (len(*in.ResponseTypes) != 1 || (*in.ResponseTypes)[0] != "code") {
		f = append(f, FieldError{Field: "response_types", Message: `must be ["code"]`})
	}
	if in.Scope != nil {
		f.check("scope", *in.Scope, maxStringBytes)
		spec.Scopes = append([]string{}, strings.Fields(*in.Scope)...)
	}
	if in.TokenEndpointAuthMethod != nil {
		switch *in.TokenEndpointAuthMethod {
		case provider.AuthMethodBasic:
			spec.Public = false
		case provider.AuthMethodNone:
			spec.Public = true
		default:
			f = append(f, FieldError{Field: "token_endpoint_auth_method", Message: "must be client_secret_basic or none (a public client)"})
		}
	}
	if in.SkipConsent != nil {
		spec.SkipConsent = *in.SkipConsent
	}
	if in.PKCE != nil {
		switch *in.PKCE {
		case "required", "optional":
			spec.PKCEOptional = *in.PKCE == "optional"
		default:
			f = append(f, FieldError{Field: "pkce", Message: "must be required or optional"})
		}
	}
	str("access_token_format", in.AccessTokenFormat, &spec.TokenFormat)
	str("id_token_signed_response_alg", in.IDTokenSignedResponseAlg, &spec.IDTokenAlg)
	for _, u := range []struct {
		name     string
		from, to *string
	}{{"logo_uri", in.LogoURI, &spec.LogoURI}, {"client_uri", in.ClientURI, &spec.ClientURI}} {
		if u.from != nil {
			f.check(u.name, *u.from, 2048)
			*u.to = *u.from
		}
	}
	return f.problem()
}

// clientError maps the provider's refusal of a client to a problem.
func clientError(err error) error {
	var inv *provider.ErrInvalidClient
	switch {
	case errors.As(err, &inv) && inv.Conflict:
		return problem(http.StatusConflict, "conflict", inv.Reason)
	case errors.As(err, &inv):
		p := problem(http.StatusBadRequest, "validation", inv.Reason)
		p.Errors = []FieldError{{Field: "client", Message: inv.Reason}}
		return p
	case errors.Is(err, storage.ErrNotFound):
		return problem(http.StatusNotFound, "not-found", "There is no client with this ID.")
	}
	return err
}

func (h *Handler) adminListClients(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	cs, err := h.adminDeps.Clients().List(r.Context())
	if err != nil {
		return err
	}
	items := make([]provider.ClientMetadata, 0, len(cs))
	for _, c := range cs {
		items = append(items, provider.MetadataOf(c, ""))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

// adminCreateClient registers a client with the CLI's validation; the
// answer carries the secret, the only time it is shown.
func (h *Handler) adminCreateClient(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	var in clientRequest
	if p := decode(w, r, &in); p != nil {
		return p
	}
	var f fields
	if in.ClientID == nil {
		f.require("client_id", "", maxStringBytes, "")
	} else {
		f.require("client_id", *in.ClientID, maxStringBytes, "")
	}
	if p := f.problem(); p != nil {
		return p
	}
	spec := provider.ClientSpec{ID: *in.ClientID}
	if in.ClientSecret != nil {
		spec.Secret = *in.ClientSecret
	}
	if p := in.apply(&spec); p != nil {
		return p
	}
	c, secret, err := h.adminDeps.Clients().Register(r.Context(), spec)
	if err != nil {
		return clientError(err)
	}
	w.Header().Set("Location", AdminPrefix+"/clients/"+c.ID)
	writeJSON(w, http.StatusCreated, provider.MetadataOf(c, secret))
	return nil
}

func (h *Handler) adminGetClient(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	c, err := h.adminDeps.Clients().Get(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return clientError(err)
	}
	writeJSON(w, http.StatusOK, provider.MetadataOf(c, ""))
	return nil
}

// adminPatchClient changes the members given, validated as at
// registration: a refused change leaves the client as it was.
func (h *Handler) adminPatchClient(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	var in clientRequest
	if p := decode(w, r, &in); p != nil {
		return p
	}
	id := mux.Vars(r)["id"]
	switch {
	case in.ClientID != nil && *in.ClientID != id:
		return invalid(FieldError{Field: "client_id", Message: "cannot change"})
	case in.ClientSecret != nil:
		return invalid(FieldError{Field: "client_secret", Message: "changes only by rotation: POST …/secret"})
	}
	var refused *Problem
	c, err := h.adminDeps.Clients().Update(r.Context(), id, func(spec *provider.ClientSpec) {
		refused = in.apply(spec)
	})
	if refused != nil {
		return refused
	} else if err != nil {
		return clientError(err)
	}
	writeJSON(w, http.StatusOK, provider.MetadataOf(c, ""))
	return nil
}

func (h *Handler) adminDeleteClient(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	if err := h.adminDeps.Clients().Delete(r.Context(), mux.Vars(r)["id"]); err != nil {
		return clientError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// adminRotateSecret gives a confidential client a new secret, shown once;
// the old one stops working at once.
func (h *Handler) adminRotateSecret(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	c, secret, err := h.adminDeps.Clients().RotateSecret(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return clientError(err)
	}
	writeJSON(w, http.StatusOK, provider.MetadataOf(c, secret))
	return nil
}

func (h *Handler) adminListKeys(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	keys, err := h.adminDeps.Keys().List(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": keys})
	return nil
}

// adminRotateKeys adds a new signing key for each algorithm asked
// ({"algorithms": [...]}; no body: every one), as torii keys rotate does:
// published at once, signing after the activation delay.
func (h *Handler) adminRotateKeys(w http.ResponseWriter, r *http.Request, _ *adminCaller) error {
	var in struct {
		Algorithms []string `json:"algorithms"`
	}
	// No body (no length and no type, or an empty one) rotates every
	// algorithm.
	if r.ContentLength > 0 || (r.ContentLength < 0 && r.Header.Get("Content-Type") != "") {
		if p := decode(w, r, &in); p != nil {
			return p
		}
	}
	for _, alg := range in.Algorithms {
		if !provider.ValidAlg(alg) {
			return invalid(FieldError{Field: "algorithms", Message: "must name some of " + strings.Join(provider.Algorithms, ", ")})
		}
	}
	keys, err := h.adminDeps.Keys().Rotate(r.Context(), in.Algorithms...)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": keys})
	return nil
}
