//go:build e2e

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

package e2e

import (
	"encoding/json"
	"net/http"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokenops/token-operator/internal/otp"
	"github.com/tokenops/token-operator/internal/provenance"
	"github.com/tokenops/token-operator/internal/token"
)

// issueCode POSTs /app/code to a replica and returns the code.
func issueCode(r *replica, body string) string {
	GinkgoHelper()
	var answer struct {
		StatusCode int    `json:"status_code"`
		Code       string `json:"code"`
	}
	Expect(json.Unmarshal([]byte(call(r, http.MethodPost, "/app/code", body, "")), &answer)).To(Succeed())
	Expect(answer.Code).To(MatchRegexp(`^[0-9]{6,10}$`))
	return answer.Code
}

// verifyCode POSTs /app/code/verify to a replica and returns its exact answer.
func verifyCode(r *replica, subject, purpose, code string) string {
	GinkgoHelper()
	b, err := json.Marshal(map[string]string{"subject": subject, "purpose": purpose, "code": code})
	Expect(err).NotTo(HaveOccurred())
	return call(r, http.MethodPost, "/app/code/verify", string(b), "")
}

// anotherCode is a code of c's length other than c.
func anotherCode(c string) string {
	if c[0] == '9' {
		return "0" + c[1:]
	}
	return string(c[0]+1) + c[1:]
}

var _ = Describe("One-time codes on two replicas", func() {
	const answerTrue, answerFalse = `{"status_code":200,"status":true}`, `{"status_code":200,"status":false}`
	var keys *provenance.Keyring
	BeforeEach(func(ctx SpecContext) {
		keySecret := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: "default", Name: provenance.DefaultKeySecretName}, keySecret)).To(Succeed())
		var err error
		keys, err = provenance.KeyringOf(keySecret)
		Expect(err).NotTo(HaveOccurred())
	})
	// codeSecret reads the Secret of the anonymous caller's code for subject and purpose.
	codeSecret := func(ctx SpecContext, subject, purpose string) *corev1.Secret {
		GinkgoHelper()
		s := &corev1.Secret{}
		name := otp.SecretName(keys.CodeName(token.IssuerAnonymous, subject, purpose))
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, s)).To(Succeed())
		return s
	}

	It("spends exactly one attempt for each of 5 wrong codes sent at once to both replicas, then refuses the right code", func(ctx SpecContext) {
		subject := "user-" + rand.String(12)
		c := issueCode(replicas[0], `{"subject":"`+subject+`","purpose":"login","max_attempts":5}`)
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() {
				defer GinkgoRecover()
				Expect(verifyCode(replicas[i%2], subject, "login", anotherCode(c))).To(Equal(answerFalse))
			})
		}
		wg.Wait()
		Expect(codeSecret(ctx, subject, "login").Data).To(HaveKeyWithValue(otp.DataAttempts, []byte("5")))
		for _, r := range replicas {
			Expect(verifyCode(r, subject, "login", c)).To(Equal(answerFalse), r.name)
		}
	})

	It("verifies a right code once, whichever replica is asked, and never again", func() {
		subject := "user-" + rand.String(12)
		c := issueCode(replicas[1], `{"subject":"`+subject+`","purpose":"login"}`)
		Expect(verifyCode(replicas[0], subject, "login", c)).To(Equal(answerTrue))
		for _, r := range replicas {
			Expect(verifyCode(r, subject, "login", c)).To(Equal(answerFalse), r.name)
		}
	})

	It("makes the first code fail once a second is issued for the same subject and purpose", func() {
		subject := "user-" + rand.String(12)
		first := issueCode(replicas[0], `{"subject":"`+subject+`","purpose":"login","digits":8}`)
		second := issueCode(replicas[1], `{"subject":"`+subject+`","purpose":"login","digits":8}`)
		Expect(second).NotTo(Equal(first)) // one chance in 10^8
		Expect(verifyCode(replicas[1], subject, "login", first)).To(Equal(answerFalse))
		Expect(verifyCode(replicas[0], subject, "login", second)).To(Equal(answerTrue))
	})

	It("keeps neither the code nor the subject in plaintext in its Secret", func(ctx SpecContext) {
		subject := "alice-" + rand.String(12) + "@example.com"
		c := issueCode(replicas[0], `{"subject":"`+subject+`","purpose":"login","digits":10}`)
		s := codeSecret(ctx, subject, "login")
		Expect(s.Type).To(Equal(otp.SecretType))
		raw, err := json.Marshal(s)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(raw)).NotTo(ContainSubstring(c))
		Expect(string(raw)).NotTo(ContainSubstring(subject))
		for k, v := range s.Data {
			Expect(string(v)).NotTo(ContainSubstring(c), k)
			Expect(string(v)).NotTo(ContainSubstring(subject), k)
		}
		for _, r := range replicas {
			Expect(r.logs()).NotTo(ContainSubstring(c), r.name)
			Expect(r.logs()).NotTo(ContainSubstring(subject), r.name)
		}
		Expect(verifyCode(replicas[1], subject, "login", c)).To(Equal(answerTrue))
	})
})
