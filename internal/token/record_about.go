/*
Copyright 2026 The token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package token

// About is whom and what a token is for: the subject, its own, and the rest, which many
// tokens share (Kind), so that a token with a subject costs 24 bytes and its subject here.
type About struct {
	Subject string
	Kind    *Kind
}

// Kind is who issued a token and what for. The index keeps one Kind for every token of the
// same issuer and purpose without metadata (a few issuers and purposes, many tokens); a
// token with metadata has a Kind of its own.
type Kind struct {
	// Issuer is who issued the token (see Record.Issuer), "" for IssuerAnonymous.
	Issuer, Purpose string
	// Metadata is the caller's string map as the Secret holds it (JSON), "" for none.
	Metadata string
}

// kind is r's Kind, the zero Kind for none.
func (r *Record) kind() Kind {
	if r.About == nil || r.About.Kind == nil {
		return Kind{}
	}
	return *r.About.Kind
}

// Issuers.
const (
	// IssuerAnonymous issued every token over HTTP without --http-auth=kubernetes.
	IssuerAnonymous = "anonymous"
	// issuerTokenRequest prefixes a TokenRequest's issuer name (TokenRequestIssuer).
	issuerTokenRequest = "tokenrequest:"
)

// TokenRequestIssuer is the issuer of a TokenRequest's tokens: "tokenrequest:<namespace>/<name>".
// No Kubernetes user name has this shape (those of service accounts start "system:").
func TokenRequestIssuer(namespace, name string) string {
	return issuerTokenRequest + namespace + "/" + name
}

// Issuer is who issued the token: the TokenRequest that controls the Secret
// (TokenRequestIssuer), else the caller that issued it over HTTP as the Secret records it,
// IssuerAnonymous when it records none.
func (r *Record) Issuer() string {
	switch {
	case r.kind().Issuer != "":
		return r.kind().Issuer // a TokenRequest's too, when its Record has an About
	case r.Controller != nil:
		return TokenRequestIssuer(r.Namespace, r.Controller.Name)
	}
	return IssuerAnonymous
}

// Subject is whom the token is for, "" for none.
func (r *Record) Subject() string {
	if r.About == nil {
		return ""
	}
	return r.About.Subject
}

// Purpose is what the token is for, "" for none.
func (r *Record) Purpose() string { return r.kind().Purpose }

// Metadata is the caller's string map as JSON, "" for none.
func (r *Record) Metadata() string { return r.kind().Metadata }
