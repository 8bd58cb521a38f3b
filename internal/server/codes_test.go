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
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/controller"
	"github.com/tokenops/token-operator/internal/otp"
	"github.com/tokenops/token-operator/internal/store"
	"github.com/tokenops/token-operator/internal/token"
)

// issueCode asks base for a code with body and returns it.
func issueCode(base, body string) string {
	GinkgoHelper()
	status, answer, _ := call(base, http.MethodPost, "/app/code", body)
	Expect(status).To(Equal(http.StatusOK), answer)
	var got struct {
		StatusCode int    `json:"status_code"`
		Code       string `json:"code"`
	}
	Expect(json.Unmarshal([]byte(answer), &got)).To(Succeed())
	Expect(got.StatusCode).To(Equal(200))
	return got.Code
}

// verifyCode sends a code for subject and purpose to base and returns the answer's body.
func verifyCode(base, subject, purpose, c string) string {
	GinkgoHelper()
	b, _ := json.Marshal(map[string]string{"subject": subject, "purpose": purpose, "code": c})
	status, answer, _ := call(base, http.MethodPost, "/app/code/verify", string(b))
	Expect(status).To(Equal(http.StatusOK), answer)
	return answer
}

// otherCode is a code of c's length other than c.
func otherCode(c string) string {
	if c[0] == '0' {
		return "1" + c[1:]
	}
	return "0" + c[1:]
}

// codeSecret is the Secret of the code of subject and purpose issued anonymously.
func codeSecret(srv *Server, subject, purpose string) (*corev1.Secret, error) {
	GinkgoHelper()
	name, err := srv.Store.CodeName(store.CodeFor{Issuer: token.IssuerAnonymous, Subject: subject, Purpose: purpose})
	Expect(err).NotTo(HaveOccurred())
	s := &corev1.Secret{}
	return s, k8sClient.Get(context.Background(), types.NamespacedName{Namespace: httpNamespace, Name: name}, s)
}

var _ = Describe("One-time codes", Ordered, func() {
	var (
		one, two       *Server
		oneURL, twoURL string
		lines          = &lockedBuffer{}
	)
	BeforeAll(func() {
		var stop func()
		stop, one = startOperator(false, func(s *Server) { s.Audit = audit.New(lines) })
		DeferCleanup(stop)
		stop, two = startOperator(false, nil)
		DeferCleanup(stop)
		oneURL, twoURL = "http://"+one.Listener.Addr().String(), "http://"+two.Listener.Addr().String()
	})

	It("verifies a right code once, on either replica, and never again", func() {
		c := issueCode(oneURL, `{"subject":"user-1","purpose":"login"}`)
		Expect(c).To(MatchRegexp(`^[0-9]{6}$`))
		Expect(verifyCode(twoURL, "user-1", "other", c)).To(Equal(answerFalse), "another purpose")
		Expect(verifyCode(twoURL, "user-2", "login", c)).To(Equal(answerFalse), "another subject")
		Expect(verifyCode(twoURL, "user-1", "login", c)).To(Equal(answerTrue))
		Expect(verifyCode(oneURL, "user-1", "login", c)).To(Equal(answerFalse))
		Expect(verifyCode(twoURL, "user-1", "login", c)).To(Equal(answerFalse))
	})

	It("spends exactly one attempt per wrong code across replicas, then refuses the right one", func() {
		c := issueCode(oneURL, `{"subject":"user-3","purpose":"login","max_attempts":5,"digits":8}`)
		Expect(c).To(HaveLen(8))
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() {
				defer GinkgoRecover()
				base := []string{oneURL, twoURL}[i%2]
				Expect(verifyCode(base, "user-3", "login", otherCode(c))).To(Equal(answerFalse))
			})
		}
		wg.Wait()
		s, err := codeSecret(one, "user-3", "login")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(s.Data[otp.DataAttempts])).To(Equal("5"), "five wrong codes, five attempts")
		Expect(verifyCode(twoURL, "user-3", "login", c)).To(Equal(answerFalse), "no attempt left")
	})

	It("replaces a live code with a new one", func() {
		first := issueCode(oneURL, `{"subject":"user-4","purpose":"login"}`)
		second := issueCode(twoURL, `{"subject":"user-4","purpose":"login"}`)
		if first != second {
			Expect(verifyCode(oneURL, "user-4", "login", first)).To(Equal(answerFalse))
		}
		Expect(verifyCode(oneURL, "user-4", "login", second)).To(Equal(answerTrue))
	})

	It("keeps no code and no subject in plaintext, and audits subjects as HMACs", func() {
		c := issueCode(oneURL, `{"subject":"alice@example.com","purpose":"login","digits":10}`) // ten digits: none by chance in a log
		s, err := codeSecret(one, "alice@example.com", "login")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Type).To(Equal(otp.SecretType))
		Expect(s.Name).NotTo(ContainSubstring("alice"))
		Expect(s.Labels).NotTo(HaveKey(token.LabelManagedBy), "the token index does not watch codes")
		for k, v := range s.Data {
			Expect(string(v)).NotTo(ContainSubstring(c), k)
			Expect(string(v)).NotTo(ContainSubstring("alice"), k)
		}
		Expect(verifyCode(oneURL, "alice@example.com", "login", otherCode(c))).To(Equal(answerFalse))
		Expect(verifyCode(oneURL, "alice@example.com", "login", c)).To(Equal(answerTrue))
		var ops []string
		for _, e := range auditEvents(lines) {
			if e.Name == s.Name {
				ops = append(ops, e.Operation+"/"+e.Outcome)
				Expect(e.Subject).To(HavePrefix("hmac-sha256:"))
			}
		}
		Expect(ops).To(Equal([]string{"code-issue/success", "code-verify/failure", "code-verify/success"}))
		Expect(lines.String()).NotTo(ContainSubstring("alice"))
		Expect(lines.String()).NotTo(ContainSubstring(c))
		Expect(serverLog.String()).NotTo(ContainSubstring(c))
	})

	It("refuses bad input with a JSON 400 naming the field, and spends no attempt", func() {
		c := issueCode(oneURL, `{"subject":"user-5"}`)
		for path, bodies := range map[string]map[string]string{
			"/app/code": {
				``:                                   "subject: required",
				`{"purpose":"login"}`:                "subject: required",
				`{"subject":"a\u0007b"}`:             "subject: must not hold control characters",
				`{"subject":"u","purpose":"Log In"}`: "purpose: want 1 to 63",
				`{"subject":"u","digits":5}`:         "digits: must be from 6 to 10",
				`{"subject":"u","digits":11}`:        "digits: must be from 6 to 10",
				`{"subject":"u","max_attempts":0}`:   "max_attempts: must be from 1 to 10",
				`{"subject":"u","max_attempts":11}`:  "max_attempts: must be from 1 to 10",
				`{"subject":"u","ttl":"2h"}`:         "ttl: must be at most 1h0m0s",
				`{"subject":"u","other":1}`:          "body: want a JSON object",
			},
			"/app/code/verify": {
				`{"subject":"user-5"}`:                 "code: required",
				`{"subject":"user-5","code":"12a456"}`: "code: want 6 to 10 digits",
				`{"subject":"user-5","code":"12345"}`:  "code: want 6 to 10 digits",
				`{"subject":"user-5","code":123456}`:   "body: want a JSON object",
				`{"code":"123456"}`:                    "subject: required",
			},
		} {
			for body, detail := range bodies {
				status, answer, _ := call(oneURL, http.MethodPost, path, body)
				Expect(status).To(Equal(http.StatusBadRequest), path+" "+body)
				Expect(answer).To(HavePrefix(`{"status_code":400,"detail":"`+detail), path+" "+body)
			}
		}
		s, err := codeSecret(one, "user-5", "")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(s.Data[otp.DataAttempts])).To(Equal("0"))
		Expect(verifyCode(oneURL, "user-5", "", c)).To(Equal(answerTrue))
	})
})

var _ = Describe("One-time codes and the failed-validation guard", func() {
	It("does not count wrong codes against the client, and counts verifications that find no live code", func() {
		stop, srv := startOperator(false, func(s *Server) { s.FailedValidationsPerSecond, s.FailedValidationsBurst = 0.001, 2 })
		DeferCleanup(stop)
		base := "http://" + srv.Listener.Addr().String()
		c := issueCode(base, `{"subject":"user-9","purpose":"login","max_attempts":10}`)
		for range 6 { // users' typos: more than the guard's burst
			Expect(verifyCode(base, "user-9", "login", otherCode(c))).To(Equal(answerFalse))
		}
		Expect(verifyCode(base, "user-9", "login", c)).To(Equal(answerTrue))
		for range 2 { // no live code: the code was spent
			Expect(verifyCode(base, "user-9", "login", c)).To(Equal(answerFalse))
		}
		status, answer, _ := call(base, http.MethodPost, "/app/code/verify", `{"subject":"nobody","code":"123456"}`)
		Expect(status).To(Equal(http.StatusTooManyRequests), answer)
	})
})

var _ = Describe("One-time codes over time", func() {
	It("limits issues per subject and purpose, expires codes and sweeps their Secrets", func(ctx SpecContext) {
		var srv *Server
		stop, base, clk := startAtFakeTime(true, func(s *Server) {
			s.CodeLimit, srv = otp.Limit{Count: 2, Window: 15 * time.Minute}, s
		})
		DeferCleanup(stop)
		issueCode(base, `{"subject":"user-6","purpose":"login"}`)
		issueCode(base, `{"subject":"user-6","purpose":"reset"}`) // a limit of its own
		c := issueCode(base, `{"subject":"user-6","purpose":"login","ttl":"2m"}`)
		req, err := http.NewRequest(http.MethodPost, base+"/app/code", strings.NewReader(`{"subject":"user-6","purpose":"login"}`))
		Expect(err).NotTo(HaveOccurred())
		resp, err := httpClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Body.Close()).To(Succeed())
		Expect(resp.StatusCode).To(Equal(http.StatusTooManyRequests))
		Expect(resp.Header.Get("Retry-After")).To(Equal("900"))

		clk.Step(2 * time.Minute)
		Expect(verifyCode(base, "user-6", "login", c)).To(Equal(answerFalse), "expired")
		clk.Step(13 * time.Minute)
		c = issueCode(base, `{"subject":"user-6","purpose":"login"}`) // a new window
		Expect(verifyCode(base, "user-6", "login", c)).To(Equal(answerTrue))

		// The sweep deletes the Secrets of dead codes once their window is over, and only those.
		sweeper := &controller.CodeSweeper{Store: srv.Store, Namespace: httpNamespace, Log: GinkgoLogr}
		issueCode(base, `{"subject":"user-7","purpose":"login"}`)
		clk.Step(15 * time.Minute)
		live := issueCode(base, `{"subject":"user-8","purpose":"login"}`)
		sweeper.Sweep(ctx)
		for subject, kept := range map[string]bool{"user-6": false, "user-7": false, "user-8": true} {
			_, err := codeSecret(srv, subject, "login")
			if kept {
				Expect(err).NotTo(HaveOccurred(), subject)
			} else {
				Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%s: %v", subject, err)
			}
		}
		Expect(verifyCode(base, "user-8", "login", live)).To(Equal(answerTrue))
	})
})

func TestParseCodeRequest(t *testing.T) {
	for body, want := range map[string]CodeIssue{
		`{"subject":"u"}`: {Subject: "u", TTL: 5 * time.Minute, Digits: 6, MaxAttempts: 5},
		`{"subject":"u","purpose":"login","ttl":"30s","digits":10,"max_attempts":1}`: {Subject: "u", Purpose: "login", TTL: 30 * time.Second,
			Digits: 10, MaxAttempts: 1},
	} {
		got, err := ParseCodeRequest(strings.NewReader(body))
		if err != nil || got != want {
			t.Errorf("ParseCodeRequest(%s) = %+v, %v; want %+v", body, got, err, want)
		}
	}
}

func FuzzParseCodeBody(f *testing.F) {
	for _, s := range []string{"", `{"subject":"u"}`, `{"subject":"u","purpose":"login","code":"123456"}`, `{"subject":"u","digits":99}`,
		`{"subject":"\u0000"}`, `{"code":"1234567890"}`, `[]`, `{"subject":"u","ttl":"9999999999h"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if req, err := ParseCodeRequest(strings.NewReader(body)); err == nil {
			if req.Subject == "" || req.Digits < otp.MinDigits || req.Digits > otp.MaxDigits || req.MaxAttempts < otp.MinAttempts ||
				req.MaxAttempts > otp.MaxAttemptsLimit || req.TTL < time.Second || req.TTL > otp.MaxTTL {
				t.Fatalf("ParseCodeRequest(%q) = %+v, out of bounds", body, req)
			}
		} else if _, ok := err.(*requestError); !ok {
			t.Fatalf("ParseCodeRequest(%q): %v is no requestError", body, err)
		}
		if v, err := ParseCodeVerifyBody(strings.NewReader(body)); err == nil {
			if v.Subject == "" || len(v.Code) < otp.MinDigits || len(v.Code) > otp.MaxDigits || strings.Trim(v.Code, "0123456789") != "" {
				t.Fatalf("ParseCodeVerifyBody(%q) = %+v, out of bounds", body, v)
			}
		} else if _, ok := err.(*requestError); !ok {
			t.Fatalf("ParseCodeVerifyBody(%q): %v is no requestError", body, err)
		}
	})
}

// postAs posts body to base+path with bearer as the caller's credential.
func postAs(base, path, bearer, body string) (int, string) {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	b := new(strings.Builder)
	_, _ = io.Copy(b, resp.Body)
	return resp.StatusCode, b.String()
}

var _ = Describe("One-time codes under --http-auth=kubernetes", func() {
	It("needs the api-codes role, and verifies a code only for the caller that issued it", func(ctx SpecContext) {
		cs, err := kubernetes.NewForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		appA, appB := serviceAccountToken(ctx, cs, "codes-app-a"), serviceAccountToken(ctx, cs, "codes-app-b")
		stranger := serviceAccountToken(ctx, cs, "codes-stranger")
		bind(ctx, "api-codes", "codes-app-a")
		bind(ctx, "api-codes", "codes-app-b")
		stop, srv := startOperator(false, func(s *Server) {
			auth, err := NewKubernetesAuth(cfg, nil)
			Expect(err).NotTo(HaveOccurred())
			s.Auth = auth
		})
		DeferCleanup(stop)
		base := "http://" + srv.Listener.Addr().String()
		body := `{"subject":"user-42","purpose":"login"}`
		status, _ := postAs(base, "/app/code", "", body)
		Expect(status).To(Equal(http.StatusUnauthorized))
		status, _ = postAs(base, "/app/code", stranger, body)
		Expect(status).To(Equal(http.StatusForbidden))

		status, answer := postAs(base, "/app/code", appA, body)
		Expect(status).To(Equal(http.StatusOK), answer)
		var got struct{ Code string }
		Expect(json.Unmarshal([]byte(answer), &got)).To(Succeed())
		verify := `{"subject":"user-42","purpose":"login","code":"` + got.Code + `"}`
		status, _ = postAs(base, "/app/code/verify", stranger, verify)
		Expect(status).To(Equal(http.StatusForbidden))
		status, answer = postAs(base, "/app/code/verify", appB, verify)
		Expect([]any{status, answer}).To(Equal([]any{http.StatusOK, answerFalse}), "another issuer's user-42")
		status, answer = postAs(base, "/app/code/verify", appA, verify)
		Expect([]any{status, answer}).To(Equal([]any{http.StatusOK, answerTrue}))
	})
})
