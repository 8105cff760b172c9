package main

import (
	"os"
	"strings"
	"testing"
)

// A half-configured provider stops serve with exit status 2 and one line
// naming the missing setting; secrets are never repeated.
func TestFederationConfigErrors(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantName string
	}{
		{"google without secret", map[string]string{"TORII_GOOGLE_CLIENT_ID": "g"}, nil, "TORII_GOOGLE_CLIENT_SECRET"},
		{"google secret without ID", map[string]string{"TORII_GOOGLE_CLIENT_SECRET": "hunter2"}, nil, "TORII_GOOGLE_CLIENT_ID"},
		{"github without secret", nil, []string{"--github-client-id", "gh"}, "TORII_GITHUB_CLIENT_SECRET"},
		{"facebook without secret", map[string]string{"TORII_FACEBOOK_CLIENT_ID": "fb"}, nil, "TORII_FACEBOOK_CLIENT_SECRET"},
		{"oidc without issuer", map[string]string{"TORII_OIDC_CLIENT_ID": "c", "TORII_OIDC_CLIENT_SECRET": "hunter2"}, nil, "TORII_OIDC_ISSUER"},
		{"oidc without client ID", map[string]string{"TORII_OIDC_ISSUER": "https://sso.example.com", "TORII_OIDC_CLIENT_SECRET": "hunter2"}, nil, "TORII_OIDC_CLIENT_ID"},
		{"oidc without secret", map[string]string{"TORII_OIDC_ISSUER": "https://sso.example.com", "TORII_OIDC_CLIENT_ID": "c"}, nil, "TORII_OIDC_CLIENT_SECRET"},
		{"oidc issuer plain http", map[string]string{"TORII_OIDC_ISSUER": "http://sso.example.com", "TORII_OIDC_CLIENT_ID": "c", "TORII_OIDC_CLIENT_SECRET": "hunter2"}, nil, "TORII_OIDC_ISSUER"},
		{"github URL not a URL", map[string]string{"TORII_GITHUB_URL": "github"}, nil, "TORII_GITHUB_URL"},
		{"empty oidc name", nil, []string{"--oidc-name", " "}, "TORII_OIDC_NAME"},
		{"bad federated OTP", map[string]string{"TORII_FEDERATED_OTP": "never"}, nil, "TORII_FEDERATED_OTP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cliEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, stderr := torii(t, append(tc.args, "serve")...)
			if code != 2 {
				t.Errorf("exit status %d, want 2 (stderr %q)", code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.wantName) {
				t.Errorf("stderr = %q, want one line naming %s", stderr, tc.wantName)
			}
			if strings.Contains(stderr, "hunter2") {
				t.Errorf("stderr repeats a secret: %q", stderr)
			}
		})
	}
}

// Configured providers' secrets never print themselves.
func TestFederationConfigLoads(t *testing.T) {
	cliEnv(t)
	t.Setenv("TORII_GITHUB_CLIENT_ID", "gh")
	t.Setenv("TORII_GITHUB_CLIENT_SECRET", "hunter2")
	t.Setenv("TORII_GITHUB_URL", "https://ghe.example.com/")
	t.Setenv("TORII_FEDERATED_OTP", "skip")
	all := settings()
	for _, s := range all {
		s.value = s.def
		if v, ok := os.LookupEnv(s.env); ok {
			s.value = v
		}
	}
	cfg, err := loadConfig(all)
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Federation
	if f.GitHubClientID != "gh" || f.GitHubClientSecret.Reveal() != "hunter2" || f.GitHubURL != "https://ghe.example.com" || f.OTP != "skip" || f.OIDCName != "Single sign-on" {
		t.Errorf("Federation = %+v", f)
	}
	if strings.Contains(strings.Join([]string{f.GitHubClientSecret.String()}, ""), "hunter2") {
		t.Error("the secret prints itself")
	}
}
