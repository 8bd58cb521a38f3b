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
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// latencies is a set of measured durations.
type latencies []time.Duration

// percentile returns the p-th percentile (0-100), nearest rank.
func (l latencies) percentile(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// loadResult is what a closed-loop load run measured.
type loadResult struct {
	perSecond float64
	lat       latencies
	errors    int
}

// transportFrom is an HTTP transport for up to conns connections whose connections come from
// the loopback address src ("" for any): the whole of 127.0.0.0/8 is this machine, so each
// source address is a client of its own to the operator's per-client limits.
func transportFrom(src string, conns int) *http.Transport {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	if src != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		tr.DialContext = d.DialContext
	}
	return tr
}

// closedLoop runs conns workers that each send GET url, wait for the answer and send the
// next, for d; every answer must be 200 with body want, or have a status in alsoFine.
func closedLoop(url string, want []byte, conns int, d time.Duration, alsoFine ...int) loadResult {
	return closedLoopFrom("", url, want, conns, d, alsoFine...)
}

// closedLoopFrom is closedLoop from the loopback address src: one client.
func closedLoopFrom(src, url string, want []byte, conns int, d time.Duration, alsoFine ...int) loadResult {
	tr := transportFrom(src, conns)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var (
		mu     sync.Mutex
		all    latencies
		errors int
		wg     sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range conns {
		wg.Go(func() {
			var mine latencies
			bad := 0
			buf := make([]byte, 0, 256)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				resp, err := c.Get(url)
				if err != nil {
					bad++
					continue
				}
				buf, err = readInto(buf[:0], resp.Body)
				_ = resp.Body.Close()
				mine = append(mine, time.Since(t0))
				if slices.Contains(alsoFine, resp.StatusCode) {
					continue
				}
				if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(buf, want) {
					bad++
				}
			}
			mu.Lock()
			all = append(all, mine...)
			errors += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	return loadResult{perSecond: float64(len(all)) / time.Since(start).Seconds(), lat: all, errors: errors}
}

func readInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// fixedWork runs n jobs on conns workers and returns the throughput and each job's latency.
func fixedWork(n, conns int, job func(i int) error) (loadResult, error) {
	var (
		mu    sync.Mutex
		all   latencies
		first error
		wg    sync.WaitGroup
	)
	next := make(chan int)
	start := time.Now()
	for range conns {
		wg.Go(func() {
			var mine latencies
			for i := range next {
				t0 := time.Now()
				err := job(i)
				mine = append(mine, time.Since(t0))
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("job %d: %w", i, err)
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return loadResult{perSecond: float64(n) / time.Since(start).Seconds(), lat: all}, first
}
