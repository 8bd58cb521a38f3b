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

package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	// TokensIssued counts tokens written into Secrets, by what issued them.
	TokensIssued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenoperator_tokens_issued_total",
		Help: "Tokens written into Secrets, by source (tokenrequest, http).",
	}, []string{"source"})

	// ExpiredDeleted counts token Secrets the expiry controller deleted.
	ExpiredDeleted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tokenoperator_expired_deleted_total",
		Help: "Token Secrets deleted because their token expired.",
	})
)

func init() {
	metrics.Registry.MustRegister(TokensIssued, ExpiredDeleted)
}
