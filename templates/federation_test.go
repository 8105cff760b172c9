package templates

import (
	"strings"
	"testing"
)

// The federated buttons, the link page's code step and the account's
// identities render, with the basics every page meets.
func TestFederationTemplates(t *testing.T) {
	buttons := []FederatedButton{{Name: "github", Label: "GitHub"}, {Name: "oidc", Label: "Acme <SSO>"}}
	tests := []struct {
		name string
		page string
		data any
		want []string
	}{
		{"login buttons", "login.html", LoginPage{CSRF: "tok", Req: "req1", Federated: buttons},
			[]string{`action="/login/federated/github"`, "Continue with GitHub", "Continue with Acme &lt;SSO&gt;", `name="req" value="req1"`}},
		{"register buttons", "register.html", RegisterPage{CSRF: "tok", Federated: buttons}, []string{"Continue with GitHub"}},
		{"link code step", "federation-link.html", FederatedLinkPage{CSRF: "tok", Provider: "Google", Email: "a•••@example.com", Step: "code", Minutes: 10},
			[]string{`action="/login/federated/link/code"`, "a•••@example.com", `href="/login"`}},
		{"account identities", "account.html", AccountPage{CSRF: "tok", UserID: "u1", Email: "a@example.com",
			Identities:    []FederatedIdentity{{Provider: "github", Label: "GitHub", Subject: "42", Email: "gh@example.com"}},
			LinkProviders: buttons},
			[]string{`action="/account/federated/unlink"`, `name="subject" value="42"`, "Link another: GitHub"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := render(t, tc.page, tc.data)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("%s lacks %q", tc.page, w)
				}
			}
			// The layout's one script file is allowed; nothing inline.
			if strings.Count(out, "<script") != 1 || strings.Contains(out, "<script>") || strings.Contains(out, "style=") {
				t.Errorf("%s has a script besides torii.js, or inline style", tc.page)
			}
		})
	}
	if out := render(t, "login.html", LoginPage{CSRF: "tok"}); strings.Contains(out, "Continue with") {
		t.Error("login.html shows buttons without providers")
	}
}
