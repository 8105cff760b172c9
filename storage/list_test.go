package storage

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestDecodeList checks the hand-split fast path against encoding/json.
func TestDecodeList(t *testing.T) {
	tests := []struct {
		raw     string
		want    []string
		wantErr bool
	}{
		{raw: `[]`, want: []string{}},
		{raw: `null`, want: []string{}},
		{raw: `["openid"]`, want: []string{"openid"}},
		{raw: `["openid","email","offline_access"]`, want: []string{"openid", "email", "offline_access"}},
		{raw: `["https://app.example/cb?a=1,b=2"]`, want: []string{"https://app.example/cb?a=1,b=2"}},
		{raw: `["",""]`, want: []string{"", ""}},
		{raw: `["名前","ü"]`, want: []string{"名前", "ü"}},
		{raw: `["a\"b"]`, want: []string{`a"b`}},
		{raw: `["\u003cscript\u003e"]`, want: []string{"<script>"}},
		{raw: `[ "spaced" , "out" ]`, want: []string{"spaced", "out"}},
		{raw: `["a",]`, wantErr: true},
		{raw: `["a"]]`, wantErr: true},
		{raw: `["a]`, wantErr: true},
		{raw: `["a""b"]`, wantErr: true},
		{raw: `[1]`, wantErr: true},
		{raw: "[\"tab\there\"]", wantErr: true},
		{raw: "[\"\xff\"]", want: []string{"\ufffd"}},
		{raw: ``, wantErr: true},
	}
	for _, tt := range tests {
		got, err := decodeList([]byte(tt.raw))
		if (err != nil) != tt.wantErr {
			t.Errorf("decodeList(%q) error = %v, want error %v", tt.raw, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !slices.Equal(got, tt.want) {
			t.Errorf("decodeList(%q) = %q, want %q", tt.raw, got, tt.want)
		}
		// Whatever the path, the answer is encoding/json's.
		var std []string
		if jerr := json.Unmarshal([]byte(tt.raw), &std); (jerr != nil) != (err != nil) || (jerr == nil && len(std) > 0 && !slices.Equal(got, std)) {
			t.Errorf("decodeList(%q) = %q, %v; encoding/json says %q, %v", tt.raw, got, err, std, jerr)
		}
	}
}

func FuzzDecodeList(f *testing.F) {
	for _, s := range []string{`[]`, `["a","b"]`, `["a\"b"]`, `["x",]`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := decodeList(raw)
		var std []string
		jerr := json.Unmarshal(raw, &std)
		if (err != nil) != (jerr != nil) {
			t.Fatalf("decodeList(%q) error %v, encoding/json %v", raw, err, jerr)
		}
		if err == nil && len(std) > 0 && !slices.Equal(got, std) {
			t.Fatalf("decodeList(%q) = %q, encoding/json %q", raw, got, std)
		}
	})
}
