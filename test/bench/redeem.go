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

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// nsRedeemCeiling holds the Secrets the redeem ceiling spends; it is empty again afterwards.
const nsRedeemCeiling = "bench-redeem-ceiling"

// redeemCeiling measures client-go doing what the last use of a one-use HTTP token costs the
// operator: read the Secret from the API server, delete it with a resourceVersion
// precondition. The Secrets are created first, untimed, and are all gone afterwards.
func (b *bench) redeemCeiling(ctx context.Context, _ *operator) error {
	ns := &corev1.Namespace{}
	ns.Name = nsRedeemCeiling
	if err := b.c.Create(ctx, ns); err != nil {
		return err
	}
	secrets := make([]*corev1.Secret, b.issue)
	if _, err := fixedWork(b.issue, 16, func(i int) error {
		secrets[i] = tokenSecret(nsRedeemCeiling, time.Hour)
		return b.c.Create(ctx, secrets[i])
	}); err != nil {
		return err
	}
	logf("ceiling: client-go reads and deletes %d token Secrets at concurrency 16", b.issue)
	var err error
	b.redeemCeil, err = fixedWork(b.issue, 16, func(i int) error {
		live := &corev1.Secret{}
		if err := b.c.Get(ctx, client.ObjectKeyFromObject(secrets[i]), live); err != nil {
			return err
		}
		uid, rv := live.UID, live.ResourceVersion
		return b.c.Delete(ctx, live, client.Preconditions{UID: &uid, ResourceVersion: &rv})
	})
	return err
}

// redeem issues one-use tokens over HTTP, untimed, then redeems each once at concurrency 16:
// every answer must be true, and a second redeem of each must be false.
func (b *bench) redeem(_ context.Context, op *operator) error {
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	tokens := make([]string, b.issue)
	if _, err := fixedWork(b.issue, 16, func(i int) (err error) {
		tokens[i], err = postToken(c, op.httpURL, `{"max_uses":1}`)
		return err
	}); err != nil {
		return err
	}
	// The second redeems are failed validations: each token's holder is a client of its own,
	// as in use, so that the shipped failed-validation guard sees 128 clients, not one.
	holders := make([]*http.Client, 128)
	for i := range holders {
		t := transportFrom(fmt.Sprintf("127.0.1.%d", i+1), 1)
		defer t.CloseIdleConnections()
		holders[i] = &http.Client{Transport: t, Timeout: 30 * time.Second}
	}
	spend := func(want string) func(int) error {
		return func(i int) error {
			c := c
			if want == answerInvalid {
				c = holders[i%len(holders)]
			}
			resp, err := c.Post(op.httpURL+"/app/redeem/"+tokens[i], "application/json", nil)
			if err != nil {
				return err
			}
			defer func() { _ = resp.Body.Close() }()
			body, err := io.ReadAll(resp.Body)
			if err != nil || string(body) != want {
				return fmt.Errorf("redeem: %d %s %v, want %s", resp.StatusCode, body, err, want)
			}
			return nil
		}
	}
	logf("redeem: %d one-use tokens at concurrency 16", b.issue)
	res, err := fixedWork(b.issue, 16, spend(answerValid))
	if err != nil {
		return err
	}
	if _, err := fixedWork(b.issue, 16, spend(answerInvalid)); err != nil {
		return fmt.Errorf("second redeem: %w", err)
	}
	const s = "redeem one-use tokens, 16 conns"
	b.add(result{Scenario: s, Figure: "throughput", Value: res.perSecond, Unit: "tokens/s", Ceiling: new(b.redeemCeil.perSecond), Aim: "ratio >= 0.8"})
	b.add(result{Scenario: s, Figure: "p50", Value: ms(res.lat.percentile(50)), Unit: "ms", Ceiling: new(ms(b.redeemCeil.lat.percentile(50)))})
	b.add(result{Scenario: s, Figure: "p99", Value: ms(res.lat.percentile(99)), Unit: "ms", Ceiling: new(ms(b.redeemCeil.lat.percentile(99))), Aim: "< 100 ms"})
	return nil
}
