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

// Package controller holds the operator's two controllers, both driven by the token index
// (package index, through package indexsource) rather than a Secret informer, and both
// writing token Secrets only through the token store (package store).
//
// The TokenRequest controller works in three steps, one file each:
//   - observe (tokenrequest_observe.go) gathers what the decision needs: the TokenRequest as
//     cached, its Secret's Record from the index and the clock; only when the index cannot
//     tell, the live Secret and TokenRequest from the API server (inspect);
//   - decide (tokenrequest_decide.go) is one pure function from what was observed to a plan:
//     it makes no call and reads no clock, so every outcome has a table test;
//   - carry out (tokenrequest_carryout.go) does what the plan says and only that: the
//     store's write, then events, metrics and audit lines.
//
// The TokenRequest's status is written in tokenrequest_status.go alone (the token it records
// is read back there too), and patched once per reconcile. Rotation timing (tokenrequest_rotation.go) and workload restarts
// (tokenrequest_restart.go) are pure helpers of decide and a step after carrying out. The
// expiry controller (expiry_controller.go) asks the store to delete every token Secret,
// whatever issued it, at its expiry.
package controller
