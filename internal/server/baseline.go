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
	"errors"
	"net"
	"net/http"
	"time"
)

// Baseline serves a bare net/http handler that writes the bytes of a valid answer and does
// nothing else: the ceiling the benchmark measures the validate path against, in the same
// process and so on the same cores. It is off unless --http-baseline-bind-address is set.
type Baseline struct {
	Addr string
}

// NeedLeaderElection is false: the baseline runs beside the API on every replica.
func (b *Baseline) NeedLeaderElection() bool { return false }

// Start serves until ctx ends.
func (b *Baseline) Start(ctx context.Context) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", b.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeBody(w, http.StatusOK, answerValid)
	})}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
