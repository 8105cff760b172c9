package api

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// maxBodyBytes bounds a JSON request body (the server's own limit is the
// same; this one also holds when the handler is mounted alone).
const maxBodyBytes = 1 << 20

// maxStringBytes bounds any string member; longer ones are refused by
// validation with their field named.
const maxStringBytes = 4096

// decode reads r's body, one JSON object, into v (a pointer to a struct
// whose members are the only ones accepted). Content-Type must be
// application/json (415); a body over 1 MiB is 413; malformed JSON, a
// member of the wrong type, an unknown member or trailing data is 400,
// naming the member where there is one.
func decode(w http.ResponseWriter, r *http.Request, v any) *Problem {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/json" {
		return problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Send the body as application/json.")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		if _, err2 := dec.Token(); !errors.Is(err2, io.EOF) {
			err = errors.New("trailing data")
		}
	}
	if err == nil {
		return nil
	}
	var (
		tooBig  *http.MaxBytesError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		return problem(http.StatusRequestEntityTooLarge, "too-large", "The body is larger than 1 MiB.")
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return invalid(FieldError{Field: typeErr.Field, Message: "must be " + jsonType(typeErr.Type.Kind().String())})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if !utf8.ValidString(name) || len(name) > 64 {
			name = "(unknown)"
		}
		return invalid(FieldError{Field: name, Message: "is not a member that can be set here"})
	case errors.Is(err, io.EOF):
		return problem(http.StatusBadRequest, "malformed", "The body is empty; send a JSON object.")
	}
	return problem(http.StatusBadRequest, "malformed", "Send one JSON object.")
}

// jsonType names a Go kind the way a JSON user would.
func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int64", "float64":
		return "a number"
	case "slice":
		return "an array"
	}
	return "an object"
}

// fields collects the validation errors of a request body's members.
type fields []FieldError

// check adds an error when s is longer than maxBytes, not UTF-8, or holds
// a NUL.
func (f *fields) check(name, s string, maxBytes int) {
	switch {
	case len(s) > maxBytes:
		*f = append(*f, FieldError{Field: name, Message: "is too long"})
	case !utf8.ValidString(s) || strings.ContainsRune(s, 0):
		*f = append(*f, FieldError{Field: name, Message: "holds characters that are not allowed"})
	}
}

// require is check for a member that must not be empty; what says what is
// expected ("" for nothing more than "is required").
func (f *fields) require(name, s string, maxBytes int, what string) {
	if s == "" {
		msg := "is required"
		if what != "" {
			msg += ": " + what
		}
		*f = append(*f, FieldError{Field: name, Message: msg})
		return
	}
	f.check(name, s, maxBytes)
}

// problem is the 400 for the errors collected, or nil for none.
func (f fields) problem() *Problem {
	if len(f) == 0 {
		return nil
	}
	return invalid(f...)
}
