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
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/token"
)

// serviceAccountToken creates a service account and returns a token for it, as kubectl
// create token does.
func serviceAccountToken(ctx SpecContext, cs *kubernetes.Clientset, name string) string {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: httpNamespace, Name: name}}
	Expect(k8sClient.Create(ctx, sa)).To(Succeed())
	tr, err := cs.CoreV1().ServiceAccounts(httpNamespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	return tr.Status.Token
}

// bind binds the shipped ClusterRole (config/rbac/api_client_role.yaml) to a service account.
func bind(ctx SpecContext, role, sa string) {
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "api_client_role.yaml"))
	Expect(err).NotTo(HaveOccurred())
	for doc := range strings.SplitSeq(string(data), "\n---\n") {
		cr := &rbacv1.ClusterRole{}
		Expect(yaml.Unmarshal([]byte(doc), cr)).To(Succeed())
		if cr.Name != role {
			continue
		}
		cr.Name = httpNamespace + "-" + role
		if err := k8sClient.Create(ctx, cr); !apierrors.IsAlreadyExists(err) {
			Expect(err).NotTo(HaveOccurred())
		}
		Expect(k8sClient.Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: httpNamespace + "-" + sa + "-" + role},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: httpNamespace}},
		})).To(Succeed())
		return
	}
	Fail("no ClusterRole " + role + " in config/rbac/api_client_role.yaml")
}

// serviceAccountUser is the user name of a service account in httpNamespace.
func serviceAccountUser(sa string) string { return "system:serviceaccount:" + httpNamespace + ":" + sa }

// withBearer sends a request with a bearer token ("" for none) and answers its status and body.
func withBearer(method, url, bearer string) (int, string) {
	req, err := http.NewRequest(method, url, nil)
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

var _ = Describe("--http-auth=kubernetes", Ordered, func() {
	var (
		base                          string
		stop                          func()
		allowed, clientOnly, stranger string
	)

	auditLines := &lockedBuffer{}
	BeforeAll(func(ctx SpecContext) {
		cs, err := kubernetes.NewForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		allowed = serviceAccountToken(ctx, cs, "admin-app")
		clientOnly = serviceAccountToken(ctx, cs, "client-app")
		stranger = serviceAccountToken(ctx, cs, "stranger")
		bind(ctx, "api-admin", "admin-app")
		bind(ctx, "api-client", "client-app")

		var srv *Server
		stop, srv = startOperator(false, func(s *Server) {
			auth, err := NewKubernetesAuth(cfg, nil)
			Expect(err).NotTo(HaveOccurred())
			s.Auth = auth
			s.Audit = audit.New(auditLines)
		})
		base = "http://" + srv.Listener.Addr().String()
	})
	AfterAll(func() { stop() })

	ask := func(method, path, bearer string) (int, string) { return withBearer(method, base+path, bearer) }

	It("answers 401 without a token or with one the API server rejects", func() {
		code, body := ask(http.MethodPost, "/app/token", "")
		Expect(code).To(Equal(http.StatusUnauthorized))
		Expect(body).To(HavePrefix(`{"status_code":401,"detail":`))
		code, _ = ask(http.MethodPost, "/app/token", "not-a-kubernetes-token")
		Expect(code).To(Equal(http.StatusUnauthorized))
		code, _ = ask(http.MethodDelete, "/app/clear/all/tokens", "")
		Expect(code).To(Equal(http.StatusUnauthorized))
	})

	It("keeps the documentation readable without a token: it holds no data", func() {
		for _, path := range []string{"/docs", "/redoc", "/openapi.json", "/docs/swagger-ui.css"} {
			code, _ := ask(http.MethodGet, path, "")
			Expect(code).To(Equal(http.StatusOK), path)
		}
		code, _ := ask(http.MethodGet, "/app/tokens", "")
		Expect(code).To(Equal(http.StatusUnauthorized), "the listing is data")
	})

	It("answers 403 to a user RBAC does not allow", func() {
		code, body := ask(http.MethodPost, "/app/token", stranger)
		Expect(code).To(Equal(http.StatusForbidden))
		Expect(body).To(ContainSubstring(`"status_code":403`))
		code, _ = ask(http.MethodDelete, "/app/clear/all/tokens", clientOnly)
		Expect(code).To(Equal(http.StatusForbidden))
	})

	It("lets the shipped ClusterRoles through", func() {
		code, body := ask(http.MethodPost, "/app/token", clientOnly)
		Expect(code).To(Equal(http.StatusOK), body)
		tok := tokenAnswer.FindStringSubmatch(body)[1]
		parsed, _ := token.Parse(tok)
		Expect(auditEvents(auditLines)).To(ContainElement(And(
			HaveField("Operation", audit.OpIssue), HaveField("TokenID", parsed.ID),
			HaveField("User", serviceAccountUser("client-app")),
			HaveField("Groups", ContainElement("system:serviceaccounts")))), "the audit line names the caller")
		code, _ = ask(http.MethodDelete, "/app/clear/all/tokens", allowed)
		Expect(code).To(Equal(http.StatusOK))

		By("leaving validation open unless --http-auth-validate")
		code, body = ask(http.MethodGet, "/app/valid/"+tok, "")
		Expect(code).To(Equal(http.StatusOK))
		Expect(body).To(Equal(answerTrue))
	})

	It("guards validation with --http-auth-validate, without sending the token to the API server", func() {
		stopGuarded, srv := startOperator(false, func(s *Server) {
			auth, err := NewKubernetesAuth(cfg, nil)
			Expect(err).NotTo(HaveOccurred())
			s.Auth, s.AuthValidate = auth, true
		})
		defer stopGuarded()
		guarded := "http://" + srv.Listener.Addr().String()
		tok := issue(apiURL, "")
		for _, tc := range []struct {
			bearer string
			code   int
		}{{"", 401}, {stranger, 403}, {clientOnly, 200}} {
			req, _ := http.NewRequest(http.MethodGet, guarded+"/app/valid/"+tok, nil)
			if tc.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tc.bearer)
			}
			resp, err := httpClient.Do(req)
			Expect(err).NotTo(HaveOccurred())
			_ = resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(tc.code))
		}
	})
})
