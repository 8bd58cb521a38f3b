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
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// rawExchange writes request bytes on a new connection and reads every response until the
// server closes it or 3 s pass.
func rawExchange(request string) []*http.Response {
	GinkgoHelper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(apiURL, "http://"))
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = conn.Close() }()
	Expect(conn.SetDeadline(time.Now().Add(3 * time.Second))).To(Succeed())
	_, err = io.WriteString(conn, request)
	Expect(err).NotTo(HaveOccurred())
	var responses []*http.Response
	r := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return responses
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		responses = append(responses, resp)
	}
}

func bodyOf(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// stillServing checks that the API answers a normal request after a hostile one.
func stillServing() {
	GinkgoHelper()
	code, _, _ := call(apiURL, http.MethodGet, "/app/valid/x", "")
	Expect(code).To(Equal(http.StatusOK))
}

var _ = Describe("Hostile HTTP input", func() {
	AfterEach(stillServing)

	DescribeTable("answers and keeps serving",
		func(request string, wantCodes []int, wantBody string) {
			responses := rawExchange(request)
			Expect(responses).NotTo(BeEmpty())
			Expect(wantCodes).To(ContainElement(responses[0].StatusCode))
			if wantBody != "" {
				Expect(bodyOf(responses[0])).To(MatchRegexp(wantBody))
			}
		},
		Entry("oversized header (net/http answers 431 before any handler, in plain text)",
			"GET /app/valid/x HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 80<<10)+"\r\n\r\n",
			[]int{http.StatusRequestHeaderFieldsTooLarge}, ""),
		Entry("oversized URL (431 as well: the request line counts against the header limit)",
			"GET /app/valid/"+strings.Repeat("a", 80<<10)+" HTTP/1.1\r\nHost: x\r\n\r\n",
			[]int{http.StatusRequestHeaderFieldsTooLarge, http.StatusRequestURITooLong}, ""),
		Entry("HEAD on validate", "HEAD /app/valid/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			[]int{http.StatusOK}, "^$"),
		Entry("OPTIONS without CORS", "OPTIONS /app/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			[]int{http.StatusMethodNotAllowed}, `^\{"status_code":405,"detail":"Method Not Allowed"\}$`),
		Entry("TRACE", "TRACE /app/valid/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			[]int{http.StatusMethodNotAllowed}, `"status_code":405`),
		Entry("non-UTF-8 bytes in the path", "GET /app/valid/\xff\xfe\xfd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			[]int{http.StatusOK, http.StatusBadRequest}, ""),
		Entry("two Content-Lengths that disagree",
			"POST /app/token HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}",
			[]int{http.StatusBadRequest}, ""),
		Entry("deeply nested JSON", "POST /app/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4000\r\n\r\n"+
			strings.Repeat("[", 4000), []int{http.StatusBadRequest}, `"status_code":400`),
		// A 1 MiB body announced, 8 KiB of it sent: the server must answer after 4 KiB without
		// waiting for the rest (sending it all would race the server's close).
		Entry("a huge body", "POST /app/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1048576\r\n\r\n"+
			strings.Repeat("{", 8<<10), []int{http.StatusRequestEntityTooLarge}, `"status_code":413`),
	)

	It("does not let Content-Length smuggle a second request past Transfer-Encoding", func() {
		smuggled := "GET /app/clear/all/tokens HTTP/1.1\r\nHost: x\r\n\r\n"
		body := fmt.Sprintf("0\r\n\r\n%s", smuggled)
		responses := rawExchange("POST /app/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body)
		Expect(responses).NotTo(BeEmpty())
		// Either the request is refused outright, or the chunked body ends at "0" and the rest
		// is read as a request of its own: never as part of the POST's body.
		if responses[0].StatusCode != http.StatusBadRequest {
			Expect(responses[0].StatusCode).To(Equal(http.StatusOK))
			Expect(bodyOf(responses[0])).To(HavePrefix(`{"status_code":200,"token":`))
		}
	})

	It("times out a client that sends its headers too slowly", func() {
		conn, err := net.Dial("tcp", strings.TrimPrefix(apiURL, "http://"))
		Expect(err).NotTo(HaveOccurred())
		defer func() { _ = conn.Close() }()
		_, err = io.WriteString(conn, "GET /app/valid/x HTTP/1.1\r\nHost: x\r\n")
		Expect(err).NotTo(HaveOccurred())
		// No blank line: the server closes the connection after ReadHeaderTimeout (5 s).
		Expect(conn.SetReadDeadline(time.Now().Add(15 * time.Second))).To(Succeed())
		start := time.Now()
		_, err = io.ReadAll(conn)
		Expect(err).NotTo(HaveOccurred(), "the server, not our deadline, ends the connection")
		Expect(time.Since(start)).To(BeNumerically("<", 10*time.Second))
	})

	It("keeps serving with 1000 idle connections open", func() {
		conns := make([]net.Conn, 0, 1000)
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for range 1000 {
			c, err := net.Dial("tcp", strings.TrimPrefix(apiURL, "http://"))
			Expect(err).NotTo(HaveOccurred())
			conns = append(conns, c)
		}
		for range 20 {
			stillServing()
		}
	})
})
