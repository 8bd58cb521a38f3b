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

package store

import (
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenops/token-operator/internal/token"
)

// changeFixture is a slice of three tokens (one of 2 uses, one of 1, one unlimited) and the
// cached Record of each, as the index holds them.
func changeFixture() (*corev1.Secret, []token.Issued, []*token.Record) {
	issued := []token.Issued{}
	for _, uses := range []*int64{new(int64(2)), new(int64(1)), nil} {
		_, i := stored(time.Hour, uses)
		issued = append(issued, i)
	}
	live := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "slice-a", UID: "uid-1"}, Data: map[string][]byte{}}
	slice := token.Record{Namespace: "ns", Name: "slice-a", UID: "uid-1", Source: token.SourceHTTP}
	cached := make([]*token.Record, len(issued))
	for n, i := range issued {
		r := token.SliceRecordOf(i)
		live.Data[token.SliceKey(r.ID)] = token.AppendSliceRecord(nil, r)
		e := token.EntryOf(&slice, r.ID, r.Digest, r.IssuedAt, r.ExpiresAt, r.UsesLeft, nil)
		cached[n] = &e
	}
	return live, issued, cached
}

// judgeAll admits every record that parses, as the index would a sealed one.
func judgeAll(live *corev1.Secret) entryJudge {
	slice := token.Record{Namespace: live.Namespace, Name: live.Name, UID: live.UID, Source: token.SourceHTTP, Sealed: true}
	return func(key string, raw []byte) (token.Record, token.SliceRecord, bool) {
		r, err := token.ParseSliceRecord(key, raw)
		if err != nil {
			return token.Record{}, token.SliceRecord{}, false
		}
		return token.EntryOf(&slice, r.ID, r.Digest, r.IssuedAt, r.ExpiresAt, r.UsesLeft, nil), r, true
	}
}

func TestDecideChanges(t *testing.T) {
	type outcome struct {
		removed  bool
		verdict  token.Verdict
		usesLeft *int64
	}
	// change n: a redemption of token n (i >= 0), or a revocation (presented "").
	type change struct {
		n     int
		spend bool
		wrong bool // present another secret
	}
	for _, tc := range []struct {
		name    string
		live    func(*corev1.Secret) *corev1.Secret
		changes []change
		want    []outcome
		ops     []string // op path-key index, e.g. "test 0", "replace 0"
	}{{
		name:    "a redemption of a 2-use token replaces its record",
		changes: []change{{n: 0, spend: true}},
		want:    []outcome{{verdict: token.VerdictValid, usesLeft: new(int64(1))}},
		ops:     []string{"test 0", "replace 0"},
	}, {
		name:    "two redemptions of it in one batch: the second tests what the first wrote, and removes it",
		changes: []change{{n: 0, spend: true}, {n: 0, spend: true}},
		want:    []outcome{{verdict: token.VerdictValid, usesLeft: new(int64(1))}, {verdict: token.VerdictValid, usesLeft: new(int64(0))}},
		ops:     []string{"test 0", "replace 0", "test 0", "remove 0"},
	}, {
		name:    "a one-time token redeemed twice in one batch: exactly one wins",
		changes: []change{{n: 1, spend: true}, {n: 1, spend: true}},
		want:    []outcome{{verdict: token.VerdictValid, usesLeft: new(int64(0))}, {verdict: token.VerdictSpent}},
		ops:     []string{"test 1", "remove 1"},
	}, {
		name:    "a revocation and a redemption of one token: the revocation first wins",
		changes: []change{{n: 1}, {n: 1, spend: true}, {n: 1}},
		want:    []outcome{{removed: true}, {verdict: token.VerdictSpent}, {}},
		ops:     []string{"remove 1"},
	}, {
		name:    "changes of different tokens go into one patch",
		changes: []change{{n: 1, spend: true}, {n: 2}, {n: 0, spend: true}},
		want:    []outcome{{verdict: token.VerdictValid, usesLeft: new(int64(0))}, {removed: true}, {verdict: token.VerdictValid, usesLeft: new(int64(1))}},
		ops:     []string{"test 1", "remove 1", "remove 2", "test 0", "replace 0"},
	}, {
		name:    "a wrong secret and an unlimited token write nothing",
		changes: []change{{n: 0, spend: true, wrong: true}, {n: 2, spend: true}},
		want:    []outcome{{verdict: token.VerdictUnknown}, {verdict: token.VerdictValid}},
	}, {
		name:    "a slice gone: spent, not removed",
		live:    func(*corev1.Secret) *corev1.Secret { return nil },
		changes: []change{{n: 0, spend: true}, {n: 1}},
		want:    []outcome{{verdict: token.VerdictSpent}, {}},
	}, {
		name: "a newer slice of the name (another UID): spent, not removed",
		live: func(s *corev1.Secret) *corev1.Secret {
			s.UID = "uid-2"
			return s
		},
		changes: []change{{n: 0, spend: true}, {n: 1}},
		want:    []outcome{{verdict: token.VerdictSpent}, {}},
	}, {
		name: "a record that does not parse is not redeemed",
		live: func(s *corev1.Secret) *corev1.Secret {
			for k := range s.Data {
				s.Data[k] = []byte("garbage")
			}
			return s
		},
		changes: []change{{n: 0, spend: true}},
		want:    []outcome{{verdict: token.VerdictUnknown}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			live, issued, cached := changeFixture()
			if tc.live != nil {
				live = tc.live(live)
			}
			judge := entryJudge(func(string, []byte) (token.Record, token.SliceRecord, bool) {
				return token.Record{}, token.SliceRecord{}, false
			})
			if live != nil {
				judge = judgeAll(live)
			}
			changes := make([]*sliceChange, len(tc.changes))
			for i, c := range tc.changes {
				changes[i] = &sliceChange{cached: cached[c.n]}
				if c.spend {
					changes[i].presented = issued[c.n].String()
				}
				if c.wrong {
					changes[i].presented = issued[c.n].ID + ":" + token.Generate().Secret
				}
			}
			ops := decideChanges(live, changes, judge, now)
			got := make([]outcome, len(changes))
			for i, c := range changes {
				got[i] = outcome{removed: c.removed, verdict: c.redemption.Verdict, usesLeft: c.redemption.UsesLeft}
			}
			g.Expect(got).To(Equal(tc.want))
			var gotOps []string
			for _, op := range ops {
				for n, c := range cached {
					if op.Path == dataPath(c.Current.ID) {
						gotOps = append(gotOps, op.Op+" "+string(rune('0'+n)))
					}
				}
			}
			g.Expect(gotOps).To(Equal(tc.ops))
			for _, op := range ops {
				if op.Op == "replace" {
					raw, _ := json.Marshal(op.Value)
					g.Expect(string(raw)).NotTo(ContainSubstring(issued[0].Secret), "a record, never the token")
				}
			}
		})
	}
}
