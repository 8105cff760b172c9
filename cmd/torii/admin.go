package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/torii-idp/torii/login/account"
	"github.com/torii-idp/torii/provider"
	"github.com/torii-idp/torii/storage"
)

// openStore opens and migrates the configured database for an admin command.
func (a *app) openStore(ctx context.Context) (*storage.Store, error) {
	store, err := storage.Open(ctx, a.cfg.DatabaseURL.Reveal(), storage.Options{AuditLog: a.log})
	if err != nil {
		return nil, err
	}
	if _, err := migrate(ctx, store, a.log); err != nil {
		store.Close()
		return nil, err
	}
	return store, nil
}

// withStore runs fn with an open store and closes it afterwards.
func (a *app) withStore(ctx context.Context, fn func(*storage.Store) error) error {
	store, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(store)
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *app) clientsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "clients", Short: "Manage OAuth 2.0 clients (relying parties)"}

	var spec provider.ClientSpec
	var grantTypes, scope, pkce string
	create := &cobra.Command{
		Use:   "create",
		Short: "Register a client and print it as JSON (a generated client_secret is shown only this once)",
		Example: `  torii clients create --id my-app --redirect-uri https://app.example/callback
  torii clients create --id cli --public --redirect-uri http://127.0.0.1/callback
  torii clients create --id backend --grant-types client_credentials --scope "" --token-format jwt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if spec.ID == "" {
				return usageError{errors.New("--id is required")}
			}
			spec.GrantTypes = splitList(grantTypes, ",")
			spec.Scopes = strings.Fields(scope)
			if spec.Scopes == nil && cmd.Flags().Changed("scope") {
				spec.Scopes = []string{}
			}
			switch pkce {
			case "required":
			case "optional":
				spec.PKCEOptional = true
			default:
				return usageError{fmt.Errorf("--pkce must be required or optional, not %q", pkce)}
			}
			return a.withStore(cmd.Context(), func(store *storage.Store) error {
				clients, err := provider.NewClients(cmd.Context(), store)
				if err != nil {
					return err
				}
				c, secret, err := clients.Register(cmd.Context(), spec)
				if err != nil {
					var inv *provider.ErrInvalidClient
					if errors.As(err, &inv) {
						return usageError{err}
					}
					return err
				}
				return a.printJSON(provider.MetadataOf(c, secret))
			})
		},
	}
	f := create.Flags()
	f.StringVar(&spec.ID, "id", "", "client ID (required)")
	f.StringVar(&spec.Name, "name", "", "name shown on the consent page (default: the ID)")
	f.StringVar(&spec.Secret, "secret", "", "client secret of at least 32 characters (default: a generated 256-bit secret)")
	f.StringArrayVar(&spec.RedirectURIs, "redirect-uri", nil, "allowed redirect URI, matched exactly; on http://127.0.0.1 or http://[::1] any valid port matches (repeatable)")
	f.StringArrayVar(&spec.PostLogoutRedirectURIs, "post-logout-redirect-uri", nil, "where RP-initiated logout may return, matched exactly (repeatable)")
	f.StringArrayVar(&spec.CORSOrigins, "cors-origin", nil, "a browser origin (scheme://host[:port], exact) whose scripts may call the token, revocation and userinfo endpoints and the account API (repeatable)")
	f.StringVar(&grantTypes, "grant-types", "authorization_code,refresh_token", "comma-separated grant types: authorization_code, refresh_token, password, client_credentials")
	f.StringVar(&scope, "scope", "openid profile email offline_access", "space-separated scopes the client may request (openid, profile, email, phone, offline_access, account, roles, torii:admin); roles releases the user's roles claim, torii:admin is granted to users with the role admin and to this client's own client_credentials tokens")
	f.BoolVar(&spec.Public, "public", false, "a public client (no secret: native or browser app); PKCE is always required")
	f.BoolVar(&spec.SkipConsent, "skip-consent", false, "skip the consent page (first-party clients)")
	f.StringVar(&pkce, "pkce", "required", "PKCE for this confidential client: required or optional (legacy relying parties only)")
	f.StringVar(&spec.TokenFormat, "token-format", "opaque", "access token format: opaque or jwt (RFC 9068)")
	f.StringVar(&spec.IDTokenAlg, "id-token-alg", "RS256", "signing algorithm for ID tokens and JWT access tokens: RS256, ES256 or EdDSA")
	f.StringVar(&spec.LogoURI, "logo-uri", "", "the application's logo (https; RFC 7591 logo_uri), shown on the sign-in, code and consent pages")
	f.StringVar(&spec.ClientURI, "client-uri", "", "the application's home page (https; RFC 7591 client_uri), the way back from the authorization error page")

	list := &cobra.Command{
		Use:   "list",
		Short: "Print every client as a JSON array",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), func(store *storage.Store) error {
				cs, err := store.Clients(cmd.Context())
				if err != nil {
					return err
				}
				views := make([]provider.ClientMetadata, 0, len(cs))
				for _, c := range cs {
					views = append(views, provider.MetadataOf(c, ""))
				}
				return a.printJSON(views)
			})
		},
	}
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Print one client as JSON",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd.Context(), func(store *storage.Store) error {
				c, err := store.Client(cmd.Context(), args[0])
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no client with ID %q", args[0])
				} else if err != nil {
					return err
				}
				return a.printJSON(provider.MetadataOf(c, ""))
			})
		},
	}
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a client with its tokens, codes and consents",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd.Context(), func(store *storage.Store) error {
				clients, err := provider.NewClients(cmd.Context(), store)
				if err != nil {
					return err
				}
				err = clients.Delete(cmd.Context(), args[0])
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no client with ID %q", args[0])
				} else if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "deleted client %s\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(create, list, get, del)
	return cmd
}

// userView is how a user is shown; never the password hash.
type userView struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	Username      string    `json:"username,omitempty"`
	Phone         string    `json:"phone_number,omitempty"`
	PhoneVerified bool      `json:"phone_number_verified"`
	Name          string    `json:"name,omitempty"`
	Roles         []string  `json:"roles"`
	Disabled      bool      `json:"disabled"`
	CreatedAt     time.Time `json:"created_at"`
}

func viewUser(u *storage.User) userView {
	return userView{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified, Username: u.PreferredUsername(),
		Phone: u.Phone, PhoneVerified: u.PhoneVerified, Name: u.Name, Roles: nonNilList(u.Roles), Disabled: u.Disabled, CreatedAt: u.CreatedAt}
}

// checkRoleFlags refuses the first invalid role name given to flag, naming
// it.
func checkRoleFlags(flag string, names []string) error {
	for _, r := range names {
		if !account.ValidRoleName(r) {
			return usageError{fmt.Errorf("%s %q is not a role name: a lower-case letter, then at most 63 lower-case letters, digits, '.', '_', ':' or '-'", flag, r)}
		}
	}
	return nil
}

// findUser returns the user whose ID, email or username is arg.
func findUser(ctx context.Context, store *storage.Store, arg string) (*storage.User, error) {
	u, err := store.User(ctx, arg)
	if errors.Is(err, storage.ErrNotFound) {
		u, err = store.UserByLogin(ctx, strings.ToLower(strings.TrimSpace(arg)))
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("no user %q", arg)
	}
	return u, err
}

func (a *app) usersCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Manage user accounts"}

	var nu account.NewUser
	var verified bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a user and print it as JSON",
		Long: `Create a user and print it as JSON.

The address must not be taken, nor look like a taken one (the same UTS #39
skeleton: alıce@ or a1ice@ beside alice@example.com; also rn and m), nor mix
scripts in its local part or a domain label (alice@exаmple.com with a Cyrillic а).`,
		Example: `  torii users create --email alice@example.com --password 'correct horse battery staple' --verified
  torii users create --email root@example.com --password '…' --verified --role admin --role billing.read`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nu.Email == "" || nu.Password == "" {
				return usageError{errors.New("--email and --password are required")}
			}
			if err := checkRoleFlags("--role", nu.Roles); err != nil {
				return err
			}
			nu.EmailVerified = verified
			nu.PhoneVerified = verified && nu.Phone != ""
			return a.withStore(cmd.Context(), func(store *storage.Store) error {
				u, err := account.New(store, account.Config{}).Create(cmd.Context(), nu)
				var ve *account.ValidationError
				switch {
				case errors.As(err, &ve):
					return usageError{err}
				case errors.Is(err, account.ErrEmailTaken), errors.Is(err, account.ErrUsernameTaken):
					return usageError{err}
				case err != nil:
					return err
				}
				return a.printJSON(viewUser(u))
			})
		},
	}
	f := create.Flags()
	f.StringVar(&nu.Email, "email", "", "email address (required)")
	f.StringVar(&nu.Password, "password", "", "password, 8 to 128 characters (required)")
	f.StringVar(&nu.Username, "username", "", "username, 3 to 64 letters, digits, '.', '_' or '-'")
	f.StringVar(&nu.Phone, "phone", "", "phone number in E.164 form, e.g. +15551234567")
	f.StringVar(&nu.Name, "name", "", "full name")
	f.BoolVar(&verified, "verified", false, "mark the email (and phone) as verified")
	f.StringArrayVar(&nu.Roles, "role", nil, "give the user this role (repeatable); admin may be granted the torii:admin scope; any name of a lower-case letter and up to 63 of a-z 0-9 . _ : - is valid")

	var offset, limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "Print users as a JSON array, ordered by email",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if offset < 0 || limit < 1 || limit > 10000 {
				return usageError{errors.New("--offset must be ≥ 0 and --limit between 1 and 10000")}
			}
			return a.withStore(cmd.Context(), func(store *storage.Store) error {
				us, err := store.Users(cmd.Context(), offset, limit)
				if err != nil {
					return err
				}
				views := make([]userView, 0, len(us))
				for _, u := range us {
					views = append(views, viewUser(u))
				}
				return a.printJSON(views)
			})
		},
	}
	list.Flags().IntVar(&offset, "offset", 0, "skip this many users")
	list.Flags().IntVar(&limit, "limit", 100, "print at most this many users")

	del := &cobra.Command{
		Use:   "delete ID|EMAIL|USERNAME",
		Short: "Delete a user, ending their sessions and revoking their tokens",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd.Context(), func(store *storage.Store) error {
				ctx := cmd.Context()
				u, err := findUser(ctx, store, args[0])
				if err != nil {
					return err
				}
				if err := account.New(store, account.Config{}).Delete(ctx, u.ID); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "deleted user %s (%s)\n", u.ID, u.Email)
				return nil
			})
		},
	}
	var add, remove []string
	roles := &cobra.Command{
		Use:   "roles ID|EMAIL|USERNAME",
		Short: "Add roles to a user or take them away, and print the user as JSON",
		Long: `Add roles to a user (--add) or take them away (--remove), in one change, and
print the user as JSON. Adding a role the user has, or removing one they have
not, changes nothing; a name given to both is removed. Without flags it prints
the user's roles as they are.

A role name is a lower-case letter, then at most 63 lower-case letters, digits,
'.', '_', ':' or '-'. The role admin lets the user's applications be granted the
scope torii:admin; other roles mean what the applications reading the roles
claim (scope roles) make of them. Tokens already issued keep the roles and
scopes they were issued with until they expire; a refresh takes the new ones.`,
		Example: `  torii users roles alice@example.com --add admin
  torii users roles "$USER_ID" --add billing.read --add team:eu-1 --remove admin`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkRoleFlags("--add", add); err != nil {
				return err
			}
			if err := checkRoleFlags("--remove", remove); err != nil {
				return err
			}
			return a.withStore(cmd.Context(), func(store *storage.Store) error {
				ctx := cmd.Context()
				u, err := findUser(ctx, store, args[0])
				if err != nil {
					return err
				}
				u, err = account.New(store, account.Config{}).SetRoles(ctx, u.ID, add, remove)
				if errors.Is(err, account.ErrNotFound) {
					return fmt.Errorf("no user %q", args[0]) // deleted meanwhile
				} else if err != nil {
					return err
				}
				return a.printJSON(viewUser(u))
			})
		},
	}
	roles.Flags().StringArrayVar(&add, "add", nil, "give the user this role (repeatable)")
	roles.Flags().StringArrayVar(&remove, "remove", nil, "take this role from the user (repeatable)")

	cmd.AddCommand(create, list, del, roles)
	return cmd
}

func (a *app) keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage token signing keys"}
	list := &cobra.Command{
		Use:   "list",
		Short: "Print the signing keys as JSON: state (next, active, retiring, retired), created_at, signs_from, retires_at; no private parts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), func(store *storage.Store) error {
				keys := provider.NewKeys(store, a.keysConfig())
				if err := keys.Ensure(cmd.Context()); err != nil {
					return err
				}
				infos, err := keys.List(cmd.Context())
				if err != nil {
					return err
				}
				return a.printJSON(infos)
			})
		},
	}
	var algs []string
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Add a new signing key per algorithm, signing 6 minutes later (signs_from); old keys stay published until their tokens expire",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, alg := range algs {
				if !provider.ValidAlg(alg) {
					return usageError{fmt.Errorf("--alg %q: want one of %s", alg, strings.Join(provider.Algorithms, ", "))}
				}
			}
			return a.withStore(cmd.Context(), func(store *storage.Store) error {
				keys := provider.NewKeys(store, a.keysConfig())
				if err := keys.Ensure(cmd.Context()); err != nil {
					return err
				}
				added, err := keys.Rotate(cmd.Context(), algs...)
				if err != nil {
					return err
				}
				return a.printJSON(added)
			})
		},
	}
	rotate.Flags().StringSliceVar(&algs, "alg", nil, "rotate only these algorithms (RS256, ES256, EdDSA); default all")
	cmd.AddCommand(list, rotate)
	return cmd
}

// keysConfig derives the key settings from the token lifetimes, as serve
// does.
func (a *app) keysConfig() provider.KeysConfig {
	return provider.KeysConfig{Retain: max(a.cfg.IDTokenTTL, a.cfg.AccessTokenTTL) + 24*time.Hour}
}

func splitList(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %d argument(s), got %d", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}

// nonNilList prints a missing list as [].
func nonNilList(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
