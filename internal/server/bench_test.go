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
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/token"
)

// BenchmarkValidateHandler measures the whole validate path of one request, routing to
// answer, over an indexed fake client standing in for the cache.
func BenchmarkValidateHandler(b *testing.B) {
	srv, stored, _ := cachedServer()
	h := srv.Handler()
	for _, tc := range []struct{ name, tok, want string }{
		{"valid", stored.String(), string(answerValid)},
		{"unknown", token.Generate().String(), string(answerInvalid)},
		{"malformed", "not-a-token", string(answerInvalid)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req, _ := http.NewRequest(http.MethodGet, "http://x/app/valid/"+tc.tok, nil)
			rec := newRecorder()
			b.ReportAllocs()
			for b.Loop() {
				rec.body.Reset()
				h.ServeHTTP(rec, req)
			}
			if rec.body.String() != tc.want {
				b.Fatalf("answer %q, want %q", rec.body.String(), tc.want)
			}
		})
	}
}

// BenchmarkListHandler measures one GET /app/tokens?limit=100 over an index of 100 000
// token Secrets, from the start and from a continue token in the middle.
func BenchmarkListHandler(b *testing.B) {
	srv, _, _ := cachedServer()
	for i := range 100_000 {
		issued := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(time.Now(), time.Hour), Source: token.SourceHTTP}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns-%02d", i%100),
			Name: token.HTTPSecretName(issued.ID), UID: types.UID(strconv.Itoa(i))}}
		issued.ApplyTo(s)
		srv.Tokens.Put(s)
	}
	h := srv.Handler()
	middle := encodeContinue(index.Position{Namespace: "ns-50", Name: "token-"})
	for _, tc := range []struct{ name, query string }{
		{"first-page", "?limit=100"},
		{"middle-page", "?limit=100&continue=" + middle},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req, _ := http.NewRequest(http.MethodGet, "http://x/app/tokens"+tc.query, nil)
			rec := newRecorder()
			b.ReportAllocs()
			for b.Loop() {
				rec.body.Reset()
				h.ServeHTTP(rec, req)
			}
			if rec.code != http.StatusOK || !strings.Contains(rec.body.String(), `"continue":"`) {
				b.Fatalf("answer %d %.200s", rec.code, rec.body.String())
			}
		})
	}
}
