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
	"context"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/tokenops/token-operator/internal/audit"
	"github.com/tokenops/token-operator/internal/metrics"
	"github.com/tokenops/token-operator/internal/store"
)

// CodeSweepInterval is how often the leader deletes the Secrets of dead one-time codes.
const CodeSweepInterval = time.Minute

// CodeSweeper deletes, on the leader, the Secrets of one-time codes that count for nothing
// any more (expired, and out of their issuing window), through the store (Store.SweepCodes).
// Codes are few and short-lived, and no replica watches them: a list every Interval finds
// them.
type CodeSweeper struct {
	Store     *store.Store
	Namespace string
	Interval  time.Duration
	Log       logr.Logger
	// Audit receives one line per sweep that deleted something (nil: no audit log).
	Audit *audit.Log
}

// NeedLeaderElection is true: one replica sweeps.
func (c *CodeSweeper) NeedLeaderElection() bool { return true }

// Start sweeps every Interval until ctx ends.
func (c *CodeSweeper) Start(ctx context.Context) error {
	wait.UntilWithContext(ctx, c.Sweep, max(c.Interval, time.Second))
	return nil
}

// Sweep deletes the Secrets of dead codes once.
func (c *CodeSweeper) Sweep(ctx context.Context) {
	n, err := c.Store.SweepCodes(ctx, c.Namespace)
	if n > 0 {
		metrics.CodesSwept.Add(float64(n))
		writeAudit(ctx, c.Audit, audit.Event{Operation: audit.OpCodeSweep, Outcome: audit.Success, Namespace: c.Namespace,
			Deleted: new(int64(n)), User: audit.Actor})
	}
	if err != nil {
		c.Log.Error(err, "Failed to sweep the Secrets of dead one-time codes", "deleted", n)
	}
}
