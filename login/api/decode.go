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

// checkString adds a FieldError to errs when s is too long, not UTF-8, or
// holds a NUL.
func checkString(errs []FieldError, field, s string, maxBytes int) []FieldError {
	switch {
	case len(s) > maxBytes:
		return append(errs, FieldError{Field: field, Message: "is too long"})
	case !utf8.ValidString(s) || strings.ContainsRune(s, 0):
		return append(errs, FieldError{Field: field, Message: "holds characters that are not allowed"})
	}
	return errs
}
