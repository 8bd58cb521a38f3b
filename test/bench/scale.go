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
	"os"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/tokenops/token-operator/internal/server"
	"github.com/tokenops/token-operator/internal/token"
)

// nsExpiryCeiling holds the Secrets whose deletion by client-go is the expiry ceiling.
const nsExpiryCeiling = "bench-expiry-ceiling"

// shippedMemoryLimit reads the manager container's memory limit from the shipped manifest,
// in bytes: the operator runs in the bench with GOMEMLIMIT set to it, as config/default sets
// it in a cluster.
func shippedMemoryLimit(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for doc := range strings.SplitSeq(string(data), "\n---\n") {
		d := &appsv1.Deployment{}
		if err := yaml.Unmarshal([]byte(doc), d); err != nil || d.Kind != "Deployment" {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == "manager" {
				if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
					return q.Value(), nil
				}
			}
		}
	}
	return 0, fmt.Errorf("%s: no memory limit on the manager container", path)
}

// tokenCount counts the tokens issued over HTTP in --http-namespace (what
// --http-max-live-tokens caps: the ceilings' unsealed Secrets elsewhere are refused): a token
// Secret of its own counts one, a token slice its records.
func (b *bench) tokenCount(ctx context.Context) (int, error) {
	list := &corev1.SecretList{}
	if err := b.c.List(ctx, list, client.InNamespace(nsHTTP), client.MatchingLabels{token.LabelManagedBy: token.ManagedBy,
		token.LabelSource: string(token.SourceHTTP)}); err != nil {
		return 0, err
	}
	n := 0
	for i := range list.Items {
		if token.IsSliceSecret(&list.Items[i]) {
			n += len(list.Items[i].Data)
		} else if token.IsTokenSecret(&list.Items[i]) {
			n++
		}
	}
	return n, nil
}

// scenarioLiveTokens fills the cluster with live HTTP tokens through the real issue path
// (POST /app/token at 64 connections to an operator without issuing limits: token slices, the
// shipped layout), then restarts the operator over them at
// each size: memory, start-up and peak, and at the largest size the issuing cap, validation
// throughput, the control plane's cost and a mass expiry. The operator runs as shipped; the
// largest size of a full run is the default --http-max-live-tokens, so its memory is the
// memory at the default cap (a quick run sets the cap to its largest size).
func (b *bench) scenarioLiveTokens(ctx context.Context) error {
	have, err := b.tokenCount(ctx)
	if err != nil {
		return err
	}
	etcdBefore, err := b.cluster.EtcdDBBytes()
	if err != nil {
		return err
	}
	heapBefore, err := b.cluster.APIServerLiveHeap(ctx, "")
	if err != nil {
		return err
	}
	added := 0
	var keep string // one live token, to validate at the largest size
	for i, n := range b.liveTokens {
		missing := max(n-have, 0)
		logf("live tokens: issuing %d tokens over HTTP beside the %d present, then restarting the operator", missing, have)
		if keep, err = b.fillOverHTTP(missing, have, keep); err != nil {
			return err
		}
		have, added = have+missing, added+missing
		largest := i == len(b.liveTokens)-1
		var flags []string
		if largest && n != server.DefaultMaxLiveTokens {
			flags = append(flags, fmt.Sprintf("--http-max-live-tokens=%d", n))
		}
		op, err := b.startOperator(flags...)
		if err != nil {
			return err
		}
		if err := b.measureLive(op, have, largest); err != nil {
			op.stop()
			return err
		}
		if !largest {
			op.stop()
			continue
		}
		defer op.stop()
		if err := b.issueAtCap(op, have); err != nil {
			return err
		}
		if err := b.validateAt(op, have, keep); err != nil {
			return err
		}
		if err := b.controlPlaneCost(ctx, have, added, etcdBefore, heapBefore); err != nil {
			return err
		}
		return b.massExpiry(ctx, op, have)
	}
	return nil
}

// purposes are the few purposes typical tokens share.
var purposes = [...]string{"password-reset", "email-verification", "login", "api-key", "guest"}

// typical is the body of POST /app/token of the i-th live token, what typical ones carry: a
// 20-byte subject and one of 5 purposes, issued anonymously (as without --http-auth), no
// metadata, for 2 hours.
func typical(i int) string {
	return fmt.Sprintf(`{"ttl":"2h","subject":"user-%015d","purpose":%q}`, i, purposes[i%len(purposes)])
}

// fillOverHTTP issues n typical tokens (numbered from first) through an operator of their
// own, without issuing limits, at 64 connections, and reports the fill rate; keep is the one
// token validateAt asks about, issued plain (as the original contract's are) if not yet.
func (b *bench) fillOverHTTP(n, first int, keep string) (string, error) {
	if n == 0 {
		return keep, nil
	}
	filler, err := b.startOperator("--http-issue-rate=0", "--http-max-live-tokens=0")
	if err != nil {
		return "", err
	}
	defer filler.stop()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: time.Minute}
	defer c.CloseIdleConnections()
	if keep == "" {
		if keep, err = postToken(c, filler.httpURL, `{"ttl":"2h"}`); err != nil {
			return "", err
		}
		n--
	}
	res, err := fixedWork(n, 64, func(j int) error {
		_, err := postToken(c, filler.httpURL, typical(first+j))
		return err
	})
	if err != nil {
		return "", err
	}
	b.add(result{Scenario: fmt.Sprintf("fill %d live tokens over HTTP, 64 conns", first+n+1), Figure: "throughput",
		Value: res.perSecond, Unit: "tokens/s"})
	return keep, nil
}

// measureLive reports the operator's memory and start-up over n live tokens.
func (b *bench) measureLive(op *operator, n int, largest bool) error {
	peak, err := op.statusMiB("VmHWM")
	if err != nil {
		return err
	}
	if err := op.settle(2 * time.Minute); err != nil {
		return err
	}
	// The heap after a collection: what the index holds, not the start-up list's garbage.
	if err := op.heapProfile(filepath.Join(filepath.Dir(b.out), fmt.Sprintf("heap-%d.pprof", n))); err != nil {
		return err
	}
	heap, err := op.heapMiB()
	if err != nil {
		return err
	}
	rss, err := op.statusMiB("VmRSS")
	if err != nil {
		return err
	}
	limit := float64(b.memoryLimit) / (1 << 20)
	s := fmt.Sprintf("%d live tokens", n)
	rssAim, readyAim, heapAim := "< 100 MiB", "< 3 s", ""
	switch {
	case largest && n >= 1000000:
		rssAim, readyAim, heapAim = "ratio < 1 (the shipped limit)", "<= 30 s", "<= 200 B (issue 23)"
	case largest && n >= 100000:
		rssAim, readyAim = "<= 200 MiB", "<= 20 s"
	}
	rssCeiling := b.emptyRSS
	if largest && n >= 1000000 {
		rssCeiling = limit
	}
	b.add(result{Scenario: s, Figure: "RSS", Value: rss, Unit: "MiB", Ceiling: new(rssCeiling), Aim: rssAim})
	b.add(result{Scenario: s, Figure: "Go heap after GC", Value: heap, Unit: "MiB", Ceiling: new(b.emptyHeap)})
	b.add(result{Scenario: s, Figure: "Go heap per token", Value: heap * (1 << 20) / float64(n), Unit: "B", Aim: heapAim})
	b.add(result{Scenario: s, Figure: "start to ready", Value: op.ready.Seconds(), Unit: "s", Ceiling: new(b.emptyReady.Seconds()), Aim: readyAim})
	b.add(result{Scenario: s, Figure: "peak RSS (VmHWM) from start", Value: peak, Unit: "MiB", Ceiling: new(limit),
		Aim: "ratio < 1 (the shipped limit)"})
	if n >= server.DefaultMaxLiveTokens {
		// The default cap must leave the shipped limit a third of headroom (the sizing rule:
		// limit = 1.5 x RSS) for TokenRequests' tokens, requests and a relist.
		atCap := fmt.Sprintf("%d live tokens, the default --http-max-live-tokens", n)
		b.add(result{Scenario: atCap, Figure: "RSS against the shipped limit", Value: rss, Unit: "MiB", Ceiling: new(limit),
			Aim: "ratio <= 0.67"})
		b.add(result{Scenario: atCap, Figure: "peak RSS against the shipped limit", Value: peak, Unit: "MiB", Ceiling: new(limit),
			Aim: "ratio <= 0.67"})
	}
	return nil
}

// issueAtCap checks that the operator, holding n live HTTP tokens at its cap, refuses to
// issue one more with 507 naming the cap.
func (b *bench) issueAtCap(op *operator, n int) error {
	resp, err := http.Post(op.httpURL+"/app/token", "application/json", nil)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusInsufficientStorage || !strings.Contains(string(body), "--http-max-live-tokens") {
		return fmt.Errorf("POST /app/token at the cap of %d live tokens: %d %s, want 507 naming the cap", n, resp.StatusCode, body)
	}
	b.add(result{Scenario: fmt.Sprintf("%d live tokens", n), Figure: "POST /app/token at the cap", Value: float64(resp.StatusCode),
		Unit: "status", Aim: "507"})
	return nil
}

// validateAt measures validation of one of n live tokens beside the bare handler.
func (b *bench) validateAt(op *operator, n int, tok string) error {
	logf("validate at %d live tokens: 64 connections, %s each", n, b.loadFor)
	closedLoop(op.baselineURL+"/", []byte(answerValid), 64, b.loadFor/4)
	closedLoop(op.httpURL+"/app/valid/"+tok, []byte(answerValid), 64, b.loadFor/4)
	ceiling := closedLoop(op.baselineURL+"/", []byte(answerValid), 64, b.loadFor)
	valid := closedLoop(op.httpURL+"/app/valid/"+tok, []byte(answerValid), 64, b.loadFor)
	if valid.errors+ceiling.errors > 0 {
		return fmt.Errorf("validate at %d tokens: %d and %d bad answers", n, valid.errors, ceiling.errors)
	}
	s := fmt.Sprintf("validate at %d live tokens, 64 conns", n)
	b.add(result{Scenario: s, Figure: "throughput", Value: valid.perSecond, Unit: "req/s", Ceiling: new(ceiling.perSecond), Aim: "ratio >= 0.9 (issue 23)"})
	b.add(result{Scenario: s, Figure: "p99", Value: ms(valid.lat.percentile(99)), Unit: "ms", Ceiling: new(ms(ceiling.lat.percentile(99)))})
	return nil
}

// controlPlaneCost reports kube-apiserver's memory and etcd's database growth with n live
// tokens, added of them written by this scenario (from etcdBefore and heapBefore).
func (b *bench) controlPlaneCost(ctx context.Context, n, added int, etcdBefore, heapBefore int64) error {
	pid, err := b.cluster.APIServerPID()
	if err != nil {
		return err
	}
	apiRSS, err := statusMiB(pid, "VmRSS")
	if err != nil {
		return err
	}
	etcdAfter, err := b.cluster.EtcdDBBytes()
	if err != nil {
		return err
	}
	heapAfter, err := b.cluster.APIServerLiveHeap(ctx, filepath.Join(filepath.Dir(b.out), fmt.Sprintf("apiserver-heap-%d.pprof", n)))
	if err != nil {
		return err
	}
	s := fmt.Sprintf("%d live tokens", n)
	b.add(result{Scenario: s, Figure: "kube-apiserver RSS", Value: apiRSS, Unit: "MiB"})
	if added > 0 {
		b.add(result{Scenario: s, Figure: "etcd db growth per token", Value: float64(etcdAfter-etcdBefore) / float64(added), Unit: "B"})
		b.add(result{Scenario: s, Figure: "kube-apiserver live heap growth per token", Value: float64(heapAfter-heapBefore) / float64(added),
			Unit: "B", Aim: "<= 500 B"})
		b.add(result{Scenario: s, Figure: "kube-apiserver RSS per token", Value: apiRSS * (1 << 20) / float64(n), Unit: "B"})
	}
	return nil
}

// massExpiry lets b.expiring tokens issued over HTTP expire in one expiry window among n
// live ones, in token slices as the HTTP API writes them (client-go creates of sealed slices,
// 100 tokens each), and compares how fast the operator removes them with client-go deleting
// token Secrets of their own (today's per-token deletes, at most 10 000 of them: a rate), with
// UID preconditions, at the operator's default --expiry-workers (32).
func (b *bench) massExpiry(ctx context.Context, op *operator, n int) error {
	const workers = 32
	perToken := min(b.expiring, 10000)
	logf("ceiling: client-go deletes %d token Secrets with UID preconditions at concurrency %d", perToken, workers)
	victims := make([]*corev1.Secret, perToken)
	if _, err := fixedWork(perToken, 64, func(i int) error {
		victims[i] = tokenSecret(nsExpiryCeiling, 2*time.Hour)
		return b.c.Create(ctx, victims[i])
	}); err != nil {
		return err
	}
	ceiling, err := fixedWork(perToken, workers, func(i int) error {
		uid := victims[i].UID
		return b.c.Delete(ctx, victims[i], client.Preconditions{UID: &uid})
	})
	if err != nil {
		return err
	}

	logf("expiry: %d tokens in slices expiring in one window among %d", b.expiring, n)
	before, err := op.metricSum("tokenoperator_expired_deleted_total")
	if err != nil {
		return err
	}
	lead := 10*time.Second + time.Duration(b.expiring)*100*time.Microsecond
	expiresAt := time.Now().Add(lead).Truncate(time.Second)
	window := token.WindowOf(expiresAt.Unix())
	end := time.Unix(token.SliceExpiresAt(window), 0)
	slices := (b.expiring + token.SliceCapacity - 1) / token.SliceCapacity
	if _, err := fixedWork(slices, 64, func(i int) error {
		return b.c.Create(ctx, expiringSlice(token.SliceName("bench", window, i), window, expiresAt, min(token.SliceCapacity, b.expiring-i*token.SliceCapacity)))
	}); err != nil {
		return err
	}
	if time.Now().After(expiresAt) {
		return fmt.Errorf("creating the expiring slices took longer than %s", lead)
	}
	half, most, last, err := b.deletedAfter(op, before, end)
	if err != nil {
		return err
	}
	s := fmt.Sprintf("%d tokens in slices expiring in one window, among %d", b.expiring, n)
	b.add(result{Scenario: s, Figure: "delete rate", Value: float64(b.expiring) / last.Seconds(), Unit: "tokens/s",
		Ceiling: new(ceiling.perSecond), Aim: "ratio >= 4 (token slices)"})
	b.add(result{Scenario: s, Figure: "half deleted after the window's end", Value: ms(half), Unit: "ms"})
	b.add(result{Scenario: s, Figure: "99 % deleted after the window's end", Value: ms(most), Unit: "ms"})
	b.add(result{Scenario: s, Figure: "all deleted after the window's end", Value: ms(last), Unit: "ms",
		Ceiling: new(float64(b.expiring) / ceiling.perSecond * 1000), Aim: "<= 5000 ms"})
	return nil
}

// expiringSlice is a sealed token slice of n tokens, all expiring at expiresAt, in window.
func expiringSlice(name string, window int64, expiresAt time.Time, n int) *corev1.Secret {
	records := make([]token.SliceRecord, n)
	keyID := ""
	for i := range records {
		issued := token.Issued{Token: token.Generate(), Lifetime: token.Lifetime{IssuedAt: expiresAt.Add(-time.Hour), ExpiresAt: expiresAt},
			Source: token.SourceHTTP}
		records[i] = token.SliceRecordOf(issued)
		keyID, records[i].Seal = sealer.SealSliceRecord(nsHTTP, name, records[i])
	}
	return token.NewSliceSecret(nsHTTP, name, "bench", window, keyID, records)
}

// deletedAfter reads the operator's own count of the expired tokens it deleted every 250 ms,
// from before, until b.expiring more are gone: when the first half, 99 % and all of them were,
// after from. Not more often: each scrape of its /metrics takes a census of the whole index
// (12 ms at 100 000 tokens, BenchmarkCensus), which at the 50 scrapes a second this read once
// took slowed the very deletions it measured.
func (b *bench) deletedAfter(op *operator, before float64, from time.Time) (half, most, last time.Duration, err error) {
	deadline := from.Add(5 * time.Minute)
	for last == 0 {
		if time.Now().After(deadline) {
			return 0, 0, 0, fmt.Errorf("the %d expired tokens were not all deleted within 5 minutes", b.expiring)
		}
		time.Sleep(250 * time.Millisecond)
		v, err := op.metricSum("tokenoperator_expired_deleted_total")
		if err != nil {
			return 0, 0, 0, err
		}
		done, lag := int(v-before), time.Since(from)
		if half == 0 && done >= b.expiring/2 {
			half = lag
		}
		if most == 0 && done >= b.expiring*99/100 {
			most = lag
		}
		if done >= b.expiring {
			last = lag
		}
	}
	return half, most, last, nil
}
