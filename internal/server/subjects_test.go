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

package server

import (
	"encoding/json"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes"

	"github.com/tokenops/token-operator/internal/audit"
)

// issueAs issues a token at base as the bearer's caller and returns it.
func issueAs(base, bearer, body string) string {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodPost, base+"/app/token", strings.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	var answer struct{ Token string }
	Expect(json.NewDecoder(resp.Body).Decode(&answer)).To(Succeed())
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	return answer.Token
}

// listedTokens reads a listing's tokens: their ids and issuers.
func listedTokens(body string) []listedToken {
	GinkgoHelper()
	var answer listAnswer
	Expect(json.Unmarshal([]byte(body), &answer)).To(Succeed(), body)
	return answer.Tokens
}

var _ = Describe("Revocation and listing by subject, per issuer", Ordered, func() {
	var (
		base               string
		stop               func()
		appA, appB, admin  string
		auditLines         = &lockedBuffer{}
		ofA, ofB, otherOfA []string
		userA, userB       = serviceAccountUser("subjects-app-a"), serviceAccountUser("subjects-app-b")
	)
	BeforeAll(func(ctx SpecContext) {
		cs, err := kubernetes.NewForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		userA, userB = serviceAccountUser("subjects-app-a"), serviceAccountUser("subjects-app-b")
		appA = serviceAccountToken(ctx, cs, "subjects-app-a")
		appB = serviceAccountToken(ctx, cs, "subjects-app-b")
		admin = serviceAccountToken(ctx, cs, "subjects-admin")
		for _, sa := range []string{"subjects-app-a", "subjects-app-b"} {
			bind(ctx, "api-client", sa)
			bind(ctx, "api-subjects", sa)
		}
		bind(ctx, "api-admin", "subjects-admin")
		var srv *Server
		stop, srv = startOperator(false, func(s *Server) {
			auth, err := NewKubernetesAuth(cfg, nil)
			Expect(err).NotTo(HaveOccurred())
			s.Auth = auth
			s.Audit = audit.New(auditLines)
		})
		base = "http://" + srv.Listener.Addr().String()
		for range 3 {
			ofA = append(ofA, issueAs(base, appA, `{"subject":"user-4242","purpose":"session"}`))
			ofB = append(ofB, issueAs(base, appB, `{"subject":"user-4242","purpose":"session"}`))
		}
		otherOfA = append(otherOfA, issueAs(base, appA, `{"subject":"user-4343","purpose":"session"}`),
			issueAs(base, appA, `{"subject":"user-4242","purpose":"password-reset"}`))
	})
	AfterAll(func() { stop() })

	It("lists a subject's tokens of the caller's own issuer only", func() {
		for _, tc := range []struct {
			bearer, issuer string
			want           []string
		}{{appA, userA, []string{ofA[0], ofA[1], ofA[2], otherOfA[1]}}, {appB, userB, ofB}} {
			code, body := withBearer(http.MethodGet, base+"/app/tokens?subject=user-4242", tc.bearer)
			Expect(code).To(Equal(http.StatusOK), body)
			var ids []string
			for _, t := range listedTokens(body) {
				Expect(t.Issuer).To(Equal(tc.issuer))
				Expect(t.Subject).To(Equal("user-4242"))
				ids = append(ids, *t.TokenID)
			}
			Expect(ids).To(ConsistOf(idsOf(tc.want)))
		}
		By("filtering by purpose")
		code, body := withBearer(http.MethodGet, base+"/app/tokens?subject=user-4242&purpose=password-reset", appA)
		Expect(code).To(Equal(http.StatusOK), body)
		Expect(listedTokens(body)).To(HaveLen(1))
	})

	It("refuses another issuer's tokens, and every issuer's listing, to a caller without the verb admin", func() {
		for _, path := range []string{"/app/tokens?subject=user-4242&issuer=" + userB, "/app/tokens?subject=user-4242&issuer=*", "/app/tokens"} {
			code, body := withBearer(http.MethodGet, base+path, appA)
			Expect(code).To(Equal(http.StatusForbidden), path)
			Expect(body).To(ContainSubstring(`verb \"admin\" on /app/tokens`))
			code, body = withBearer(http.MethodDelete, base+path, appA)
			Expect(code).To(BeElementOf(http.StatusForbidden, http.StatusBadRequest), path+": "+body)
		}
		Expect(valid(base, ofB[0]+"?purpose=session")).To(Equal(answerTrue))
	})

	It("revokes one issuer's tokens of a subject and purpose, leaving the other issuer's and the other purposes", func() {
		code, body := withBearer(http.MethodDelete, base+"/app/tokens?subject=user-4242&purpose=session", appA)
		Expect(code).To(Equal(http.StatusOK), body)
		Expect(body).To(Equal(`{"status_code":200,"revoked":3,"token_requests":0,"more":false}`))
		for _, tok := range ofA {
			Expect(valid(base, tok+"?purpose=session")).To(Equal(answerFalse), "revoked, and forgotten by this replica at once")
		}
		for _, tok := range append(ofB, otherOfA[0]) {
			Expect(valid(base, tok+"?purpose=session")).To(Equal(answerTrue))
		}
		Expect(valid(base, otherOfA[1]+"?purpose=password-reset")).To(Equal(answerTrue))
		By("recording one audit line per revoked token, with the subject as an HMAC")
		var revoked []audit.Event
		for _, e := range auditEvents(auditLines) {
			if e.Operation == audit.OpRevoke && e.Outcome == audit.Success {
				revoked = append(revoked, e)
			}
		}
		Expect(revoked).To(HaveLen(3))
		Expect(revoked[0].Subject).To(HavePrefix("hmac-sha256:"))
		Expect(revoked).To(HaveEach(And(HaveField("Subject", revoked[0].Subject), HaveField("User", userA),
			HaveField("Purpose", "session"))))
		Expect(auditLines.String()).NotTo(ContainSubstring("user-4242"), "no plaintext subject in the audit trail")
	})

	It("lets an admin list and revoke across issuers", func() {
		code, body := withBearer(http.MethodGet, base+"/app/tokens?subject=user-4242&issuer=*", admin)
		Expect(code).To(Equal(http.StatusOK), body)
		Expect(listedTokens(body)).To(HaveLen(4), "app-b's three and app-a's password-reset token")
		code, body = withBearer(http.MethodDelete, base+"/app/tokens?subject=user-4242&issuer="+userB, admin)
		Expect(code).To(Equal(http.StatusOK), body)
		Expect(body).To(ContainSubstring(`"revoked":3`))
		for _, tok := range ofB {
			Expect(valid(base, tok+"?purpose=session")).To(Equal(answerFalse))
		}
		Expect(valid(base, otherOfA[1]+"?purpose=password-reset")).To(Equal(answerTrue), "app-a's token is not app-b's")
	})

	DescribeTable("answers a JSON 400 to a bad request by subject",
		func(query, want string) {
			code, body := withBearer(http.MethodDelete, base+"/app/tokens"+query, appA)
			Expect(code).To(Equal(http.StatusBadRequest), body)
			Expect(body).To(HavePrefix(`{"status_code":400,"detail":`))
			Expect(body).To(ContainSubstring(want))
		},
		Entry("no subject", "", "subject: must not be empty"),
		Entry("a control character", "?subject=user%0a42", "subject: must not hold control characters"),
		Entry("a subject too long", "?subject="+strings.Repeat("x", 257), "subject: at most 256 bytes"),
		Entry("a bad purpose", "?subject=user-4242&purpose=Bad%20Purpose", "purpose: want"),
	)
})

// idsOf is the public ids of tokens.
func idsOf(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		id, _, _ := strings.Cut(t, ":")
		out[i] = id
	}
	return out
}
