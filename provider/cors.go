package provider

import (
	"context"
	"net/http"

	"github.com/ory/fosite"

	"github.com/torii-idp/torii/storage"
)

// CORS (browser scripts of single-page apps). Clients register exact
// origins (ClientSpec.CORSOrigins). The token endpoint lets a script read
// its answer only when the origin is the requesting client's; revocation,
// userinfo and the account API when some client registered the origin.
// No answer ever carries "*" or allows credentials (cookies): these
// endpoints authenticate with the request's own credentials or a bearer
// token.

// corsAllowHeaders are the request headers scripts may send.
const corsAllowHeaders = "Authorization, Content-Type"

// AllowOrigin lets origin's scripts read the answer, and the headers that
// say why a request was refused and when to retry.
func AllowOrigin(h http.Header, origin string) {
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, Retry-After")
}

// WritePreflight answers a CORS preflight (OPTIONS): the methods and
// headers the route takes when allowed, no CORS headers otherwise (the
// browser then refuses the request); 204 either way.
func WritePreflight(w http.ResponseWriter, r *http.Request, allowed bool, methods string) {
	h := w.Header()
	h.Add("Vary", "Origin")
	if allowed {
		AllowOrigin(h, r.Header.Get("Origin"))
		h.Set("Access-Control-Allow-Methods", methods)
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
}

// OriginRegistered reports whether some client registered origin ("" and
// "null" never are). A database fault counts as not registered: the
// browser is refused, nothing else happens.
func (p *Provider) OriginRegistered(ctx context.Context, origin string) bool {
	if origin == "" || origin == "null" {
		return false
	}
	ok, err := p.store.OriginRegistered(ctx, origin)
	if err != nil {
		p.log.WarnContext(ctx, "cors: look up origin", "err", err)
		return false
	}
	return ok
}

// preflight serves OPTIONS on an endpoint taking methods.
func (p *Provider) preflight(methods string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		WritePreflight(w, r, p.OriginRegistered(r.Context(), r.Header.Get("Origin")), methods)
	}
}

// corsAnyClient lets the scripts of an origin some client registered read
// h's answers.
func (p *Provider) corsAnyClient(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" {
			w.Header().Add("Vary", "Origin")
			if p.OriginRegistered(r.Context(), origin) {
				AllowOrigin(w.Header(), origin)
			}
		}
		h(w, r)
	}
}

// corsForClient lets the scripts of the requesting client's own origins
// read a token endpoint answer (the client is known once fosite
// authenticated it).
func corsForClient(w http.ResponseWriter, r *http.Request, ar fosite.AccessRequester) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	w.Header().Add("Vary", "Origin")
	if ar == nil {
		return
	}
	if c, ok := ar.GetClient().(*storage.Client); ok && c.AllowsOrigin(origin) {
		AllowOrigin(w.Header(), origin)
	}
}
