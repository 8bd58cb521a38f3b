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
	"fmt"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	webhooktoken "k8s.io/apiserver/plugin/pkg/authenticator/token/webhook"
	authenticationv1 "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationv1 "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
)

// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// KubernetesAuth admits a request whose bearer token a TokenReview accepts and whose user a
// SubjectAccessReview allows on the route's non-resource URL. It reuses k8s.io/apiserver's
// webhook token authenticator and delegating authorizer, as controller-runtime's metrics
// filter does, with caches: a TokenReview answer is kept for a minute (in a reviewCache,
// bounded, where the apiserver's delegating authenticator's cache is not), an allow for five
// minutes and a deny for thirty seconds (the authorizer's own LRU of 8192).
type KubernetesAuth struct {
	authn   authenticator.Request
	authz   authorizer.Authorizer
	reviews *reviewCache
}

// NewKubernetesAuth builds the authenticator and authorizer on cfg (and httpClient, when
// given, such as the manager's).
func NewKubernetesAuth(cfg *rest.Config, httpClient *http.Client) (*KubernetesAuth, error) {
	return newKubernetesAuth(cfg, httpClient, maxAcceptedReviews, maxRejectedReviews)
}

// newKubernetesAuth keeps at most accepted and rejected TokenReview answers.
func newKubernetesAuth(cfg *rest.Config, httpClient *http.Client, accepted, rejected int) (*KubernetesAuth, error) {
	if httpClient == nil {
		var err error
		if httpClient, err = rest.HTTPClientFor(cfg); err != nil {
			return nil, err
		}
	}
	authnClient, err := authenticationv1.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	authzClient, err := authorizationv1.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	backoff := &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 3}
	// What authenticatorfactory.DelegatingAuthenticatorConfig builds for a bearer token, with
	// the bounded cache in place of its own.
	authenticatorfactory.RegisterMetrics()
	review, err := webhooktoken.NewFromInterface(authnClient, nil, *backoff, 5*time.Second, webhooktoken.AuthenticatorMetrics{
		RecordRequestTotal:   authenticatorfactory.RecordRequestTotal,
		RecordRequestLatency: authenticatorfactory.RecordRequestLatency,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the authenticator: %w", err)
	}
	reviews := newReviewCache(review, clock.RealClock{}, time.Minute, accepted, rejected)
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: authzClient,
		AllowCacheTTL:             5 * time.Minute,
		DenyCacheTTL:              30 * time.Second,
		WebhookRetryBackoff:       backoff,
	}.New()
	if err != nil {
		return nil, fmt.Errorf("creating the authorizer: %w", err)
	}
	return &KubernetesAuth{authn: group.NewAuthenticatedGroupAdder(bearertoken.New(reviews)), authz: authz, reviews: reviews}, nil
}

// admit decides on a request to the non-resource URL path with verb. It answers the user and 0
// to let the request through, else the status code and detail to refuse it with. path is the route,
// never the request's own path: a token in a URL must not travel to the API server's audit
// log, and the cache is per path.
func (a *KubernetesAuth) admit(ctx context.Context, r *http.Request, path, verb string) (user.Info, int, string) {
	res, ok, err := a.authn.AuthenticateRequest(r)
	if err != nil || !ok {
		return nil, http.StatusUnauthorized, "a bearer token that the Kubernetes API server accepts is required"
	}
	decision, _, err := a.authz.Authorize(ctx, authorizer.AttributesRecord{User: res.User, Verb: verb, Path: path})
	if err != nil {
		return nil, http.StatusServiceUnavailable, "the Kubernetes API server could not authorize the request"
	}
	if decision != authorizer.DecisionAllow {
		return nil, http.StatusForbidden, fmt.Sprintf("%s may not %s %s", res.User.GetName(), verb, path)
	}
	return res.User, 0, ""
}

// allowed asks whether an admitted user may also use verb on the non-resource URL path (a
// second question within one request, such as verbAdmin's).
func (a *KubernetesAuth) allowed(ctx context.Context, u user.Info, path, verb string) (bool, error) {
	decision, _, err := a.authz.Authorize(ctx, authorizer.AttributesRecord{User: u, Verb: verb, Path: path})
	return decision == authorizer.DecisionAllow, err
}

// access is what a request is authorized on: a non-resource URL, and a verb ("" for the
// method's, in lower case, as for any non-resource URL; HEAD counts as get). No token ever
// travels in it.
type access struct {
	path, verb string
}

// The access of the routes that take a token. A validation is a get whatever its method:
// reading a token's validity from a body changes nothing.
var (
	accessValidate = access{path: "/app/valid/*", verb: "get"}
	accessRedeem   = access{path: "/app/redeem/*"}
	accessToken    = access{path: "/app/token/*"}
)

// guard puts h behind Auth when protected and Auth is set: a caller is authenticated and
// authorized before its request body is read. A client address whose bearer tokens keep
// failing (401) is answered 429 before its next one costs a TokenReview, at the rate of
// failed validations.
func (s *Server) guard(a access, h http.HandlerFunc, protected bool) http.HandlerFunc {
	if !protected || s.Auth == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		verb := a.verb
		if verb == "" {
			verb = strings.ToLower(r.Method)
			if r.Method == http.MethodHead {
				verb = "get"
			}
		}
		client := s.clientKey(r) // no caller yet: the address
		if s.authFailures != nil {
			if wait := s.authFailures.blocked(client, s.Clock.Now()); wait > 0 {
				writeTooManyRequests(w, wait, "too many failed authentications from this address; retry later")
				return
			}
		}
		caller, code, detail := s.Auth.admit(r.Context(), r, a.path, verb)
		if code != 0 {
			if code == http.StatusUnauthorized {
				if s.authFailures != nil {
					s.authFailures.charge(client, s.Clock.Now())
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="token-operator"`)
			}
			writeError(w, code, detail)
			return
		}
		h(w, withCaller(r, caller))
	}
}
