package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/login/api"
	"github.com/torii-idp/torii/login/notify/notifytest"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
)

// adminEnv is apiEnv with a back-office client allowed torii:admin and a
// token of it.
type adminEnv struct {
	*apiEnv
	opsID, opsSecret string
	token            string
}

func newAdminEnv(t *testing.T, dbURL string, opts ...envOption) *adminEnv {
	a := &adminEnv{apiEnv: newAPIEnv(t, dbURL, opts...)}
	a.opsID, a.opsSecret = a.client(provider.ClientSpec{ID: "ops", GrantTypes: []string{"client_credentials"}, Scopes: []string{provider.ScopeAdmin}})
	a.token = a.clientToken(a.opsID, a.opsSecret, provider.ScopeAdmin)
	return a
}

// clientToken is a client-credentials access token.
func (a *adminEnv) clientToken(id, secret, scope string) string {
	a.t.Helper()
	status, body, _ := a.postForm("/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, id, secret)
	if status != 200 {
		a.t.Fatalf("client credentials for %s: %d %v", id, status, body)
	}
	return body["access_token"].(string)
}

// adm makes an admin API request on the admin listener.
func (a *adminEnv) adm(method, path, token string, body any) (int, map[string]any, http.Header) {
	a.t.Helper()
	return a.do(jsonRequest(method, a.admin.URL+api.AdminPrefix+path, token, body))
}

func TestAdminAPIAccess(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		a := newAdminEnv(t, dbURL)
		a.user("root@example.com")
		a.user("pat@example.com")
		rootID := a.userID("root@example.com")
		if _, err := a.srv.accounts.SetRoles(t.Context(), rootID, []string{account.RoleAdmin}, nil); err != nil {
			t.Fatal(err)
		}
		a.srv.provider.Clients().Update(t.Context(), a.id, func(s *provider.ClientSpec) {
			s.Scopes = append(s.Scopes, provider.ScopeAdmin)
		})

		// The public listener does not serve the admin API.
		status, body, h := a.call("GET", "/admin/users", a.token, nil)
		wantProblem(t, status, body, h, 404, "not-found", "")

		userToken, _ := a.tokens("pat@example.com", "openid account")
		otherClient := a.clientToken(a.id, a.secret, "")
		patAdmin, _ := a.tokens("pat@example.com", "openid "+provider.ScopeAdmin)
		rootAdmin, _ := a.tokens("root@example.com", "openid "+provider.ScopeAdmin)
		for _, tc := range []struct {
			name   string
			token  string
			status int
			kind   string
		}{
			{"no token", "", 401, "unauthorized"},
			{"garbage", "not-a-token", 401, "unauthorized"},
			{"user token without the scope", userToken, 403, "insufficient-scope"},
			{"client token without the scope", otherClient, 403, "insufficient-scope"},
			{"user without role admin asking the scope", patAdmin, 403, "insufficient-scope"},
			{"admin client", a.token, 200, ""},
			{"admin user", rootAdmin, 200, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, body, h := a.adm("GET", "/users", tc.token, nil)
				if tc.status == 200 {
					if status != 200 {
						t.Errorf("got %d %v\n%s", status, body, a.logs)
					}
					return
				}
				wantProblem(t, status, body, h, tc.status, tc.kind, "")
				if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q", h.Get("WWW-Authenticate"))
				}
			})
		}
		// The token never goes in the URL.
		req, _ := http.NewRequest("GET", a.admin.URL+api.AdminPrefix+"/users?access_token="+a.token, nil)
		status, body, h = a.do(req)
		wantProblem(t, status, body, h, 400, "malformed", "")

		// A user who loses role admin loses the API at once, whatever
		// their token says.
		status, body, _ = a.adm("PATCH", "/users/"+rootID, a.token, map[string]any{"roles": []string{}})
		if status != 200 || len(body["roles"].([]any)) != 0 {
			t.Fatalf("remove role = %d %v", status, body)
		}
		status, body, h = a.adm("GET", "/users", rootAdmin, nil)
		wantProblem(t, status, body, h, 403, "insufficient-scope", "")

		// An administrator cannot lock themselves out by deactivating.
		a.srv.accounts.SetRoles(t.Context(), rootID, []string{account.RoleAdmin}, nil)
		status, body, h = a.adm("POST", "/users/"+rootID+"/deactivate", rootAdmin, nil)
		wantProblem(t, status, body, h, 409, "conflict", "")

		// The admin listener serves the API's document and reference page
		// too.
		for _, path := range []string{"/api/openapi.json", "/api/docs"} {
			resp, err := a.admin.Client().Get(a.admin.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("GET %s on the admin listener = %d", path, resp.StatusCode)
			}
		}

		// Unknown routes and methods answer problems.
		status, body, h = a.adm("GET", "/nothing", a.token, nil)
		wantProblem(t, status, body, h, 404, "not-found", "")
		status, body, h = a.adm("PUT", "/users", a.token, map[string]any{})
		wantProblem(t, status, body, h, 405, "method-not-allowed", "")
	})
}

func TestAdminAPIUsers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		a := newAdminEnv(t, dbURL)
		a.user("taken@example.com")
		tok := a.token

		status, body, h := a.adm("POST", "/users", tok, map[string]any{"email": "Ann@Example.com", "password": "a quiet walrus sings",
			"name": "Ann", "username": "ann", "email_verified": true, "roles": []string{"billing", "admin"}})
		if status != 201 || body["email"] != "ann@example.com" || body["active"] != true || body["has_password"] != true ||
			fmt.Sprint(body["roles"]) != "[admin billing]" {
			t.Fatalf("create = %d %v", status, body)
		}
		annID := body["id"].(string)
		if h.Get("Location") != api.AdminPrefix+"/users/"+annID {
			t.Errorf("Location = %q", h.Get("Location"))
		}
		a.tokensWith("ann@example.com", "a quiet walrus sings", "openid") // signs in

		for _, tc := range []struct {
			name   string
			body   any
			status int
			kind   string
			field  string
		}{
			{"no email", map[string]any{"password": "a quiet walrus sings"}, 400, "validation", "email"},
			{"bad email", map[string]any{"email": "no at sign", "password": "a quiet walrus sings"}, 400, "validation", "email"},
			{"10 kB email", map[string]any{"email": strings.Repeat("a", 10_000) + "@example.com", "password": "a quiet walrus sings"}, 400, "validation", "email"},
			{"weak password", map[string]any{"email": "x@example.com", "password": "password123"}, 400, "validation", "password"},
			{"no password nor invite", map[string]any{"email": "x@example.com"}, 400, "validation", "password"},
			{"password and invite", map[string]any{"email": "x@example.com", "password": "a quiet walrus sings", "send_invite": true}, 400, "validation", "password"},
			{"password hash", map[string]any{"email": "x@example.com", "password_hash": "$argon2id$..."}, 400, "validation", "password_hash"},
			{"active", map[string]any{"email": "x@example.com", "password": "a quiet walrus sings", "active": false}, 400, "validation", "active"},
			{"bad role", map[string]any{"email": "x@example.com", "password": "a quiet walrus sings", "roles": []string{"Admin"}}, 400, "validation", "roles"},
			{"SQL in a role", map[string]any{"email": "x@example.com", "password": "a quiet walrus sings", "roles": []string{"x';--"}}, 400, "validation", "roles"},
			{"roles not a list", map[string]any{"email": "x@example.com", "password": "a quiet walrus sings", "roles": "admin"}, 400, "validation", "roles"},
			{"bad phone", map[string]any{"email": "x@example.com", "password": "a quiet walrus sings", "phone_number": "555"}, 400, "validation", "phone_number"},
			{"taken email", map[string]any{"email": "TAKEN@example.com", "password": "a quiet walrus sings"}, 409, "conflict", "email"},
			{"taken username", map[string]any{"email": "y@example.com", "password": "a quiet walrus sings", "username": "ANN"}, 409, "conflict", "username"},
			{"not JSON", "email=x", 400, "malformed", ""},
			{"truncated JSON", `{"email":"x@example.com","pass`, 400, "malformed", ""},
			{"two objects", `{"email":"x@example.com"}{}`, 400, "malformed", ""},
			{"email a number", map[string]any{"email": 5, "password": "a quiet walrus sings"}, 400, "validation", "email"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, body, h := a.adm("POST", "/users", tok, tc.body)
				wantProblem(t, status, body, h, tc.status, tc.kind, tc.field)
			})
		}
		// 415 and 413.
		req, _ := http.NewRequest("POST", a.admin.URL+api.AdminPrefix+"/users", strings.NewReader("email=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+tok)
		status, body, h = a.do(req)
		wantProblem(t, status, body, h, 415, "unsupported-media-type", "")
		status, body, h = a.adm("POST", "/users", tok, `{"email":"`+strings.Repeat("a", 2<<20)+`"}`)
		wantProblem(t, status, body, h, 413, "too-large", "")

		// Get, and what is not there.
		if status, body, _ := a.adm("GET", "/users/"+annID, tok, nil); status != 200 || body["id"] != annID || body["password_hash"] != nil {
			t.Errorf("get = %d %v", status, body)
		}
		for _, id := range []string{"00000000-0000-4000-8000-000000000000", "x'%20OR%20'1'='1", strings.Repeat("a", 10_000)} {
			status, body, h := a.adm("GET", "/users/"+id, tok, nil)
			wantProblem(t, status, body, h, 404, "not-found", "")
		}
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"PATCH", "", map[string]any{"name": "x"}}, {"POST", "/deactivate", nil}, {"POST", "/activate", nil},
			{"POST", "/unlock", nil}, {"POST", "/password-reset", nil}, {"GET", "/sessions", nil},
		} {
			status, body, h := a.adm(c.method, "/users/00000000-0000-4000-8000-000000000000"+c.path, tok, c.body)
			wantProblem(t, status, body, h, 404, "not-found", "")
		}

		// Patch.
		status, body, _ = a.adm("PATCH", "/users/"+annID, tok, map[string]any{"name": "Ann B", "bio": "Ops", "email_verified": false,
			"phone_number": "+14155550100", "phone_number_verified": true, "roles": []string{"support"}})
		if status != 200 || body["name"] != "Ann B" || body["bio"] != "Ops" || body["email_verified"] != false ||
			body["phone_number"] != "+14155550100" || body["phone_number_verified"] != true || fmt.Sprint(body["roles"]) != "[support]" {
			t.Errorf("patch = %d %v", status, body)
		}
		for _, tc := range []struct {
			name   string
			body   any
			status int
			kind   string
			field  string
		}{
			{"password", map[string]any{"password": "a quiet walrus sings"}, 400, "validation", "password"},
			{"id", map[string]any{"id": "other"}, 400, "validation", "id"},
			{"taken email", map[string]any{"email": "taken@example.com"}, 409, "conflict", "email"},
			{"bad username", map[string]any{"username": "a b"}, 400, "validation", "username"},
			{"bad role", map[string]any{"roles": []string{"-x"}}, 400, "validation", "roles"},
			{"10 kB name", map[string]any{"name": strings.Repeat("n", 10_000)}, 400, "validation", "name"},
		} {
			t.Run("patch "+tc.name, func(t *testing.T) {
				status, body, h := a.adm("PATCH", "/users/"+annID, tok, tc.body)
				wantProblem(t, status, body, h, tc.status, tc.kind, tc.field)
			})
		}
		if _, body, _ := a.adm("GET", "/users/"+annID, tok, nil); body["name"] != "Ann B" || body["email"] != "ann@example.com" {
			t.Errorf("a refused patch changed the user: %v", body)
		}
		// A new address is unverified unless said otherwise.
		if _, body, _ := a.adm("PATCH", "/users/"+annID, tok, map[string]any{"email": "ann.b@example.com", "email_verified": true}); body["email"] != "ann.b@example.com" || body["email_verified"] != true {
			t.Errorf("email change = %v", body)
		}

		// Deactivate: sessions end, tokens die, sign-in fails; delete only
		// then.
		access, refresh := a.tokensWith("ann.b@example.com", "a quiet walrus sings", "openid offline_access account")
		status, body, h = a.adm("DELETE", "/users/"+annID, tok, nil)
		wantProblem(t, status, body, h, 409, "conflict", "")
		if status, body, _ := a.adm("POST", "/users/"+annID+"/deactivate", tok, nil); status != 200 || body["active"] != false {
			t.Fatalf("deactivate = %d %v", status, body)
		}
		if status, _, _ := a.call("GET", "/account", access, nil); status != 401 {
			t.Errorf("the deactivated user's access token: %d, want 401", status)
		}
		status, body, _ = a.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, a.id, a.secret)
		wantOAuthError(t, status, body, 400, "invalid_grant")
		status, body, _ = a.postForm("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"ann.b@example.com"},
			"password": {"a quiet walrus sings"}}, a.id, a.secret)
		wantOAuthError(t, status, body, 400, "invalid_grant")
		if status, body, _ := a.adm("POST", "/users/"+annID+"/activate", tok, nil); status != 200 || body["active"] != true {
			t.Fatalf("activate = %d %v", status, body)
		}
		a.tokensWith("ann.b@example.com", "a quiet walrus sings", "openid")
		a.adm("POST", "/users/"+annID+"/deactivate", tok, nil)
		if status, _, _ := a.adm("DELETE", "/users/"+annID, tok, nil); status != 204 {
			t.Errorf("delete = %d", status)
		}
		status, body, h = a.adm("GET", "/users/"+annID, tok, nil)
		wantProblem(t, status, body, h, 404, "not-found", "")
		status, body, h = a.adm("DELETE", "/users/"+annID, tok, nil)
		wantProblem(t, status, body, h, 404, "not-found", "")
	})
}

func TestAdminAPIInviteUnlockReset(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		a := newAdminEnv(t, dbURL)
		tok := a.token

		// An invite: no password until the mailed link sets one, which
		// proves the address.
		status, body, _ := a.adm("POST", "/users", tok, map[string]any{"email": "inv@example.com", "name": "Ivy", "send_invite": true})
		if status != 201 || body["has_password"] != false || body["email_verified"] != false {
			t.Fatalf("invite = %d %v", status, body)
		}
		id := body["id"].(string)
		mail := a.nextMail("inv@example.com", "choose a password", 0)
		status, body, _ = a.postForm("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"inv@example.com"},
			"password": {"no password works yet"}}, a.id, a.secret)
		wantOAuthError(t, status, body, 400, "invalid_grant")
		link, _ := url.Parse(notifytest.Link(t, mail.Text))
		if status, body, _ := a.call("POST", "/password/reset", "", map[string]any{"token": link.Query().Get("token"), "new_password": "ivy chooses well"}); status != 204 {
			t.Fatalf("set password = %d %v", status, body)
		}
		if _, body, _ := a.adm("GET", "/users/"+id, tok, nil); body["has_password"] != true || body["email_verified"] != true {
			t.Errorf("after the invite link: %v", body)
		}
		a.tokensWith("inv@example.com", "ivy chooses well", "openid")
		for _, status := range []string{storage.OutboxPending, storage.OutboxSent, storage.OutboxFailed} {
			ms, err := a.srv.store.OutboxMessages(t.Context(), status)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if strings.Contains(m.Subject, "password was changed") {
					t.Errorf("a first password chosen through an invite queued %q", m.Subject)
				}
			}
		}

		// Unlock: wrong passwords lock the account; unlock lifts it.
		for range 5 {
			a.postForm("/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"inv@example.com"}, "password": {"wrong password here"}}, a.id, a.secret)
		}
		if _, body, _ := a.adm("GET", "/users/"+id, tok, nil); body["locked_until"] == nil {
			t.Fatalf("not locked after 5 wrong passwords: %v", body)
		}
		if status, body, _ := a.adm("POST", "/users/"+id+"/unlock", tok, nil); status != 200 || body["locked_until"] != nil {
			t.Errorf("unlock = %d %v", status, body)
		}
		a.tokensWith("inv@example.com", "ivy chooses well", "openid")

		// A reset link goes to the user; the administrator sees no
		// password. The per-account mail limit holds (5 per window here).
		mails := len(a.mail.Mails())
		if status, body, _ := a.adm("POST", "/users/"+id+"/password-reset", tok, nil); status != 202 || len(body) != 0 {
			t.Errorf("password-reset = %d %v", status, body)
		}
		a.nextMail("inv@example.com", "new password", mails)
		for range 3 {
			a.adm("POST", "/users/"+id+"/password-reset", tok, nil)
		}
		status, body, h := a.adm("POST", "/users/"+id+"/password-reset", tok, nil)
		wantProblem(t, status, body, h, 429, "too-many-requests", "")
		if secs, err := strconv.Atoi(h.Get("Retry-After")); err != nil || secs < 1 {
			t.Errorf("Retry-After = %q", h.Get("Retry-After"))
		}
		status, body, h = a.adm("POST", "/users/nobody/password-reset", tok, nil)
		wantProblem(t, status, body, h, 404, "not-found", "")
	})
}

func TestAdminAPIPictureAndSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		a := newAdminEnv(t, dbURL)
		a.user("sam@example.com")
		id := a.userID("sam@example.com")
		tok := a.token

		req, _ := http.NewRequest("PUT", a.admin.URL+api.AdminPrefix+"/users/"+id+"/picture", bytes.NewReader(pngOf(t, 64, 64)))
		req.Header.Set("Content-Type", "image/png")
		req.Header.Set("Authorization", "Bearer "+tok)
		if status, body, _ := a.do(req); status != 200 || body["picture"] == nil {
			t.Errorf("put picture = %d %v", status, body)
		}
		req, _ = http.NewRequest("PUT", a.admin.URL+api.AdminPrefix+"/users/"+id+"/picture", strings.NewReader("not an image"))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Authorization", "Bearer "+tok)
		status, body, h := a.do(req)
		wantProblem(t, status, body, h, 415, "unsupported-media-type", "")
		if status, _, _ := a.adm("DELETE", "/users/"+id+"/picture", tok, nil); status != 204 {
			t.Errorf("delete picture = %d", status)
		}
		if _, body, _ := a.adm("GET", "/users/"+id, tok, nil); body["picture"] != nil {
			t.Errorf("picture after delete = %v", body["picture"])
		}

		b := a.browser()
		a.signInWith(b, "sam@example.com", testPassword)
		_, refresh := a.tokens("sam@example.com", "openid offline_access")
		status, body, _ = a.adm("GET", "/users/"+id+"/sessions", tok, nil)
		if items, _ := body["items"].([]any); status != 200 || len(items) != 1 {
			t.Fatalf("sessions = %d %v", status, body)
		}
		if status, _, _ := a.adm("DELETE", "/users/"+id+"/sessions", tok, nil); status != 204 {
			t.Errorf("end sessions = %d", status)
		}
		if _, body, _ := a.adm("GET", "/users/"+id+"/sessions", tok, nil); len(body["items"].([]any)) != 0 {
			t.Errorf("sessions after ending them = %v", body)
		}
		status, body, _ = a.postForm("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, a.id, a.secret)
		wantOAuthError(t, status, body, 400, "invalid_grant")
	})
}

// listAll pages through the listing with query and returns the IDs in the
// order served.
func (a *adminEnv) listAll(t *testing.T, query url.Values) []string {
	t.Helper()
	var ids []string
	for page := 0; ; page++ {
		if page > 100 {
			t.Fatal("paging does not end")
		}
		status, body, _ := a.adm("GET", "/users?"+query.Encode(), a.token, nil)
		if status != 200 {
			t.Fatalf("list %v = %d %v", query, status, body)
		}
		for _, it := range body["items"].([]any) {
			ids = append(ids, it.(map[string]any)["id"].(string))
		}
		next, _ := body["next_cursor"].(string)
		if next == "" {
			return ids
		}
		query = cloneValues(query)
		query.Set("cursor", next)
	}
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = slices.Clone(vs)
	}
	return c
}

func TestAdminAPIUserListing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		a := newAdminEnv(t, dbURL)
		ctx := t.Context()
		// 250 users written directly (hashing 250 passwords would only
		// slow the test), many in the same microsecond of created_at.
		byID := map[string]*storage.User{}
		for i := range 250 {
			u := &storage.User{ID: fmt.Sprintf("u-%03d-%d", (i*7919)%250, i), Email: fmt.Sprintf("user%03d@example.com", (i*31)%250),
				Name: fmt.Sprintf("Person %d", i), EmailVerified: i%3 != 0, Disabled: i%10 == 0}
			u.EmailSkeleton = u.Email
			if i%25 == 0 {
				u.Roles = []string{"admin"}
			}
			if i%50 == 0 {
				u.Roles = []string{"billing_x"}
			}
			if err := a.srv.store.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			byID[u.ID] = u
		}
		// Concurrent inserts while paging: none may shift a page.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				u := &storage.User{ID: fmt.Sprintf("late-%d", i), Email: fmt.Sprintf("late%d@example.com", i)}
				u.EmailSkeleton = u.Email
				a.srv.store.CreateUser(ctx, u)
				time.Sleep(time.Millisecond)
			}
		}()
		for _, sort := range storage.UserSorts {
			t.Run("sort "+sort, func(t *testing.T) {
				ids := a.listAll(t, url.Values{"sort": {sort}, "limit": {"37"}})
				seen := map[string]bool{}
				var ours []*storage.User
				for _, id := range ids {
					if seen[id] {
						t.Fatalf("user %s listed twice", id)
					}
					seen[id] = true
					if u := byID[id]; u != nil {
						ours = append(ours, u)
					}
				}
				if len(ours) != 250 {
					t.Fatalf("%d of the 250 users listed", len(ours))
				}
				ok := slices.IsSortedFunc(ours, func(x, y *storage.User) int {
					var c int
					if strings.Contains(sort, "email") {
						c = strings.Compare(x.Email, y.Email)
					} else if c = x.CreatedAt.Compare(y.CreatedAt); c == 0 {
						c = strings.Compare(x.ID, y.ID)
					}
					if strings.HasPrefix(sort, "-") {
						return -c
					}
					return c
				})
				if !ok {
					t.Error("the pages are out of order")
				}
			})
		}
		close(stop)
		wg.Wait()

		count := func(q url.Values) int {
			n := 0
			for _, id := range a.listAll(t, q) {
				if byID[id] != nil {
					n++
				}
			}
			return n
		}
		for _, tc := range []struct {
			query url.Values
			want  int
		}{
			{url.Values{"role": {"admin"}}, 5},
			{url.Values{"role": {"billing_x"}}, 5},
			{url.Values{"role": {"billingxx"}}, 0},
			{url.Values{"role": {"billing"}}, 0},
			{url.Values{"active": {"false"}}, 25},
			{url.Values{"active": {"true"}, "verified": {"false"}}, 84 - 9},
			{url.Values{"q": {"USER00"}}, 10},
			{url.Values{"q": {"person 24"}}, 11},
			{url.Values{"q": {"%"}}, 0},
			{url.Values{"q": {"_"}}, 0},
			{url.Values{"q": {"' OR '1'='1"}}, 0},
			{url.Values{"q": {`\`}}, 0},
			{url.Values{"q": {"user1"}, "sort": {"-email"}, "limit": {"3"}}, 100},
		} {
			t.Run(tc.query.Encode(), func(t *testing.T) {
				if got := count(tc.query); got != tc.want {
					t.Errorf("%d users, want %d", got, tc.want)
				}
			})
		}

		// A cursor is tamper-proof and belongs to its listing.
		_, body, _ := a.adm("GET", "/users?limit=2&sort=email", a.token, nil)
		cursor := body["next_cursor"].(string)
		payload, tag, _ := strings.Cut(cursor, ".")
		flipped := []byte(payload)
		flipped[3] ^= 1
		for _, tc := range []struct{ name, query string }{
			{"tampered payload", "limit=2&sort=email&cursor=" + string(flipped) + "." + tag},
			{"tampered tag", "limit=2&sort=email&cursor=" + payload + ".AAAA" + tag[4:]},
			{"no tag", "limit=2&sort=email&cursor=" + payload},
			{"garbage", "limit=2&sort=email&cursor=%27%20OR%201%3D1--"},
			{"another order", "limit=2&sort=-email&cursor=" + cursor},
			{"another filter", "limit=2&sort=email&active=true&cursor=" + cursor},
			{"10 kB", "cursor=" + strings.Repeat("A", 10_000)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, body, h := a.adm("GET", "/users?"+tc.query, a.token, nil)
				wantProblem(t, status, body, h, 400, "validation", "cursor")
			})
		}
		if status, _, _ := a.adm("GET", "/users?limit=5&sort=email&cursor="+url.QueryEscape(cursor), a.token, nil); status != 200 {
			t.Errorf("the cursor with another limit = %d, want 200", status)
		}

		for _, tc := range []struct{ query, field string }{
			{"limit=0", "limit"}, {"limit=201", "limit"}, {"limit=abc", "limit"}, {"limit=-1", "limit"}, {"limit=%2B5", "limit"},
			{"limit=99999999999999999999", "limit"},
			{"sort=name", "sort"}, {"sort=created_at%3BDROP%20TABLE%20users", "sort"}, {"sort=created_at;DROP%20TABLE%20users", "query"},
			{"q=%zz", "query"},
			{"active=yes", "active"}, {"verified=1", "verified"},
			{"role=Admin", "role"}, {"role=%27%20OR%201%3D1--", "role"}, {"role=a%25", "role"},
			{"q=" + strings.Repeat("q", 10_000), "q"}, {"q=a%00b", "q"},
			{"limit=5&limit=6", "limit"}, {"offset=10", "query"},
		} {
			t.Run(tc.query[:min(len(tc.query), 40)], func(t *testing.T) {
				status, body, h := a.adm("GET", "/users?"+tc.query, a.token, nil)
				wantProblem(t, status, body, h, 400, "validation", tc.field)
			})
		}
		if _, err := a.srv.store.User(ctx, "u-000-0"); err != nil {
			t.Errorf("the users table lost a row: %v", err)
		}
	})
}

func TestAdminAPIClientsAndKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		a := newAdminEnv(t, dbURL)
		tok := a.token
		userID := a.user("someone@example.com")

		status, body, h := a.adm("POST", "/clients", tok, map[string]any{"client_id": "shop", "client_name": "Shop",
			"redirect_uris": []string{"https://shop.example/cb"}, "grant_types": []string{"authorization_code", "refresh_token", "client_credentials"},
			"scope": "openid email", "allowed_cors_origins": []string{"https://Shop.Example"}})
		secret, _ := body["client_secret"].(string)
		if status != 201 || secret == "" || body["client_id"] != "shop" || body["token_endpoint_auth_method"] != "client_secret_basic" ||
			fmt.Sprint(body["allowed_cors_origins"]) != "[https://shop.example]" || h.Get("Location") != api.AdminPrefix+"/clients/shop" {
			t.Fatalf("create client = %d %v", status, body)
		}
		a.clientToken("shop", secret, "")
		status, body, _ = a.adm("GET", "/clients/shop", tok, nil)
		if status != 200 || body["client_secret"] != nil || body["client_name"] != "Shop" {
			t.Errorf("get client = %d %v", status, body)
		}
		if status, body, _ := a.adm("GET", "/clients", tok, nil); status != 200 || len(body["items"].([]any)) != 3 {
			t.Errorf("list clients = %d %v", status, body)
		}

		bad := []struct {
			name string
			uri  string
		}{
			{"fragment", "https://shop.example/cb#x"},
			{"wildcard", "https://*.shop.example/cb"},
			{"plain http", "http://shop.example/cb"},
			{"javascript", "javascript:alert(1)"},
			{"data", "data:text/html,hi"},
		}
		for _, tc := range bad {
			t.Run("create "+tc.name, func(t *testing.T) {
				status, body, h := a.adm("POST", "/clients", tok, map[string]any{"client_id": "evil", "redirect_uris": []string{tc.uri}})
				wantProblem(t, status, body, h, 400, "validation", "")
			})
			t.Run("patch "+tc.name, func(t *testing.T) {
				status, body, h := a.adm("PATCH", "/clients/shop", tok, map[string]any{"client_name": "Changed", "redirect_uris": []string{tc.uri}})
				wantProblem(t, status, body, h, 400, "validation", "")
				if _, body, _ := a.adm("GET", "/clients/shop", tok, nil); body["client_name"] != "Shop" ||
					fmt.Sprint(body["redirect_uris"]) != "[https://shop.example/cb]" {
					t.Errorf("a refused patch changed the client: %v", body)
				}
			})
		}
		for _, tc := range []struct {
			name   string
			method string
			path   string
			body   any
			status int
			kind   string
		}{
			{"taken ID", "POST", "/clients", map[string]any{"client_id": "shop", "redirect_uris": []string{"https://x.example/cb"}}, 409, "conflict"},
			// A client's own tokens have its ID as subject: never a user's.
			{"a user's ID", "POST", "/clients", map[string]any{"client_id": userID, "grant_types": []string{"client_credentials"}}, 409, "conflict"},
			{"truncated JSON", "POST", "/clients", `{"client_id":"x","redirect_uris":["https://x`, 400, "malformed"},
			{"wrong type", "POST", "/clients", map[string]any{"client_id": "x", "redirect_uris": "https://x.example/cb"}, 400, "validation"},
			{"no ID", "POST", "/clients", map[string]any{"redirect_uris": []string{"https://x.example/cb"}}, 400, "validation"},
			{"SQL in the ID", "POST", "/clients", map[string]any{"client_id": "x'; DROP TABLE clients;--", "redirect_uris": []string{"https://x.example/cb"}}, 400, "validation"},
			{"unknown member", "POST", "/clients", map[string]any{"client_id": "x", "secret_hash": "00"}, 400, "validation"},
			{"unknown scope", "POST", "/clients", map[string]any{"client_id": "x", "redirect_uris": []string{"https://x.example/cb"}, "scope": "openid everything"}, 400, "validation"},
			{"bad auth method", "POST", "/clients", map[string]any{"client_id": "x", "token_endpoint_auth_method": "private_key_jwt"}, 400, "validation"},
			{"change of ID", "PATCH", "/clients/shop", map[string]any{"client_id": "other"}, 400, "validation"},
			{"secret by patch", "PATCH", "/clients/shop", map[string]any{"client_secret": strings.Repeat("s", 40)}, 400, "validation"},
			{"public by patch", "PATCH", "/clients/shop", map[string]any{"token_endpoint_auth_method": "none"}, 400, "validation"},
			{"unknown client", "GET", "/clients/nope", nil, 404, "not-found"},
			{"patch unknown", "PATCH", "/clients/nope", map[string]any{"client_name": "x"}, 404, "not-found"},
			{"delete unknown", "DELETE", "/clients/nope", nil, 404, "not-found"},
			{"rotate unknown", "POST", "/clients/nope/secret", nil, 404, "not-found"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, body, h := a.adm(tc.method, tc.path, tok, tc.body)
				wantProblem(t, status, body, h, tc.status, tc.kind, "")
			})
		}

		// logo_uri and client_uri (RFC 7591): https only; the exact reason.
		for _, tc := range []struct{ member, uri, detail string }{
			{"logo_uri", "http://shop.example/logo.png", `logo URI "http://shop.example/logo.png" must be https (plain http only on a loopback host)`},
			{"client_uri", "javascript:alert(1)", `client URI "javascript:alert(1)" is not an absolute URL with a host`},
		} {
			status, body, h := a.adm("PATCH", "/clients/shop", tok, map[string]any{tc.member: tc.uri})
			wantProblem(t, status, body, h, 400, "validation", "client")
			if body["detail"] != tc.detail {
				t.Errorf("PATCH %s %q: detail %q, want %q", tc.member, tc.uri, body["detail"], tc.detail)
			}
		}
		status, body, _ = a.adm("PATCH", "/clients/shop", tok, map[string]any{"logo_uri": "https://shop.example/logo.png", "client_uri": "https://shop.example/"})
		if status != 200 || body["logo_uri"] != "https://shop.example/logo.png" || body["client_uri"] != "https://shop.example/" {
			t.Errorf("patch logo_uri, client_uri = %d %v", status, body)
		}
		status, body, _ = a.adm("PATCH", "/clients/shop", tok, map[string]any{"client_name": "Shop 2", "redirect_uris": []string{"https://shop.example/cb2"}, "skip_consent": true})
		if status != 200 || body["client_name"] != "Shop 2" || body["skip_consent"] != true || fmt.Sprint(body["redirect_uris"]) != "[https://shop.example/cb2]" ||
			fmt.Sprint(body["allowed_cors_origins"]) != "[https://shop.example]" {
			t.Errorf("patch client = %d %v", status, body)
		}

		// Rotation: the new secret works, the old does not.
		status, body, _ = a.adm("POST", "/clients/shop/secret", tok, nil)
		newSecret, _ := body["client_secret"].(string)
		if status != 200 || newSecret == "" || newSecret == secret {
			t.Fatalf("rotate = %d %v", status, body)
		}
		status, body, _ = a.postForm("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "shop", secret)
		wantOAuthError(t, status, body, 401, "invalid_client")
		a.clientToken("shop", newSecret, "")
		a.adm("POST", "/clients", tok, map[string]any{"client_id": "spa2", "token_endpoint_auth_method": "none", "redirect_uris": []string{"http://127.0.0.1/cb"}})
		status, body, h = a.adm("POST", "/clients/spa2/secret", tok, nil)
		wantProblem(t, status, body, h, 400, "validation", "")

		if status, _, _ := a.adm("DELETE", "/clients/shop", tok, nil); status != 204 {
			t.Errorf("delete client = %d", status)
		}
		status, body, _ = a.postForm("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "shop", newSecret)
		wantOAuthError(t, status, body, 401, "invalid_client")

		// Keys.
		status, body, _ = a.adm("GET", "/keys", tok, nil)
		before, _ := body["items"].([]any)
		if status != 200 || len(before) == 0 {
			t.Fatalf("keys = %d %v", status, body)
		}
		status, body, _ = a.adm("POST", "/keys/rotate", tok, map[string]any{"algorithms": []string{"ES256"}})
		if added, _ := body["items"].([]any); status != 200 || len(added) != 1 || added[0].(map[string]any)["alg"] != "ES256" {
			t.Errorf("rotate ES256 = %d %v", status, body)
		}
		if status, body, _ := a.adm("POST", "/keys/rotate", tok, nil); status != 200 || len(body["items"].([]any)) != len(provider.Algorithms) {
			t.Errorf("rotate all = %d %v", status, body)
		}
		if _, body, _ := a.adm("GET", "/keys", tok, nil); len(body["items"].([]any)) != len(before)+1+len(provider.Algorithms) {
			t.Errorf("keys after rotation = %v", body)
		}
		status, body, h = a.adm("POST", "/keys/rotate", tok, map[string]any{"algorithms": []string{"HS256"}})
		wantProblem(t, status, body, h, 400, "validation", "algorithms")
	})
}
