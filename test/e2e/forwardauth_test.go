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
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// nginxConf is the README's nginx.conf block, with the paths of a throw-away prefix: every
// location behind auth_request to GET /app/auth, the subject passed on to the service, and
// /download/ requiring the purpose "download".
const nginxConf = `worker_processes 1;
pid {{dir}}/nginx.pid;
events { worker_connections 64; }
http {
    access_log {{dir}}/access.log;
    client_body_temp_path {{dir}}/body;
    proxy_temp_path {{dir}}/proxy;
    fastcgi_temp_path {{dir}}/fastcgi;
    uwsgi_temp_path {{dir}}/uwsgi;
    scgi_temp_path {{dir}}/scgi;

    upstream token_operator { server {{operator}}; }

    server {
        listen {{listen}};

        location = /_auth {
            internal;
            proxy_pass http://token_operator/app/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-For $remote_addr;
        }
        location = /_auth_download {
            internal;
            proxy_pass http://token_operator/app/auth?purpose=download;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Forwarded-For $remote_addr;
        }

        location / {
            auth_request /_auth;
            auth_request_set $token_subject $upstream_http_x_token_subject;
            proxy_set_header X-Token-Subject $token_subject;
            proxy_pass http://{{upstream}};
        }
        location /download/ {
            auth_request /_auth_download;
            auth_request_set $token_subject $upstream_http_x_token_subject;
            proxy_set_header X-Token-Subject $token_subject;
            proxy_pass http://{{upstream}};
        }
    }
}
`

var _ = Describe("Forward auth behind nginx (auth_request)", func() {
	It("lets through valid tokens only, with their subject, and stops a revoked one", func() {
		var mu sync.Mutex
		var subjects []string
		upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			subjects = append(subjects, r.Header.Get("X-Token-Subject"))
			mu.Unlock()
			_, _ = fmt.Fprint(w, "the service's answer")
		}))
		defer upstream.Close()

		dir := GinkgoT().TempDir()
		listen := freeAddr()
		conf := strings.NewReplacer("{{dir}}", dir, "{{listen}}", listen, "{{upstream}}", strings.TrimPrefix(upstream.URL, "http://"),
			"{{operator}}", strings.TrimPrefix(replicas[0].url(), "http://")).Replace(nginxConf)
		Expect(os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o600)).To(Succeed())
		nginx := exec.Command("/usr/sbin/nginx", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf"),
			"-g", "daemon off;")
		// Its own process group, killed whole: a worker outlives a killed master otherwise.
		nginx.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		out, err := os.Create(filepath.Join(dir, "stderr.log"))
		Expect(err).NotTo(HaveOccurred())
		nginx.Stdout, nginx.Stderr = out, out
		Expect(nginx.Start()).To(Succeed())
		DeferCleanup(func() {
			_ = syscall.Kill(-nginx.Process.Pid, syscall.SIGKILL)
			_ = nginx.Wait()
			_ = out.Close()
			logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			stderr, _ := os.ReadFile(out.Name())
			AddReportEntry("nginx error.log", string(logs)+string(stderr))
		})
		get := func(path, tok string) (int, error) {
			req, err := http.NewRequest(http.MethodGet, "http://"+listen+path, nil)
			if err != nil {
				return 0, err
			}
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := httpClient.Do(req)
			if err != nil {
				return 0, err
			}
			_ = resp.Body.Close()
			return resp.StatusCode, nil
		}
		Eventually(get).WithArguments("/", "").WithTimeout(10*time.Second).Should(Equal(http.StatusUnauthorized), "nginx up, no token")

		By("refusing a wrong token")
		Expect(get("/", strings.Repeat("0", 16)+":"+strings.Repeat("A", 26))).To(Equal(http.StatusUnauthorized))

		By("letting a valid token through, with its subject passed on")
		guest := issue(replicas[0], `{"subject":"guest-42"}`)
		Expect(get("/report", guest)).To(Equal(http.StatusOK))
		mu.Lock()
		Expect(subjects).To(Equal([]string{"guest-42"}), "only the valid request reached the service")
		mu.Unlock()

		By("requiring the purpose where the location asks for one")
		Expect(get("/download/file", guest)).To(Equal(http.StatusUnauthorized), "a token without the purpose download")
		download := issue(replicas[1], `{"subject":"guest-43","purpose":"download"}`)
		Eventually(get).WithArguments("/download/file", download).Should(Equal(http.StatusOK))
		Expect(get("/report", download)).To(Equal(http.StatusUnauthorized), "a download token is no token for /")

		By("refusing the token once revoked, on the other replica")
		Expect(call(replicas[1], http.MethodDelete, "/app/token/"+guest, "", "")).To(Equal(`{"status_code":200,"status":true}`))
		Eventually(get).WithArguments("/report", guest).WithTimeout(10 * time.Second).Should(Equal(http.StatusUnauthorized))
		mu.Lock()
		Expect(subjects).To(Equal([]string{"guest-42", "guest-43"}))
		mu.Unlock()
	})
})
