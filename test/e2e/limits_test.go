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
	"io"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("Issuing limits, as shipped", func() {
	It("refuses an HTTP ttl of 8760h with the default --http-max-ttl, and issues one of 24h", func() {
		for _, r := range replicas {
			resp, err := httpClient.Post(r.url()+"/app/token", "application/json", strings.NewReader(`{"ttl":"8760h"}`))
			Expect(err).NotTo(HaveOccurred())
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			Expect(err).NotTo(HaveOccurred())
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest), r.name)
			Expect(string(body)).To(Equal(`{"status_code":400,"detail":"ttl: must be at most 24h0m0s"}`), r.name)
		}
		tok := issue(replicas[0], `{"ttl":"24h"}`)
		Eventually(validate).WithArguments(replicas[1], tok).Should(Equal(answerTrue))
	})
})
