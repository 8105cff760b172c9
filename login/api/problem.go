package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Problem is an RFC 9457 problem detail, the body of every error answer of
// the API (Content-Type application/problem+json). It never carries a
// stack trace, SQL text or a driver's message.
type Problem struct {
	// Type is a stable URI per kind of problem (TypePrefix + kind).
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Errors lists the fields of a request that failed validation.
	Errors []FieldError `json:"errors,omitempty"`

	retryAfter time.Duration
	bearer     string // WWW-Authenticate for 401 and 403 on bearer routes
}

// FieldError is one invalid member of a request body.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p *Problem) Error() string { return "api: " + strconv.Itoa(p.Status) + " " + p.Title }

// TypePrefix starts every problem type URI; the kind follows.
const TypePrefix = "urn:torii:problem:"

// Problem kinds and their titles.
var (
	kindTitles = map[string]string{
		"validation":             "The request is not valid",
		"malformed":              "The request body is not valid JSON of the expected shape",
		"unsupported-media-type": "The request body must be JSON",
		"too-large":              "The request body is too large",
		"unauthorized":           "An access token is required",
		"insufficient-scope":     "The access token does not allow this",
		"forbidden":              "Not allowed",
		"not-found":              "Not found",
		"method-not-allowed":     "Method not allowed",
		"conflict":               "Conflict",
		"too-many-requests":      "Too many requests",
		"invalid-code":           "The code is not right",
		"invalid-link":           "The link is invalid or expired",
		"invalid-credentials":    "The password is not right",
		"unavailable":            "Temporarily unavailable",
		"internal":               "Something went wrong on our side",
	}
)

// problem returns a problem of kind with status and detail.
func problem(status int, kind, detail string) *Problem {
	return &Problem{Type: TypePrefix + kind, Title: kindTitles[kind], Status: status, Detail: detail}
}

// invalid is a 400 validation problem for fields.
func invalid(errs ...FieldError) *Problem {
	p := problem(http.StatusBadRequest, "validation", "Some fields are not valid.")
	p.Errors = errs
	return p
}

// tooMany is a 429 that says when to retry.
func tooMany(wait time.Duration, detail string) *Problem {
	p := problem(http.StatusTooManyRequests, "too-many-requests", detail)
	p.retryAfter = wait
	return p
}

// writeProblem writes p.
func writeProblem(w http.ResponseWriter, p *Problem) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(max(int((p.retryAfter+time.Second-1)/time.Second), 1)))
	}
	if p.bearer != "" {
		h.Set("WWW-Authenticate", p.bearer)
	}
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if v != nil {
		json.NewEncoder(w).Encode(v)
	}
}

// NotFound answers a path under Prefix that has no route: 404 problem.
func NotFound(w http.ResponseWriter, _ *http.Request) {
	writeProblem(w, problem(http.StatusNotFound, "not-found", "There is no such route."))
}

// MethodNotAllowed answers a route asked with another method: 405 problem.
func MethodNotAllowed(w http.ResponseWriter, _ *http.Request) {
	p := problem(http.StatusMethodNotAllowed, "method-not-allowed", "The route does not take this method.")
	writeProblem(w, p)
}

// TooLarge answers a body over the server's limit: 413 problem.
func TooLarge(w http.ResponseWriter, _ *http.Request) {
	writeProblem(w, problem(http.StatusRequestEntityTooLarge, "too-large", "The body is larger than 1 MiB."))
}

// Unreadable answers a body that could not be read (the connection broke
// or sent a bad chunk): 400 problem.
func Unreadable(w http.ResponseWriter, _ *http.Request) {
	writeProblem(w, problem(http.StatusBadRequest, "malformed", "The request body could not be read."))
}

// Internal answers a request that failed on the server's side (a recovered
// panic): 500 problem, saying nothing of the cause.
func Internal(w http.ResponseWriter, _ *http.Request) {
	writeProblem(w, problem(http.StatusInternalServerError, "internal", ""))
}
