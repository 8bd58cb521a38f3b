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
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/store"
	"github.com/tokenops/token-operator/internal/token"
)

const (
	answerTrue  = `{"status_code":200,"status":true}`
	answerFalse = `{"status_code":200,"status":false}`
)

var tokenAnswer = regexp.MustCompile(`^\{"status_code":200,"token":"([0-9a-f]{16}:[A-Z2-7]{26})"\}$`)

// issue POSTs to base and returns the token from the exact answer.
func issue(base, body string) string {
	GinkgoHelper()
	code, answer, contentType := call(base, http.MethodPost, "/app/token", body)
	Expect(code).To(Equal(http.StatusOK), answer)
	Expect(contentType).To(Equal("application/json"))
	m := tokenAnswer.FindStringSubmatch(answer)
	Expect(m).To(HaveLen(2), "answer %q", answer)
	return m[1]
}

// valid GETs /app/valid/{tok} from base and returns the exact answer.
func valid(base, tok string) string {
	GinkgoHelper()
	code, answer, contentType := call(base, http.MethodGet, "/app/valid/"+tok, "")
	Expect(code).To(Equal(http.StatusOK), answer)
	Expect(contentType).To(Equal("application/json"))
	return answer
}

func secretOf(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	return s, k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s)
}

// storedOf is where the HTTP token tok is stored, and its Record as the index reads it: the
// token slice that holds its record (the shipped layout), or a Secret of its own (the layout
// before slices). A token stored nowhere is a NotFound error.
func storedOf(ctx context.Context, tok string) (*corev1.Secret, token.Record, error) {
	parsed, err := token.Parse(tok)
	if err != nil {
		return nil, token.Record{}, err
	}
	if s, err := secretOf(ctx, httpNamespace, token.HTTPSecretName(parsed.ID)); !apierrors.IsNotFound(err) {
		if err != nil {
			return nil, token.Record{}, err
		}
		rec, err := token.RecordOf(s)
		return s, rec, err
	}
	list := &corev1.SecretList{}
	if err := k8sClient.List(ctx, list, client.InNamespace(httpNamespace), client.MatchingLabels{token.LabelManagedBy: token.ManagedBy}); err != nil {
		return nil, token.Record{}, err
	}
	for i := range list.Items {
		s := &list.Items[i]
		raw, ok := s.Data[parsed.ID]
		if !ok || !token.IsSliceSecret(s) {
			continue
		}
		slice, _, _, _ := token.SliceOf(s)
		r, err := token.ParseSliceRecord(parsed.ID, raw)
		if err != nil {
			return s, token.Record{}, err
		}
		return s, token.EntryOf(&slice, r.ID, r.Digest, r.IssuedAt, r.ExpiresAt, r.UsesLeft, r.About()), nil
	}
	return nil, token.Record{}, apierrors.NewNotFound(corev1.Resource("secrets"), "a slice holding "+parsed.ID)
}

// editStored edits the record of the HTTP token tok in its slice as a Secret writer would by
// hand (a JSON Patch of its data key), and returns the slice.
func editStored(ctx context.Context, tok string, edit func(*token.SliceRecord)) *corev1.Secret {
	GinkgoHelper()
	s, rec, err := storedOf(ctx, tok)
	Expect(err).NotTo(HaveOccurred())
	Expect(rec.Packing).To(Equal(token.PackedEntry), "in a slice")
	key := rec.Current.ID.String()
	r, err := token.ParseSliceRecord(key, s.Data[key])
	Expect(err).NotTo(HaveOccurred())
	edit(&r)
	patch, err := json.Marshal([]map[string]any{{"op": "replace", "path": "/data/" + key, "value": token.AppendSliceRecord(nil, r)}})
	Expect(err).NotTo(HaveOccurred())
	Expect(k8sClient.Patch(ctx, s, client.RawPatch(types.JSONPatchType, patch))).To(Succeed())
	return s
}

var _ = Describe("The /app HTTP API", func() {
	It("issues a token that validates on the same replica at once", func(ctx SpecContext) {
		tok := issue(apiURL, "")
		Expect(valid(apiURL, tok)).To(Equal(answerTrue))

		parsed, err := token.Parse(tok)
		Expect(err).NotTo(HaveOccurred())
		s, rec, err := storedOf(ctx, tok)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Type).To(Equal(token.SliceSecretType), "in a token slice: the shipped layout")
		Expect(s.Labels).To(HaveKeyWithValue(token.LabelSource, "http"))
		Expect(s.OwnerReferences).To(BeEmpty())
		Expect(rec.ExpiresAt().Sub(time.Unix(rec.IssuedAt, 0))).To(Equal(time.Hour))

		By("keeping no plaintext of the token in its slice, only the first 16 bytes of its digest")
		digest := token.DigestOf(tok)
		Expect(rec.Current.Digest[:token.SliceDigestBytes]).To(Equal(digest[:token.SliceDigestBytes]))
		Expect(rec.Current.Digest[token.SliceDigestBytes:]).To(HaveEach(byte(0)))
		Expect(rec.Match(digest)).To(Equal(token.SlotCurrent))
		yaml, err := json.Marshal(s)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(yaml)).NotTo(ContainSubstring(parsed.Secret))
		Expect(string(yaml)).NotTo(ContainSubstring(base64.StdEncoding.EncodeToString([]byte(tok))))
	})

	It("issues with the ttl of the body", func(ctx SpecContext) {
		tok := issue(apiURL, `{"ttl":"15m"}`)
		_, rec, err := storedOf(ctx, tok)
		Expect(err).NotTo(HaveOccurred())
		Expect(rec.ExpiresAt().Sub(time.Unix(rec.IssuedAt, 0))).To(Equal(15 * time.Minute))
		Expect(issue(apiURL, `{"ttl":null}`)).NotTo(Equal(tok))
	})

	It("validates a TokenRequest's token, and not once its Secret is deleted", func(ctx SpecContext) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "tr-"}}
		Expect(k8sClient.Create(ctx, ns)).To(Succeed())
		tr := &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "kubectl-applied"}}
		Expect(k8sClient.Create(ctx, tr)).To(Succeed())
		var s *corev1.Secret
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tr), tr)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(tr.Status.Conditions, tokensv1alpha1.ConditionReady)).To(BeTrue())
			var err error
			s, err = secretOf(ctx, ns.Name, "kubectl-applied")
			g.Expect(err).NotTo(HaveOccurred())
		}).Should(Succeed())
		tok := string(s.Data[token.DataToken])
		Eventually(valid).WithArguments(apiURL, tok).Should(Equal(answerTrue))

		Expect(k8sClient.Delete(ctx, s)).To(Succeed())
		deleted := time.Now()
		Eventually(valid).WithArguments(apiURL, tok).WithTimeout(time.Second).WithPolling(20 * time.Millisecond).
			Should(Equal(answerFalse))
		GinkgoWriter.Printf("validated false %s after the delete\n", time.Since(deleted))
	})

	It("answers false for an expired token at its expires-at, with no expiry controller running", func(ctx SpecContext) {
		stop, base, fake := startAtFakeTime(false, nil)
		defer stop()

		tok := issue(base, `{"ttl":"1h"}`)
		_, rec, err := storedOf(ctx, tok)
		Expect(err).NotTo(HaveOccurred())
		expiresAt := rec.ExpiresAt()

		fake.SetTime(expiresAt.Add(-time.Second))
		Expect(valid(base, tok)).To(Equal(answerTrue))
		fake.SetTime(expiresAt)
		Expect(valid(base, tok)).To(Equal(answerFalse))
		_, _, err = storedOf(ctx, tok)
		Expect(err).NotTo(HaveOccurred(), "nothing but the clock made it invalid")
	})

	It("clears only expired tokens", func(ctx SpecContext) {
		stop, base, fake := startAtFakeTime(true, nil)
		defer stop()
		short := issue(base, `{"ttl":"1h"}`)
		long := issue(base, `{"ttl":"3h"}`)

		fake.Step(2 * time.Hour)
		code, answer, _ := call(base, http.MethodDelete, "/app/clear/all/tokens", "")
		Expect(code).To(Equal(http.StatusOK))
		Expect(answer).To(Equal(answerTrue))
		_, _, err := storedOf(ctx, short)
		Expect(err).To(MatchError(ContainSubstring("not found")), "the answer comes after the delete")
		_, _, err = storedOf(ctx, long)
		Expect(err).NotTo(HaveOccurred())
		Expect(valid(base, long)).To(Equal(answerTrue))

		By("clearing again, from two callers at once, with nothing left to clear")
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				defer GinkgoRecover()
				code, answer, _ := call(base, http.MethodDelete, "/app/clear/all/tokens", "")
				Expect(code).To(Equal(http.StatusOK))
				Expect(answer).To(Equal(answerTrue))
			})
		}
		wg.Wait()
	})

	It("issues 200 distinct tokens to 200 concurrent POSTs, all valid, none logged", func() {
		const n = 200
		tokens := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				defer GinkgoRecover()
				tokens[i] = issue(apiURL, "")
			})
		}
		wg.Wait()
		Expect(tokens).To(HaveLen(n))
		distinct := map[string]bool{}
		for _, t := range tokens {
			distinct[t] = true
		}
		Expect(distinct).To(HaveLen(n))
		for i := range n {
			wg.Go(func() {
				defer GinkgoRecover()
				Expect(valid(apiURL, tokens[i])).To(Equal(answerTrue))
			})
		}
		wg.Wait()

		logged := serverLog.String()
		Expect(logged).To(ContainSubstring("Handled request"))
		for _, t := range tokens {
			parsed, _ := token.Parse(t)
			Expect(logged).NotTo(ContainSubstring(parsed.Secret))
		}
	})

	It("revokes a token issued over HTTP, on every replica within 1s, and looks tokens up by id", func(ctx SpecContext) {
		stop, other := startOperator(false, nil)
		defer stop()
		otherURL := "http://" + other.Listener.Addr().String()
		tok := issue(apiURL, `{"ttl":"10m"}`)
		parsed, _ := token.Parse(tok)
		Eventually(valid).WithArguments(otherURL, tok).Should(Equal(answerTrue))

		By("looking it up by its id, never seeing its secret")
		code, body, _ := call(apiURL, http.MethodGet, "/app/token/"+parsed.ID, "")
		Expect(code).To(Equal(http.StatusOK))
		Expect(body).To(MatchRegexp(`^\{"status_code":200,"token_id":"` + parsed.ID +
			`","source":"http","issued_at":"[^"]+Z","expires_at":"[^"]+Z","current":true,"expired":false,"uses_left":null,"issuer":"anonymous"\}$`))
		Expect(body).NotTo(ContainSubstring(parsed.Secret))
		code, _, _ = call(apiURL, http.MethodGet, "/app/token/"+tok, "")
		Expect(code).To(Equal(http.StatusBadRequest), "a whole token is no id")
		code, _, _ = call(apiURL, http.MethodGet, "/app/token/0123456789abcdef", "")
		Expect(code).To(Equal(http.StatusNotFound))

		By("revoking it")
		code, body, _ = call(apiURL, http.MethodDelete, "/app/token/"+tok, "")
		Expect(code).To(Equal(http.StatusOK))
		Expect(body).To(Equal(answerTrue))
		revoked := time.Now()
		Eventually(valid).WithArguments(otherURL, tok).WithTimeout(time.Second).WithPolling(10 * time.Millisecond).
			Should(Equal(answerFalse))
		GinkgoWriter.Printf("revocation visible on the other replica after %s\n", time.Since(revoked))
		Eventually(valid).WithArguments(apiURL, tok).WithTimeout(time.Second).Should(Equal(answerFalse))

		code, body, _ = call(apiURL, http.MethodDelete, "/app/token/"+tok, "")
		Expect(code).To(Equal(http.StatusOK))
		Expect(body).To(Equal(answerFalse), "revoking twice")
		code, body, _ = call(apiURL, http.MethodDelete, "/app/token/:", "")
		Expect(code).To(Equal(http.StatusOK))
		Expect(body).To(Equal(answerFalse))
	})

	It("refuses to revoke a TokenRequest's token over HTTP", func(ctx SpecContext) {
		tok := createTokenRequest(ctx, &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "kept"}})
		Eventually(valid).WithArguments(apiURL, tok).Should(Equal(answerTrue))
		code, body, _ := call(apiURL, http.MethodDelete, "/app/token/"+tok, "")
		Expect(code).To(Equal(http.StatusConflict))
		Expect(body).To(ContainSubstring("delete the TokenRequest"))
		Expect(valid(apiURL, tok)).To(Equal(answerTrue))
	})

	DescribeTable("answers bad input with its documented code",
		func(method, path, body string, code int, answer string) {
			gotCode, gotAnswer, contentType := call(apiURL, method, path, body)
			Expect(gotCode).To(Equal(code))
			Expect(contentType).To(Equal("application/json"))
			Expect(gotAnswer).To(MatchRegexp(answer))
		},
		Entry("empty token", "GET", "/app/valid/", "", 404, `^\{"status_code":404,"detail":"Not Found"\}$`),
		Entry("colon only", "GET", "/app/valid/:", "", 200, "^"+regexp.QuoteMeta(answerFalse)+"$"),
		Entry("a 10 KB token", "GET", "/app/valid/"+strings.Repeat("A", 10<<10), "", 200, "^"+regexp.QuoteMeta(answerFalse)+"$"),
		Entry("NUL byte", "GET", "/app/valid/%00", "", 200, "^"+regexp.QuoteMeta(answerFalse)+"$"),
		Entry("invalid UTF-8", "GET", "/app/valid/%FF%FE%FD", "", 200, "^"+regexp.QuoteMeta(answerFalse)+"$"),
		Entry("unknown well-formed token", "GET", "/app/valid/0123456789abcdef:ABCDEFGHIJKLMNOPQRSTUVWXYZ", "", 200,
			"^"+regexp.QuoteMeta(answerFalse)+"$"),
		Entry("encoded path traversal", "GET", "/app/valid/..%2F..%2Fetc%2Fpasswd", "", 404, `"detail":"Not Found"`),
		Entry("body that is not JSON", "POST", "/app/token", "ttl=15m", 400, `^\{"status_code":400,"detail":"body: want a JSON object`),
		Entry("negative ttl", "POST", "/app/token", `{"ttl":"-1s"}`, 400, `^\{"status_code":400,"detail":"ttl: must be at least 1s"\}$`),
		Entry("ttl above the maximum", "POST", "/app/token", `{"ttl":"9999999h"}`, 400, `"detail":"ttl: must be at most 8760h0m0s"`),
		Entry("ttl not a duration", "POST", "/app/token", `{"ttl":"banana"}`, 400, `"detail":"ttl: want a duration`),
		Entry("ttl a number", "POST", "/app/token", `{"ttl":900}`, 400, `"status_code":400`),
		Entry("unknown field", "POST", "/app/token", `{"ttl":"15m","uses":1}`, 400, `unknown field \\"uses\\"`),
		Entry("two objects", "POST", "/app/token", `{"ttl":"15m"}{"ttl":"1m"}`, 400, `"detail":"body: want a single JSON object"`),
		Entry("an array", "POST", "/app/token", `[]`, 400, `"status_code":400`),
		Entry("a body over 4 KiB", "POST", "/app/token", `{"ttl":"15m","x":"`+strings.Repeat("x", 5000)+`"}`, 413,
			`"detail":"body: larger than 4096 bytes"`),
		Entry("wrong method on /app/token", "GET", "/app/token", "", 405, `^\{"status_code":405,"detail":"Method Not Allowed"\}$`),
		Entry("wrong method on validate", "PUT", "/app/valid/x", "", 405, `"Method Not Allowed"`),
		Entry("wrong method on clear", "POST", "/app/clear/all/tokens", "", 405, `"Method Not Allowed"`),
		Entry("wrong method on a token", "POST", "/app/token/x", "", 405, `"Method Not Allowed"`),
		Entry("unknown route", "GET", "/app/tokenz", "", 404, `^\{"status_code":404,"detail":"Not Found"\}$`),
		Entry("OpenAPI document", "GET", "/openapi.json", "", 200, `"openapi": "3.0.3"`),
	)

	It("answers a raw path traversal with 404, not a redirect", func() {
		conn, err := net.Dial("tcp", strings.TrimPrefix(apiURL, "http://"))
		Expect(err).NotTo(HaveOccurred())
		defer func() { _ = conn.Close() }()
		_, err = fmt.Fprintf(conn, "GET /app/valid/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		Expect(err).NotTo(HaveOccurred())
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		Expect(err).NotTo(HaveOccurred())
		defer func() { _ = resp.Body.Close() }()
		Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
	})

	It("names the allowed methods on a 405", func() {
		resp, err := httpClient.Get(apiURL + "/app/token")
		Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		Expect(resp.Header.Get("Allow")).To(Equal("POST, DELETE")) // DELETE with a body revokes
	})

	It("describes every endpoint in /openapi.json", func() {
		_, body, _ := call(apiURL, http.MethodGet, "/openapi.json", "")
		var doc struct {
			OpenAPI string                    `json:"openapi"`
			Paths   map[string]map[string]any `json:"paths"`
		}
		Expect(json.Unmarshal([]byte(body), &doc)).To(Succeed())
		Expect(doc.Paths).To(HaveKey("/app/token"))
		Expect(doc.Paths["/app/token"]).To(HaveKey("post"))
		Expect(doc.Paths["/app/valid/{token}"]).To(HaveKey("get"))
		Expect(doc.Paths["/app/clear/all/tokens"]).To(HaveKey("delete"))
		Expect(doc.Paths["/app/token/{token}"]).To(And(HaveKey("get"), HaveKey("delete")))
		Expect(doc.Paths["/app/redeem/{token}"]).To(HaveKey("post"))
		Expect(doc.Paths["/app/tokens"]).To(And(HaveKey("get"), HaveKey("delete")))
		Expect(doc.Paths["/app/introspect"]).To(HaveKey("post"))
		Expect(doc.Paths["/app/auth"]).To(HaveKey("get"))
		Expect(doc.Paths["/app/code"]).To(HaveKey("post"))
		Expect(doc.Paths["/app/code/verify"]).To(HaveKey("post"))
	})

	It("answers 503 when the API server cannot store a token", func() {
		dead := rest.CopyConfig(cfg)
		dead.Host = "https://127.0.0.1:1"
		c, err := client.New(dead, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		srv := &Server{Namespace: httpNamespace, DefaultTTL: time.Hour, MaxTTL: time.Hour,
			Store: store.New(c, c, index.New(GinkgoLogr), nil), Clock: clocktesting.NewFakeClock(time.Now()), WriteTimeout: 2 * time.Second, Log: GinkgoLogr}
		rec := newRecorder()
		start := time.Now()
		srv.Handler().ServeHTTP(rec, mustRequest(http.MethodPost, "/app/token", ""))
		Expect(rec.code).To(Equal(http.StatusServiceUnavailable))
		Expect(rec.body.String()).To(MatchRegexp(`^\{"status_code":503,"detail":"the token could not be stored: .*"\}$`))
		Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
	})
})
