package notifytest

import (
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"strings"
)

func newQP(r io.Reader) io.Reader { return quotedprintable.NewReader(r) }

func newB64(r io.Reader) io.Reader {
	raw, err := io.ReadAll(r)
	if err != nil {
		return strings.NewReader("")
	}
	clean := strings.Map(func(c rune) rune {
		if c == '\r' || c == '\n' || c == ' ' {
			return -1
		}
		return c
	}, string(raw))
	return base64.NewDecoder(base64.StdEncoding, strings.NewReader(clean))
}
