package login

import "net/http"

// SignOut implements provider.Browser. (Temporary: replaced by the pages
// engineer's implementation when the branches merge.)
func (h *Handler) SignOut(w http.ResponseWriter, r *http.Request) error {
	return h.endSession(r.Context(), w, r)
}
