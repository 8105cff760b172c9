package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// Secrets' MACs and hashes (client secrets, CSRF tokens, one-time codes,
// flow-binding cookies, password keys) must be compared in constant time:
// hmac.Equal or crypto/subtle. These tests read the repository's sources
// and fail on a variable-time comparison of such a value, naming file and
// line (issue 14 item 8c).
//
// A value counts as a MAC or hash by the words of its name, as the code
// names them: SecretHash, CodeHash, BrowserHash, TokenHash, dummyHash,
// csrfMAC, codeMAC, hashID, mac, Hash(), Sum(), a client secret ...
// (secretWords). A comparison is ==, != or a switch, or a call to
// bytes.Equal and its kind (variableTime), with such a value on either
// side, after unwrapping string(...), []byte(...), slicing and
// hex/base64 encoding. Comparing with a constant (nil, "", a length) is
// not a leak and is allowed.

// secretWords are the camel-case words of names that hold MACs, hashes or
// secrets.
var secretWords = map[string]bool{
	"mac": true, "hmac": true, "hash": true, "hashed": true, "hashes": true, "digest": true,
	"sum": true, "csrf": true, "secret": true, "secrets": true, "pepper": true,
}

// notSecret are names with a secret word that hold no secret, and why.
var notSecret = map[string]string{
	// The account page lists a user's sessions by it and ends one by it:
	// the session cookie's SHA-256, shown to its owner, from which the
	// cookie cannot be derived.
	"IDHash": "a session's public identifier",
}

// variableTime are the comparison functions that stop at the first
// difference.
var variableTime = map[string]bool{
	"bytes.Equal": true, "bytes.Compare": true, "bytes.EqualFold": true, "bytes.HasPrefix": true, "bytes.HasSuffix": true,
	"strings.Compare": true, "strings.EqualFold": true, "strings.HasPrefix": true, "strings.HasSuffix": true,
	"slices.Equal": true, "slices.Compare": true, "reflect.DeepEqual": true,
}

// camelWords splits an identifier into lower-case words: csrfMAC → csrf
// mac, GetHashedSecret → get hashed secret, Sum256 → sum 256.
func camelWords(name string) []string {
	var words []string
	rs := []rune(name)
	start := 0
	for i := 1; i <= len(rs); i++ {
		if i == len(rs) || rs[i] == '_' ||
			unicode.IsUpper(rs[i]) && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])) ||
			unicode.IsDigit(rs[i]) != unicode.IsDigit(rs[i-1]) {
			if w := strings.Trim(string(rs[start:i]), "_"); w != "" {
				words = append(words, strings.ToLower(w))
			}
			start = i
		}
	}
	return words
}

// secretName returns the name that makes e a MAC, hash or secret, or "".
func secretName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.ParenExpr:
			e = x.X
			continue
		case *ast.StarExpr:
			e = x.X
			continue
		case *ast.SliceExpr:
			e = x.X
			continue
		case *ast.IndexExpr:
			e = x.X
			continue
		case *ast.CallExpr:
			name := funcName(x.Fun)
			// Conversions and encodings keep the value's meaning.
			if len(x.Args) == 1 && (name == "string" || name == "EncodeToString" || isByteSlice(x.Fun)) {
				e = x.Args[0]
				continue
			}
			return secretWord(name)
		case *ast.SelectorExpr:
			return secretWord(x.Sel.Name)
		case *ast.Ident:
			return secretWord(x.Name)
		}
		return ""
	}
}

func secretWord(name string) string {
	if _, ok := notSecret[name]; ok {
		return ""
	}
	for _, w := range camelWords(name) {
		if secretWords[w] {
			return name
		}
	}
	return ""
}

func isByteSlice(e ast.Expr) bool {
	at, ok := e.(*ast.ArrayType)
	if !ok || at.Len != nil {
		return false
	}
	id, ok := at.Elt.(*ast.Ident)
	return ok && (id.Name == "byte" || id.Name == "uint8")
}

// funcName is the last name of a called function: Sum for m.Sum, csrfMAC
// for h.csrfMAC, string for string.
func funcName(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return x.Sel.Name
	case *ast.IndexExpr: // a generic function
		return funcName(x.X)
	}
	return ""
}

// qualifiedName is pkg.Func for a call of a package's function.
func qualifiedName(e ast.Expr) string {
	if sel, ok := e.(*ast.SelectorExpr); ok {
		if pkg, ok := sel.X.(*ast.Ident); ok {
			return pkg.Name + "." + sel.Sel.Name
		}
	}
	return ""
}

// constant reports whether e is a constant or nil: comparing a MAC with
// one leaks nothing about the MAC's bytes.
func constant(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.BasicLit:
		return true
	case *ast.Ident:
		return x.Name == "nil" || x.Name == "true" || x.Name == "false"
	case *ast.ParenExpr:
		return constant(x.X)
	case *ast.CallExpr:
		return funcName(x.Fun) == "len" || funcName(x.Fun) == "cap"
	}
	return false
}

// timingLeaks returns file:line of every variable-time comparison of a
// MAC, hash or secret in the parsed file.
func timingLeaks(fset *token.FileSet, f *ast.File) []string {
	var found []string
	report := func(n ast.Node, how, name string) {
		found = append(found, fset.Position(n.Pos()).String()+": "+name+" compared with "+how+"; use hmac.Equal or subtle.ConstantTimeCompare")
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.BinaryExpr:
			if x.Op != token.EQL && x.Op != token.NEQ {
				return true
			}
			if constant(x.X) || constant(x.Y) {
				return true
			}
			for _, side := range []ast.Expr{x.X, x.Y} {
				if name := secretName(side); name != "" {
					report(x, x.Op.String(), name)
					break
				}
			}
		case *ast.CallExpr:
			fn := qualifiedName(x.Fun)
			if !variableTime[fn] {
				return true
			}
			for _, arg := range x.Args {
				if name := secretName(arg); name != "" && !constant(arg) {
					report(x, fn, name)
					break
				}
			}
		case *ast.SwitchStmt:
			if x.Tag == nil {
				return true
			}
			if name := secretName(x.Tag); name != "" {
				report(x, "switch", name)
			}
		}
		return true
	})
	return found
}

// moduleRoot is the directory holding go.mod, above the working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// TestConstantTimeComparisons scans every non-test Go file of the module
// (test-helper packages such as storagetest and notifytest excepted: they
// compare what tests wrote).
func TestConstantTimeComparisons(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || strings.HasSuffix(name, "test")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		for _, leak := range timingLeaks(fset, f) {
			rel, _ := filepath.Rel(root, leak)
			if rel == "" || strings.HasPrefix(rel, "..") {
				rel = leak
			}
			t.Error(rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Errorf("scanned %d Go files under %s, want the whole module", files, root)
	}
}

// TestTimingLeaksFound: the scanner finds each kind of variable-time
// comparison, and passes constant-time ones and comparisons with constants.
func TestTimingLeaksFound(t *testing.T) {
	tests := []struct {
		name, code string
		leak       bool
	}{
		{"== on a secret hash field", `ok := c.SecretHash == got`, true},
		{"!= on string conversions", `ok := string(mac) != string(c.CodeHash)`, true},
		{"bytes.Equal on a MAC", `ok := bytes.Equal(got, h.csrfMAC(v))`, true},
		{"bytes.Equal on a hash", `ok := bytes.Equal(client.SecretHash, sum)`, true},
		{"hashes as hex", `ok := hex.EncodeToString(mac) == want`, true},
		{"hashID result", `ok := hashID(c.Value) == pending.BrowserHash`, true},
		{"a slice of a MAC", `ok := string(mac[:16]) == want`, true},
		{"strings.HasPrefix of a hash", `ok := strings.HasPrefix(tokenHash, guess)`, true},
		{"switch on a MAC", "switch string(mac) {\ncase want:\n}", true},
		{"reflect.DeepEqual", `ok := reflect.DeepEqual(c.CodeHash, mac)`, true},
		{"hmac.Equal", `ok := hmac.Equal(got, h.csrfMAC(v))`, false},
		{"subtle", `ok := subtle.ConstantTimeCompare(key, h.key) == 1`, false},
		{"empty check", `ok := len(hash) == 0 || c.SecretHash == nil || secret == ""`, false},
		{"lengths", `ok := len(a.BrowserHash) == len(b)`, false},
		{"unrelated names", `ok := c.ID == id && state == next && consumed != summary`, false},
		{"a session's public identifier", `ok := id == ls.IDHash`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "package p\nfunc f() {\n" + tc.code + "\n_ = ok\n}\n"
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "plant.go", src, 0)
			if err != nil {
				t.Fatalf("parse %q: %v", tc.code, err)
			}
			leaks := timingLeaks(fset, f)
			if got := len(leaks) > 0; got != tc.leak {
				t.Errorf("timingLeaks(%q) = %q, want a leak: %v", tc.code, leaks, tc.leak)
			}
			for _, l := range leaks {
				if !strings.HasPrefix(l, "plant.go:3:") {
					t.Errorf("leak reported as %q, want plant.go:3", l)
				}
			}
		})
	}
}
