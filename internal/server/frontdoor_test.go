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
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/token"
)

// tokenJSON is the body form of a token.
func tokenJSON(tok string) string {
	b, err := json.Marshal(map[string]string{"token": tok})
	Expect(err).NotTo(HaveOccurred())
	return string(b)
}

var _ = Describe("The body forms of the routes that take a token", func() {
	It("validate exactly as GET /app/valid/{token} does: same bytes, same metrics", func(ctx SpecContext) {
		stop, base, fake := startAtFakeTime(false, nil)
		defer stop()
		// Expired by this server's fake clock only: a token that expires in real time would be
		// deleted during the spec by the shared manager's expiry controller, and be unknown.
		expired := issue(base, `{"ttl":"1h"}`)
		// A spent HTTP token is removed by its last redemption; one whose count was set to 0
		// (by hand, here: the count is not sealed) stays, and so answers "spent" for as long as
		// the spec needs.
		spent := issue(base, `{"ttl":"3h","max_uses":3}`)
		parsed, err := token.Parse(spent)
		Expect(err).NotTo(HaveOccurred())
		editStored(ctx, spent, func(r *token.SliceRecord) { r.UsesLeft = 0 })
		Eventually(func() string {
			_, body, _ := call(base, http.MethodGet, "/app/token/"+parsed.ID, "")
			return body
		}).Should(ContainSubstring(`"uses_left":0`))
		fake.Step(2 * time.Hour)
		tokens := []struct{ result, token string }{
			{"valid", issue(base, `{"ttl":"1h"}`)},
			{"unknown", "0123456789abcdef:ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
			{"expired", expired},
			{"malformed", "not a token: %00 ü"},
			{"spent", spent},
		}
		for _, t := range tokens {
			By(t.result)
			counter := metrics.Validations.WithLabelValues(t.result)
			before := testutil.ToFloat64(counter)
			code, want, _ := call(base, http.MethodGet, "/app/valid/"+url.PathEscape(t.token), "")
			Expect(code).To(Equal(http.StatusOK))
			Expect(want).To(Equal(map[bool]string{true: answerTrue, false: answerFalse}[t.result == "valid"]))
			for _, path := range []string{"/app/valid", "/app/valid/whatever"} {
				code, got, contentType := call(base, http.MethodPost, path, tokenJSON(t.token))
				Expect([]any{code, got, contentType}).To(Equal([]any{http.StatusOK, want, "application/json"}), path)
			}
			Expect(testutil.ToFloat64(counter)).To(Equal(before+3), "each form counts once under the same result")
		}
	})

	It("redeem with POST /app/redeem and revoke with DELETE /app/token, the token in the body", func() {
		tok := issue(apiURL, `{"max_uses":2}`)
		code, answer, _ := call(apiURL, http.MethodPost, "/app/redeem", tokenJSON(tok))
		Expect([]any{code, answer}).To(Equal([]any{http.StatusOK, answerTrue}))
		code, answer, _ = call(apiURL, http.MethodDelete, "/app/token", tokenJSON(tok))
		Expect([]any{code, answer}).To(Equal([]any{http.StatusOK, answerTrue}))
		Eventually(valid).WithArguments(apiURL, tok).WithTimeout(time.Second).Should(Equal(answerFalse))
		code, answer, _ = call(apiURL, http.MethodDelete, "/app/token", tokenJSON(tok))
		Expect([]any{code, answer}).To(Equal([]any{http.StatusOK, answerFalse}), "revoked already")
	})

	DescribeTable("answer a hostile body with a JSON 4xx",
		func(path, body string, code int, detail string) {
			gotCode, gotAnswer, contentType := call(apiURL, http.MethodPost, path, body)
			Expect(gotCode).To(Equal(code))
			Expect(contentType).To(Equal("application/json"))
			Expect(gotAnswer).To(HavePrefix(`{"status_code":%d,"detail":`, code))
			Expect(gotAnswer).To(ContainSubstring(detail))
		},
		Entry("not JSON", "/app/valid", "token=abc", 400, "body: want a JSON object such as"),
		Entry("10 MB", "/app/valid", `{"token":"`+strings.Repeat("A", 10<<20)+`"}`, 413, "body: larger than 4096 bytes"),
		Entry("nested", "/app/valid", `{"token":`+strings.Repeat("[", 1000)+strings.Repeat("]", 1000)+`}`, 400, "body: want a JSON object"),
		Entry("a number", "/app/valid/x", `{"token":5}`, 400, "body: want a JSON object"),
		Entry("null", "/app/valid", `{"token":null}`, 400, "token: required"),
		Entry("no token", "/app/redeem", `{}`, 400, "token: required"),
		Entry("empty", "/app/valid", ``, 400, "token: required"),
		Entry("unknown field", "/app/valid", `{"token":"a","ttl":"1h"}`, 400, `unknown field`),
		Entry("two objects", "/app/redeem", `{"token":"a"}{"token":"b"}`, 400, "body: want a single JSON object"),
		Entry("an array", "/app/valid", `["0123456789abcdef:ABCDEFGHIJKLMNOPQRSTUVWXYZ"]`, 400, "body: want a JSON object"),
	)
})

var _ = Describe("Rate limits behind a reverse proxy", func() {
	// viaProxy validates tok as a client whose address the proxy at 127.0.0.1 forwards.
	viaProxy := func(base, client, tok string) (int, string) {
		GinkgoHelper()
		req, err := http.NewRequest(http.MethodPost, base+"/app/valid", strings.NewReader(tokenJSON(tok)))
		Expect(err).NotTo(HaveOccurred())
		req.Header.Set("X-Forwarded-For", client)
		resp, err := httpClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		Expect(err).NotTo(HaveOccurred())
		return resp.StatusCode, string(b)
	}
	guessAndCheck := func(trusted string) (guesser, other int) {
		stop, srv := startOperator(false, func(s *Server) {
			s.FailedValidationsPerSecond, s.FailedValidationsBurst = 10, 100
			s.TrustedProxies, _ = ParseTrustedProxies(trusted)
		})
		defer stop()
		base := "http://" + srv.Listener.Addr().String()
		tok := issue(base, "")
		for range 300 {
			guesser, _ = viaProxy(base, "203.0.113.7", "0123456789abcdef:ABCDEFGHIJKLMNOPQRSTUVWXYZ")
		}
		other, answer := viaProxy(base, "198.51.100.9", tok)
		if other == http.StatusOK {
			Expect(answer).To(Equal(answerTrue))
		}
		return guesser, other
	}

	It("keys a client behind a trusted proxy by its forwarded address", func() {
		guesser, other := guessAndCheck("127.0.0.1/32")
		Expect(guesser).To(Equal(http.StatusTooManyRequests))
		Expect(other).To(Equal(http.StatusOK), "another client behind the same proxy")
	})

	It("ignores the forwarded address when the peer is not a trusted proxy", func() {
		guesser, other := guessAndCheck("")
		Expect(guesser).To(Equal(http.StatusTooManyRequests))
		Expect(other).To(Equal(http.StatusTooManyRequests), "the forged header changes nothing: one peer, one bucket")
	})
})

var _ = Describe("GET /app/tokens", func() {
	It("pages through 5 000 tokens: ids and metadata, never a secret", func(ctx SpecContext) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "list-"}}
		Expect(k8sClient.Create(ctx, ns)).To(Succeed())
		const n = 5000
		live := createHTTPTokens(ctx, ns.Name, n)
		batch := map[string]bool{}
		for _, tok := range live {
			batch[strings.SplitN(tok, ":", 2)[0]] = true
		}
		tr := createTokenRequest(ctx, &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "listed"}})
		Eventually(valid).WithArguments(apiURL, live[n-1]).Should(Equal(answerTrue))

		ids, foundTR := map[string]bool{}, false
		var bodies strings.Builder
		var listed []listedToken
		pages := 0
		for next := "start"; next != ""; pages++ {
			path := "/app/tokens?limit=1000"
			if next != "start" {
				path += "&continue=" + url.QueryEscape(next)
			}
			code, body, contentType := call(apiURL, http.MethodGet, path, "")
			Expect([]any{code, contentType}).To(Equal([]any{http.StatusOK, "application/json"}), body)
			bodies.WriteString(body)
			var page listAnswer
			Expect(json.Unmarshal([]byte(body), &page)).To(Succeed())
			Expect(len(page.Tokens)).To(BeNumerically("<=", 1000))
			listed = append(listed, page.Tokens...)
			next = page.Continue
		}
		for _, t := range listed {
			if t.TokenID != nil && batch[*t.TokenID] {
				Expect(t.TokenID).NotTo(BeNil())
				Expect(ids).NotTo(HaveKey(*t.TokenID), "listed twice")
				ids[*t.TokenID] = true
				Expect(t).To(And(HaveField("Source", "http"), HaveField("TokenRequest", BeNil()), HaveField("Expired", false)))
			}
			if t.TokenRequest != nil && *t.TokenRequest == "listed" {
				Expect(t.TokenID).To(HaveValue(Equal(strings.SplitN(tr, ":", 2)[0])))
				Expect(t.Source).To(Equal("tokenrequest"))
				foundTR = true
			}
		}
		Expect(foundTR).To(BeTrue(), "the TokenRequest's token is listed with its name")
		Expect(ids).To(HaveLen(n))
		Expect(pages).To(BeNumerically(">=", n/1000))
		for _, tok := range append(live, tr) {
			Expect(bodies.String()).NotTo(ContainSubstring(strings.SplitN(tok, ":", 2)[1]))
		}
	})
})

var _ = Describe("The audit log", func() {
	run := func(failedValidations bool) (events []audit.Event, tok string) {
		lines := &lockedBuffer{}
		stop, base, fake := startAtFakeTime(true, func(s *Server) {
			s.Audit, s.AuditFailedValidations = audit.New(lines), failedValidations
		})
		defer stop()
		tok = issue(base, `{"max_uses":2}`)
		short := issue(base, `{"ttl":"1h"}`) // expired by the fake clock only (see above)
		Expect(valid(base, tok)).To(Equal(answerTrue))
		Expect(valid(base, "0123456789abcdef:ABCDEFGHIJKLMNOPQRSTUVWXYZ")).To(Equal(answerFalse))
		code, answer, _ := call(base, http.MethodPost, "/app/redeem", tokenJSON(tok))
		Expect([]any{code, answer}).To(Equal([]any{http.StatusOK, answerTrue}))
		code, answer, _ = call(base, http.MethodDelete, "/app/token", tokenJSON(tok))
		Expect([]any{code, answer}).To(Equal([]any{http.StatusOK, answerTrue}))
		fake.Step(2 * time.Hour)
		code, _, _ = call(base, http.MethodDelete, "/app/clear/all/tokens", "")
		Expect(code).To(Equal(http.StatusOK))
		_, _, err := storedOf(context.Background(), short)
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "cleared: %v", err)
		Expect(lines.String()).NotTo(Or(ContainSubstring(strings.SplitN(tok, ":", 2)[1]), ContainSubstring(strings.SplitN(short, ":", 2)[1])))
		return auditEvents(lines), tok
	}

	It("writes exactly one line per state-changing operation, naming the caller and the token id, never the token", func() {
		events, tok := run(false)
		id, _, _ := strings.Cut(tok, ":")
		var ops []string
		for _, e := range events {
			ops = append(ops, e.Operation)
			Expect(e).To(And(HaveField("Outcome", audit.Success), HaveField("User", "system:anonymous"),
				HaveField("ClientAddress", "127.0.0.1"), HaveField("RequestID", Not(BeEmpty())),
				HaveField("UserAgent", ContainSubstring("Go-http-client"))))
		}
		Expect(ops).To(Equal([]string{audit.OpIssue, audit.OpIssue, audit.OpRedeem, audit.OpRevoke, audit.OpClear}))
		Expect(events[2]).To(And(HaveField("TokenID", id), HaveField("UsesLeft", HaveValue(BeEquivalentTo(1))),
			HaveField("Namespace", httpNamespace), HaveField("Source", "http")))
		Expect(events[3].TokenID).To(Equal(id))
		// At least the short-lived token (another spec's expired tokens may go with it: the
		// API server is shared).
		Expect(events[4].Deleted).To(HaveValue(BeNumerically(">=", 1)))
	})

	It("writes failed validations too when asked", func() {
		events, _ := run(true)
		Expect(events).To(ContainElement(And(HaveField("Operation", audit.OpValidate), HaveField("Outcome", audit.Failure),
			HaveField("Reason", "unknown"), HaveField("TokenID", "0123456789abcdef"))))
		Expect(events).To(HaveLen(6))
	})
})
