package templates

// FederatedButton is one "Continue with {Label}" button: a form posting
// "csrf" and "req" to /login/federated/{Name}.
type FederatedButton struct {
	Name, Label string
}

// FederatedIdentity is a linked upstream identity on the account page,
// with an "Unlink" form posting "provider" and "subject" to
// /account/federated/unlink.
type FederatedIdentity struct {
	Provider, Label, Subject, Email string
}

// FederatedLinkPage is the value federation-link.html takes: an account
// has the upstream email; the person proves it is theirs. Step "choose"
// offers the password (action=password, when the account has one) or a
// mailed code (action=mail), both posted to /login/federated/link; step
// "code" asks for the code, posted to /login/federated/link/code.
type FederatedLinkPage struct {
	CSRF string
	// Provider is the provider's label; Email the account's address,
	// masked.
	Provider, Email string
	HasPassword     bool
	Step, Error     string
	Minutes         int
}
