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
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// post sends body with a Content-Type and returns the status and the body.
func post(path, contentType, body string) (int, string) {
	GinkgoHelper()
	resp, err := httpClient.Post(apiURL+path, contentType, strings.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(b)
}

var _ = Describe("Purpose-checked validation", func() {
	const reset, verify = "password-reset", "email-verification"
	var bound, unbound string
	BeforeEach(func() {
		bound = issue(apiURL, `{"subject":"user-42","purpose":"`+reset+`"}`)
		unbound = issue(apiURL, "")
	})
	// ask is every form of asking about tok with purpose ("" for none): validation and
	// redemption, in the path and in the body.
	ask := func(tok, purpose string) []string {
		q, body := "", `{"token":"`+tok+`"}`
		if purpose != "" {
			q, body = "?purpose="+url.QueryEscape(purpose), `{"token":"`+tok+`","purpose":"`+purpose+`"}`
		}
		var out []string
		for _, path := range []string{"/app/valid/" + tok + q, "/app/redeem/" + tok + q} {
			method := http.MethodPost
			if strings.HasPrefix(path, "/app/valid/") {
				method = http.MethodGet
			}
			_, answer, _ := call(apiURL, method, path, "")
			out = append(out, answer)
		}
		for _, path := range []string{"/app/valid", "/app/redeem"} {
			_, answer, _ := call(apiURL, http.MethodPost, path, body)
			out = append(out, answer)
		}
		return out
	}
	DescribeTable("answers as the token's purpose and the one asked say", func(token func() string, asked string, want string) {
		Expect(ask(token(), asked)).To(HaveEach(want))
	},
		Entry("A asked A: true", func() string { return bound }, reset, answerTrue),
		Entry("A asked B: false", func() string { return bound }, verify, answerFalse),
		Entry("A asked none: false", func() string { return bound }, "", answerFalse),
		Entry("none asked A: false", func() string { return unbound }, reset, answerFalse),
		Entry("none asked none: true (the original contract)", func() string { return unbound }, "", answerTrue),
		Entry("unknown: the same false", func() string { return "0123456789abcdef:ABCDEFGHIJKLMNOPQRSTUVWXYZ" }, reset, answerFalse),
	)
	It("spends no use of a limited token asked with the wrong purpose", func() {
		once := issue(apiURL, `{"purpose":"`+reset+`","max_uses":1}`)
		for range 3 {
			_, answer, _ := call(apiURL, http.MethodPost, "/app/redeem/"+once+"?purpose="+verify, "")
			Expect(answer).To(Equal(answerFalse))
		}
		_, answer, _ := call(apiURL, http.MethodPost, "/app/redeem/"+once+"?purpose="+reset, "")
		Expect(answer).To(Equal(answerTrue))
		_, answer, _ = call(apiURL, http.MethodPost, "/app/redeem/"+once+"?purpose="+reset, "")
		Expect(answer).To(Equal(answerFalse))
	})
	It("refuses a bad subject, purpose or metadata with a JSON 400 naming the field", func() {
		for body, field := range map[string]string{
			`{"subject":""}`:                                 "subject: must not be empty",
			`{"subject":"a\u0007b"}`:                         "subject: must not hold control characters",
			`{"subject":"` + strings.Repeat("x", 257) + `"}`: "subject: at most 256 bytes",
			`{"purpose":"Password Reset"}`:                   "purpose: want 1 to 63",
			`{"metadata":{"a":"1","b":"2","c":"3","d":"4","e":"5","f":"6","g":"7","h":"8","i":"9"}}`: "metadata: at most 8 keys",
			`{"metadata":{"bad key":"v"}}`: "metadata: key ",
			hundredKeys():                  "metadata: at most 8 keys",
			`{"metadata":{"a":"` + strings.Repeat("v", 250) + `","b":"` + strings.Repeat("v", 250) + `","c":"` + strings.Repeat("v", 250) +
				`","d":"` + strings.Repeat("v", 250) + `","e":"` + strings.Repeat("v", 250) + `"}}`: "metadata: at most 1024 bytes",
			`{"subject":"user\u0000"}`:                              "subject: must not hold control characters",
			`{"subject":"user\u202e42\n"}`:                          "subject: must not hold control characters",
			`{"metadata":{"k":"` + strings.Repeat("v", 300) + `"}}`: "metadata.k: at most 256 bytes",
		} {
			code, answer, _ := call(apiURL, http.MethodPost, "/app/token", body)
			Expect(code).To(Equal(http.StatusBadRequest), body)
			Expect(answer).To(HavePrefix(`{"status_code":400,"detail":"` + field))
		}
	})
})

// hundredKeys is an issue body with 100 metadata keys.
func hundredKeys() string {
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf(`"k%d":"v"`, i)
	}
	return `{"metadata":{` + strings.Join(keys, ",") + `}}`
}

var _ = Describe("Introspection (RFC 7662)", func() {
	forms := map[string]func(tok, scope string) (int, string){
		"form-encoded": func(tok, scope string) (int, string) {
			v := url.Values{"token": {tok}}
			if scope != "" {
				v.Set("scope", scope)
			}
			return post("/app/introspect", "application/x-www-form-urlencoded", v.Encode())
		},
		"JSON": func(tok, scope string) (int, string) {
			b, _ := json.Marshal(map[string]string{"token": tok, "scope": scope})
			return post("/app/introspect", "application/json", string(b))
		},
	}
	It("answers the full record of a live token, and never spends a use", func() {
		tok := issue(apiURL, `{"ttl":"30m","max_uses":2,"subject":"user-42","purpose":"password-reset","metadata":{"ip":"203.0.113.7"}}`)
		for name, introspect := range forms {
			code, body := introspect(tok, "password-reset")
			Expect(code).To(Equal(http.StatusOK), name)
			var got map[string]any
			Expect(json.Unmarshal([]byte(body), &got)).To(Succeed())
			Expect(got).To(HaveKeyWithValue("active", true))
			Expect(got).To(HaveKeyWithValue("sub", "user-42"))
			Expect(got).To(HaveKeyWithValue("scope", "password-reset"))
			Expect(got).To(HaveKeyWithValue("jti", tok[:16]))
			Expect(got).To(HaveKeyWithValue("token_type", "bearer"))
			Expect(got).To(HaveKeyWithValue("uses_left", BeEquivalentTo(2)), "introspection spends no use")
			Expect(got).To(HaveKeyWithValue("ext", map[string]any{"ip": "203.0.113.7"}))
			Expect(got["exp"]).To(BeNumerically("~", time.Now().Add(30*time.Minute).Unix(), 5))
			Expect(got["iat"]).To(BeNumerically("~", time.Now().Unix(), 5))
			Expect(body).NotTo(ContainSubstring("status_code"), "RFC 7662's shape, not the API's envelope")
		}
	})
	It("answers exactly {\"active\":false} for every inactive token", func() {
		spent := issue(apiURL, `{"max_uses":1}`)
		_, answer, _ := call(apiURL, http.MethodPost, "/app/redeem/"+spent, "")
		Expect(answer).To(Equal(answerTrue))
		revoked := issue(apiURL, "")
		code, _, _ := call(apiURL, http.MethodDelete, "/app/token", `{"token":"`+revoked+`"}`)
		Expect(code).To(Equal(http.StatusOK))
		expiring := issue(apiURL, `{"ttl":"1s"}`)
		purposed := issue(apiURL, `{"purpose":"login"}`)
		for name, introspect := range forms {
			Eventually(func() string { _, b := introspect(expiring, ""); return b }).WithTimeout(5*time.Second).
				Should(Equal(`{"active":false}`), "expired, "+name)
			for what, asked := range map[string][2]string{
				"unknown": {"0123456789abcdef:ABCDEFGHIJKLMNOPQRSTUVWXYZ", ""}, "spent": {spent, ""}, "revoked": {revoked, ""},
				"wrong purpose": {purposed, "password-reset"}, "purpose not asked": {purposed, ""}, "malformed token": {"x", ""},
			} {
				code, body := introspect(asked[0], asked[1])
				Expect([]any{code, body}).To(Equal([]any{http.StatusOK, `{"active":false}`}), what+", "+name)
			}
		}
	})
	It("answers a malformed request 400 in RFC 6749's error shape", func() {
		for _, c := range [][2]string{
			{"application/x-www-form-urlencoded", "scope=a"},
			{"application/x-www-form-urlencoded", "token=a&token=b"},
			{"application/json", `{"scope":"a"}`},
			{"text/plain", "token=a"},
		} {
			code, body := post("/app/introspect", c[0], c[1])
			Expect(code).To(Equal(http.StatusBadRequest), c[1])
			Expect(body).To(HavePrefix(`{"error":"invalid_request","error_description":`), c[1])
		}
	})
})

func FuzzParseIntrospectionRequest(f *testing.F) {
	for _, s := range []string{"", "token=a", "token=a&scope=b", "token=a&token=b", "%zz", "scope=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r, _ := http.NewRequest(http.MethodPost, "/app/introspect", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		p, err := ParseIntrospectionRequest(r)
		if err != nil {
			return
		}
		form, ferr := url.ParseQuery(body)
		if ferr != nil || form.Get("token") != p.Token || form.Get("scope") != p.Purpose {
			t.Fatalf("read %+v from %q", p, body)
		}
	})
}

func TestIssuerScope(t *testing.T) {
	for _, tt := range []struct {
		name, caller, asked string
		admin               bool
		want                scope
		refused             bool
	}{
		{"no issuer asked: the caller's own", "app-a", "", false, scope{issuers: []string{"app-a"}}, false},
		{"the caller named", "app-a", "app-a", false, scope{issuers: []string{"app-a"}}, false},
		{"another issuer, no admin", "app-a", "app-b", false, scope{}, true},
		{"every issuer, no admin", "app-a", "*", false, scope{}, true},
		{"another issuer, admin", "admin", "app-b", true, scope{issuers: []string{"app-b"}}, false},
		{"every issuer, admin", "admin", "*", true, scope{all: true}, false},
		{"an admin's own by default", "admin", "", true, scope{issuers: []string{"admin"}}, false},
	} {
		got, why := issuerScope(tt.caller, tt.asked, tt.admin)
		if (why != "") != tt.refused || !slices.Equal(got.issuers, tt.want.issuers) || got.all != tt.want.all {
			t.Errorf("%s: issuerScope = %+v, %q; want %+v, refused %v", tt.name, got, why, tt.want, tt.refused)
		}
	}
}
