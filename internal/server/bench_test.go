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
	"net/http"
	"testing"

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
