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
	"fmt"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/tokenops/token-operator/api/v1alpha1"
	"github.com/tokenops/token-operator/internal/token"
)

var _ = Describe("The operator's memory", func() {
	It("keeps only digests of tokens in its index, and validates against them", func(ctx SpecContext) {
		stop, srv := startOperator(false, nil)
		defer stop()
		base := "http://" + srv.Listener.Addr().String()
		issued := []string{issue(base, ""), issue(apiURL, `{"ttl":"5m"}`)}

		issued = append(issued, createTokenRequest(ctx, &tokensv1alpha1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "mem"}}))
		for _, tok := range issued {
			Eventually(valid).WithArguments(base, tok).Should(Equal(answerTrue))
		}

		for _, tok := range issued {
			parsed, _ := token.Parse(tok)
			id, _ := token.ParseID(parsed.ID)
			rec := srv.Tokens.ByID(id)
			Expect(rec).NotTo(BeNil())
			dump := fmt.Sprintf("%+v %s", *rec, rec.Current.Digest[:])
			Expect(dump).NotTo(ContainSubstring(parsed.Secret))
			Expect(rec.Current.Digest).To(Equal(token.DigestOf(tok)))
		}
		code, _, _ := call(base, http.MethodGet, "/app/valid/"+issued[0], "")
		Expect(code).To(Equal(http.StatusOK))
	})
})
