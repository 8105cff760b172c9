package login

import (
	"net/http"

	"github.com/torii-idp/torii/templates"
)

var errMethodNotAllowed = &pageError{http.StatusMethodNotAllowed, templates.ErrorPage{
	Title:   "Page not available this way",
	Message: "This page cannot be reached this way. Go back and try again.",
}}

// NotFound answers a path no route serves with the styled error page
// (404), like every other page.
func (h *Handler) NotFound(w http.ResponseWriter, r *http.Request) {
	h.setPageHeaders(w.Header())
	h.fail(&pageWriter{ResponseWriter: w, h: h, r: r}, r, errNotFoundPage)
}

// MethodNotAllowed answers a route asked with a method it does not take
// with the styled error page (405).
func (h *Handler) MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	h.setPageHeaders(w.Header())
	h.fail(&pageWriter{ResponseWriter: w, h: h, r: r}, r, errMethodNotAllowed)
}
