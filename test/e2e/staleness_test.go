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
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/tools/clientcmd"
)

// relay is a TCP relay between a replica and the API server that a spec can cut, as a network
// partition would: cut closes the listener and every connection; restore listens again on the
// same address.
type relay struct {
	addr, target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func newRelay(target string) *relay {
	GinkgoHelper()
	r := &relay{addr: freeAddr(), target: target, conns: map[net.Conn]struct{}{}}
	r.restore()
	return r
}

func (r *relay) restore() {
	GinkgoHelper()
	ln, err := net.Listen("tcp", r.addr)
	Expect(err).NotTo(HaveOccurred())
	r.mu.Lock()
	r.ln = ln
	r.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", r.target)
			if err != nil {
				_ = in.Close()
				continue
			}
			r.mu.Lock()
			r.conns[in], r.conns[out] = struct{}{}, struct{}{}
			r.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
}

func (r *relay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.ln.Close()
	for c := range r.conns {
		_ = c.Close()
	}
	r.conns = map[net.Conn]struct{}{}
}

// status is the HTTP status of GET url (0 when the request fails).
func status(u string) int {
	resp, err := httpClient.Get(u)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

var _ = Describe("A replica cut off from the API server", func() {
	It("answers 503, never true, within --max-staleness, turns unready, and recovers by itself", func() {
		By("starting a third replica whose only way to the API server is a relay (it cannot lead: the others hold the Lease)")
		cfg, err := clientcmd.LoadFromFile(operatorKubeconfig)
		Expect(err).NotTo(HaveOccurred())
		var target string
		for _, c := range cfg.Clusters {
			u, err := url.Parse(c.Server)
			Expect(err).NotTo(HaveOccurred())
			target = u.Host
		}
		relay := newRelay(target)
		for _, c := range cfg.Clusters {
			c.Server = "https://" + relay.addr
		}
		path := filepath.Join(workDir, "relayed.kubeconfig")
		Expect(clientcmd.WriteToFile(*cfg, path)).To(Succeed())
		cutOff := newReplica("replica-relayed")
		cutOff.kubeconfig = path
		cutOff.start()
		DeferCleanup(cutOff.stop)
		cutOff.waitReady()
		other := replicas[0]

		revoked, spent, kept := issue(other, ""), issue(other, `{"max_uses":1}`), issue(other, "")
		for _, tok := range []string{revoked, spent, kept} {
			Eventually(validate).WithArguments(cutOff, tok).Should(Equal(answerTrue))
		}
		Expect(cutOff.metric("tokenoperator_index_staleness_seconds")).To(BeNumerically("<", 10))

		By("cutting the relay, then revoking and spending tokens on another replica")
		relay.cut()
		cutAt := time.Now()
		call(other, http.MethodDelete, "/app/token", `{"token":"`+revoked+`"}`, "")
		Expect(redeem(other, spent)).To(Equal(answerTrue))
		Expect(validate(other, revoked)).To(Equal(answerFalse))

		var answered503 time.Duration
		Eventually(func() int {
			return status(cutOff.url() + "/app/valid/" + revoked)
		}).WithTimeout(45*time.Second).WithPolling(250*time.Millisecond).Should(Equal(http.StatusServiceUnavailable),
			"the cut-off replica stops answering from its old view")
		answered503 = time.Since(cutAt)
		Expect(answered503).To(BeNumerically("<=", 30*time.Second+5*time.Second), "within the default --max-staleness, plus one poll")
		resp, err := httpClient.Get(cutOff.url() + "/app/valid/" + kept)
		Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusServiceUnavailable), "it cannot know, whatever the token")
		Expect(resp.Header.Get("Retry-After")).NotTo(BeEmpty())
		resp, err = httpClient.Post(cutOff.url()+"/app/redeem/"+spent, "application/json", nil)
		Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusServiceUnavailable), "nor redeem")
		Expect(status("http://"+cutOff.probeAddr+"/readyz")).To(Equal(http.StatusInternalServerError), "not ready: Services route around it")
		Expect(cutOff.metric("tokenoperator_index_staleness_seconds")).To(BeNumerically(">", 30))
		AddReportEntry("cut-off replica", "first 503 "+answered503.Round(time.Second).String()+" after the cut (--max-staleness 30s)")

		By("restoring the relay: it catches up by itself and answers the current state")
		relay.restore()
		DeferCleanup(relay.cut)
		Eventually(status).WithArguments("http://" + cutOff.probeAddr + "/readyz").WithTimeout(time.Minute).Should(Equal(http.StatusOK))
		Expect(validate(cutOff, revoked)).To(Equal(answerFalse))
		Expect(validate(cutOff, spent)).To(Equal(answerFalse))
		Expect(validate(cutOff, kept)).To(Equal(answerTrue))
		Eventually(validate).WithArguments(cutOff, issue(other, "")).Should(Equal(answerTrue))
	})
})
