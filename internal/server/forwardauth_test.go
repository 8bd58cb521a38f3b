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
	"io"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// authAnswer is what GET /app/auth answered.
type authAnswer struct {
	code   int
	header http.Header
	body   string
}

// askAuth sends GET /app/auth{query} to base with an Authorization header ("" for none).
func askAuth(base, query, authorization string) authAnswer {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodGet, base+"/app/auth"+query, nil)
	Expect(err).NotTo(HaveOccurred())
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return authAnswer{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

var _ = Describe("Forward auth (GET /app/auth)", func() {
	It("answers 200 with the token's id, subject and purpose, or 401 with a reason, and nothing else", func() {
		plain := issue(apiURL, "")
		reset := issue(apiURL, `{"subject":"user-77","purpose":"download"}`)
		accented := issue(apiURL, `{"subject":"José Müller"}`)
		revoked := issue(apiURL, `{"subject":"user-78"}`)
		_, answer, _ := call(apiURL, http.MethodDelete, "/app/token/"+revoked, "")
		Expect(answer).To(Equal(answerTrue))
		for _, tc := range []struct {
			name, query, authorization string
			code                       int
			reason, subject, purpose   string
		}{
			{"no header", "", "", 401, "no-token", "", ""},
			{"another scheme", "", "Basic dXNlcjpwYXNz", 401, "no-token", "", ""},
			{"an empty bearer", "", "Bearer ", 401, "no-token", "", ""},
			{"a malformed token", "", "Bearer not-a-token", 401, "malformed", "", ""},
			{"an unknown token", "", "Bearer " + strings.Repeat("0", 16) + ":" + strings.Repeat("A", 26), 401, "unknown", "", ""},
			{"a revoked token", "", "Bearer " + revoked, 401, "unknown", "", ""},
			{"a valid token", "", "Bearer " + plain, 200, "", "", ""},
			{"the scheme in lower case", "", "bearer " + plain, 200, "", "", ""},
			{"a token asked with a purpose it lacks", "?purpose=download", "Bearer " + plain, 401, "wrong-purpose", "", ""},
			{"a token with its purpose", "?purpose=download", "Bearer " + reset, 200, "", "user-77", "download"},
			{"a token with a purpose, asked without", "", "Bearer " + reset, 401, "wrong-purpose", "", ""},
			{"a token with another purpose", "?purpose=upload", "Bearer " + reset, 401, "wrong-purpose", "", ""},
			{"a subject beyond printable ASCII, percent-encoded", "", "Bearer " + accented, 200, "", "Jos%C3%A9%20M%C3%BCller", ""},
		} {
			a := askAuth(apiURL, tc.query, tc.authorization)
			Expect(a.code).To(Equal(tc.code), tc.name+": "+a.body)
			Expect(a.header.Get("X-Token-Reason")).To(Equal(tc.reason), tc.name)
			Expect(a.header.Get("X-Token-Subject")).To(Equal(tc.subject), tc.name)
			Expect(a.header.Get("X-Token-Purpose")).To(Equal(tc.purpose), tc.name)
			if tc.code == 401 {
				Expect(a.header.Get("WWW-Authenticate")).To(HavePrefix(`Bearer realm="token-operator"`), tc.name)
				Expect(a.header.Get("X-Token-Id")).To(BeEmpty(), tc.name)
			} else {
				id, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(tc.authorization, "Bearer "), "bearer "), ":")
				Expect(a.header.Get("X-Token-Id")).To(Equal(id), tc.name)
			}
		}
		Expect(askAuth(apiURL, "", "Bearer "+accented).header.Get("X-Token-Subject-Encoding")).To(Equal("percent"))
		Expect(askAuth(apiURL, "", "Bearer "+plain).header.Get("X-Token-Subject-Encoding")).To(BeEmpty())
	})

	It("refuses a limited-use token unless the location spends a use, then spends each once", func() {
		twice := issue(apiURL, `{"max_uses":2,"subject":"guest-1"}`)
		a := askAuth(apiURL, "", "Bearer "+twice)
		Expect(a.code).To(Equal(http.StatusUnauthorized))
		Expect(a.header.Get("X-Token-Reason")).To(Equal("needs-spend"))
		for range 2 {
			Expect(askAuth(apiURL, "?spend=1", "Bearer "+twice).code).To(Equal(http.StatusOK))
		}
		a = askAuth(apiURL, "?spend=1", "Bearer "+twice)
		Expect(a.code).To(Equal(http.StatusUnauthorized), "both uses spent")
	})

	It("answers on any method, as a proxy's subrequest carries the original request's", func() {
		tok := issue(apiURL, "")
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodHead} {
			req, err := http.NewRequest(m, apiURL+"/app/auth", nil)
			Expect(err).NotTo(HaveOccurred())
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := httpClient.Do(req)
			Expect(err).NotTo(HaveOccurred())
			_ = resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusOK), m)
		}
	})

	It("never sends the token to a TokenReview under --http-auth=kubernetes", func() {
		auth, counter := countedAuth(maxAcceptedReviews, maxRejectedReviews)
		stop, srv := startOperator(false, func(s *Server) { s.Auth, s.AuthValidate = auth, true })
		defer stop()
		base := "http://" + srv.Listener.Addr().String()
		tok := issue(apiURL, "")
		Eventually(func() int { return askAuth(base, "", "Bearer "+tok).code }).Should(Equal(http.StatusOK))
		Expect(askAuth(base, "", "Bearer "+randomBearer()).code).To(Equal(http.StatusUnauthorized))
		Expect(counter.reviews.Load()).To(BeZero(), "the Authorization header is the token checked, not a credential")
	})

	It("answers 403 with a reason and Retry-After when it may not answer: a flood, or a stale view", func() {
		stop, srv := startOperator(false, func(s *Server) { s.FailedValidationsPerSecond, s.FailedValidationsBurst = 1, 3 })
		defer stop()
		base := "http://" + srv.Listener.Addr().String()
		for range 3 {
			Expect(askAuth(base, "", "Bearer "+randomBearer()).code).To(Equal(http.StatusUnauthorized))
		}
		a := askAuth(base, "", "Bearer "+randomBearer())
		Expect(a.code).To(Equal(http.StatusForbidden))
		Expect(a.header.Get("X-Token-Reason")).To(Equal("rate-limited"))
		Expect(a.header.Get("Retry-After")).NotTo(BeEmpty())

		stopStale, stale := startOperator(false, func(s *Server) {
			s.Staleness = func() (time.Duration, bool) { return time.Minute, true }
		})
		defer stopStale()
		a = askAuth("http://"+stale.Listener.Addr().String(), "", "Bearer "+issue(apiURL, ""))
		Expect(a.code).To(Equal(http.StatusForbidden))
		Expect(a.header.Get("X-Token-Reason")).To(Equal("stale"))
		Expect(a.header.Get("Retry-After")).To(Equal("5"))
	})
})
