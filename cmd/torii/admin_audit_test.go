package main

import (
	"github.com/torii-idp/torii/provider"
	"net/url"
	"strings"
	"testing"
)

// auditPage lists audit events through the admin API and fails on any
// status but 200.
func (a *adminEnv) auditPage(t *testing.T, query url.Values) ([]map[string]any, string) {
	t.Helper()
	status, body, _ := a.adm("GET", "/audit?"+query.Encode(), a.token, nil)
	if status != 200 {
		t.Fatalf("GET /audit?%s = %d %v", query.Encode(), status, body)
	}
	var es []map[string]any
	for _, it := range body["items"].([]any) {
		es = append(es, it.(map[string]any))
	}
	next, _ := body["next_cursor"].(string)
	return es, next
}

// TestAdminAPIAudit: sign-ins through the pages and an admin action are
// recorded with the request's IP, user agent and ID, and the admin caller
// as actor; the listing filters and pages.
func TestAdminAPIAudit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		a := newAdminEnv(t, dbURL)
		a.user("ann@example.com")
		id := a.userID("ann@example.com")

		// A wrong password, then the right one, in a browser.
		b := a.browser()
		p := a.get(b, a.issuer+"/login")
		f := p.formWith(t, "password")
		f.values.Set("username", "ann@example.com")
		f.values.Set("password", "not the password")
		a.post(b, f)
		a.signInWith(b, "ann@example.com", testPassword)

		if status, body, _ := a.adm("POST", "/users/"+id+"/unlock", a.token, nil); status != 200 {
			t.Fatalf("unlock = %d %v", status, body)
		}

		es, _ := a.auditPage(t, url.Values{"user": {id}})
		byType := map[string]map[string]any{}
		for _, e := range es {
			if byType[e["type"].(string)] == nil {
				byType[e["type"].(string)] = e
			}
		}
		for _, typ := range []string{"sign_in.failure", "sign_in.success", "admin.user_unlocked"} {
			e := byType[typ]
			if e == nil {
				t.Fatalf("no %s event for ann in %v", typ, es)
			}
			if e["subject"] != id || e["ip"] != "127.0.0.1" || !strings.HasPrefix(e["user_agent"].(string), "Go-http-client") || e["request_id"] == "" {
				t.Errorf("%s = %v, want subject %s, IP 127.0.0.1, the Go user agent and a request ID", typ, e, id)
			}
		}
		if e := byType["sign_in.failure"]; e["actor"] != "" || e["detail"].(map[string]any)["reason"] != "wrong_password" {
			t.Errorf("sign_in.failure = %v, want no actor, reason wrong_password", e)
		}
		if e := byType["sign_in.success"]; e["actor"] != "user:"+id {
			t.Errorf("sign_in.success actor = %v, want user:%s", e["actor"], id)
		}
		if e := byType["admin.user_unlocked"]; e["actor"] != "client:"+a.opsID {
			t.Errorf("admin.user_unlocked actor = %v, want client:%s", e["actor"], a.opsID)
		}

		// Newest first, and paging one at a time sees the same events.
		var paged []string
		query := url.Values{"user": {id}, "limit": {"1"}}
		for page := 0; ; page++ {
			if page > 50 {
				t.Fatal("paging does not end")
			}
			es, next := a.auditPage(t, query)
			for _, e := range es {
				paged = append(paged, e["id"].(string))
			}
			if next == "" {
				break
			}
			query.Set("cursor", next)
		}
		var all []string
		for _, e := range es {
			all = append(all, e["id"].(string))
		}
		if strings.Join(paged, " ") != strings.Join(all, " ") {
			t.Errorf("paged by one = %v, want %v", paged, all)
		}
		if es[0]["type"] != "admin.user_unlocked" {
			t.Errorf("first event = %v, want the newest (admin.user_unlocked)", es[0]["type"])
		}

		if es, _ := a.auditPage(t, url.Values{"type": {"admin.*"}, "since": {"1h"}}); len(es) == 0 || es[0]["type"] != "admin.user_unlocked" {
			t.Errorf("type=admin.*&since=1h = %v, want the unlock first", es)
		}
		if es, _ := a.auditPage(t, url.Values{"since": {"2999-01-01T00:00:00Z"}}); len(es) != 0 {
			t.Errorf("since (future) = %v, want none", es)
		}

		// A rotated refresh token presented again.
		_, refresh := a.tokens("ann@example.com", "openid offline_access")
		if refresh == "" {
			t.Fatal("no refresh token")
		}
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
		if status, body, _ := a.postForm("/oauth2/token", form, a.id, a.secret); status != 200 {
			t.Fatalf("refresh = %d %v", status, body)
		}
		if status, _, _ := a.postForm("/oauth2/token", form, a.id, a.secret); status != 400 {
			t.Fatalf("refresh again = %d, want 400", status)
		}
		if es, _ := a.auditPage(t, url.Values{"type": {"token.reuse_detected"}}); len(es) != 1 || es[0]["client_id"] != a.id {
			t.Errorf("token.reuse_detected events = %v, want one for client %s", es, a.id)
		}

		// A sign-in in the browser for a relying party names it as the
		// events' client; the sign-in above, for none, names none.
		if e := byType["sign_in.success"]; e["client_id"] != "" {
			t.Errorf("sign_in.success without an application: client_id = %v, want none", e["client_id"])
		}
		appID, appSecret := a.client(provider.ClientSpec{ID: "audit-app", Name: "Audit App", SkipConsent: true})
		a.login(a.oauth2Config(appID, appSecret), a.browser(), "ann@example.com")
		if es, _ := a.auditPage(t, url.Values{"user": {id}, "type": {"sign_in.success"}, "limit": {"1"}}); len(es) != 1 || es[0]["client_id"] != appID {
			t.Errorf("newest sign_in.success after a sign-in for %s = %v, want client_id %s", appID, es, appID)
		}

		_, next := a.auditPage(t, url.Values{"user": {id}, "limit": {"1"}})
		for _, tc := range []struct {
			query, field string
		}{
			{"limit=0", "limit"},
			{"limit=201", "limit"},
			{"type=Sign_In", "type"},
			{"since=yesterday", "since"},
			{"user=a%20b", "user"},
			{"colour=red", "query"},
			{"cursor=forged.tag", "cursor"},
			{"user=someone-else&cursor=" + url.QueryEscape(next), "cursor"},
		} {
			status, body, h := a.adm("GET", "/audit?"+tc.query, a.token, nil)
			wantProblem(t, status, body, h, 400, "validation", tc.field)
		}
		status, body, h := a.adm("GET", "/audit", "", nil)
		wantProblem(t, status, body, h, 401, "unauthorized", "")
	})
}
