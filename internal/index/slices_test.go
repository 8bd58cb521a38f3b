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

package index

import (
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tokenops/token-operator/internal/provenance"
	"github.com/tokenops/token-operator/internal/token"
)

// sliceOf is a slice Secret in namespace "ns" at resourceVersion rv holding the tokens, sealed
// with keys (nil: unsealed).
func sliceOf(keys *provenance.Keyring, name, rv string, tokens ...token.Issued) *corev1.Secret {
	records := make([]token.SliceRecord, 0, len(tokens))
	keyID := ""
	for _, i := range tokens {
		r := token.SliceRecordOf(i)
		if keys != nil {
			keyID, r.Seal = keys.SealSliceRecord("ns", name, r)
		}
		records = append(records, r)
	}
	s := token.NewSliceSecret("ns", name, "w", token.WindowOf(tokens[0].ExpiresAt.Unix()), keyID, records)
	s.UID, s.ResourceVersion = types.UID("uid-"+name), rv
	return s
}

func issuedFor(subject string) token.Issued {
	i := httpToken(time.Hour)
	i.Subject, i.Issuer = subject, "app"
	return i
}

func TestSliceEvents(t *testing.T) {
	x := New(logr.Discard())
	var changes int
	x.Subscribe(func(old, updated *token.Record) { changes++ })
	a, b, c := httpToken(time.Hour), httpToken(time.Hour), httpToken(time.Hour)
	x.Put(sliceOf(nil, "slice-1", "10", a, b))
	if r, slot := find(x, a.Token); r == nil || slot != token.SlotCurrent || r.Packing != token.PackedEntry || r.Name != "slice-1" {
		t.Fatalf("a after the slice's write: %+v", r)
	}
	if x.LiveHTTP() != 2 || x.Len() != 1 || changes != 1 {
		t.Errorf("live %d, Secrets %d, changes %d; want 2, 1, 1", x.LiveHTTP(), x.Len(), changes)
	}

	// b revoked and c appended at rv 12; then an answer of rv 11 (still holding b) arrives late.
	x.Apply(sliceOf(nil, "slice-1", "12", a, c), false)
	x.Put(sliceOf(nil, "slice-1", "11", a, b))
	if r, _ := find(x, b.Token); r != nil {
		t.Error("a late answer brought back a revoked token")
	}
	if r, _ := find(x, c.Token); r == nil {
		t.Error("an appended token is not found")
	}
	if changes != 1 {
		t.Errorf("%d changes: a slice's tokens changing is no change of the slice's own Record", changes)
	}
	wrong := c.Token
	wrong.Secret = token.Generate().Secret
	if r, _ := find(x, wrong); r != nil {
		t.Error("a wrong secret finds a token")
	}

	// Deleting whole: every token goes at once.
	x.Apply(sliceOf(nil, "slice-1", "13", a, c), true)
	if r, _ := find(x, a.Token); r != nil || x.LiveHTTP() != 0 || x.Len() != 0 || changes != 2 {
		t.Errorf("after the delete: live %d, Secrets %d, changes %d", x.LiveHTTP(), x.Len(), changes)
	}
}

func TestSliceProvenance(t *testing.T) {
	keys, err := provenance.NewKeyring(map[string][]byte{"key-1": make([]byte, provenance.MasterKeyBytes)}, "key-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a, b := httpToken(time.Hour), httpToken(time.Hour)
	for _, tt := range []struct {
		name    string
		secret  func() *corev1.Secret
		a, b    bool
		records int
	}{
		{"sealed", func() *corev1.Secret { return sliceOf(keys, "s", "1", a, b) }, true, true, 2},
		{"unsealed", func() *corev1.Secret { return sliceOf(nil, "s", "1", a, b) }, false, false, 0},
		{"one record forged", func() *corev1.Secret {
			s := sliceOf(keys, "s", "1", a, b)
			forged := token.SliceRecordOf(b)
			forged.ExpiresAt += 3600 // a longer life, under b's seal
			_, forged.Seal = keys.SealSliceRecord("ns", "s", token.SliceRecordOf(b))
			s.Data[token.SliceKey(forged.ID)] = token.AppendSliceRecord(nil, forged)
			return s
		}, true, false, 1},
		{"copied to another slice", func() *corev1.Secret {
			s := sliceOf(keys, "s", "1", a, b)
			s.Name = "other"
			return s
		}, false, false, 0},
		{"outside --http-namespace, though sealed for where it is", func() *corev1.Secret {
			records := []token.SliceRecord{token.SliceRecordOf(a), token.SliceRecordOf(b)}
			keyID := ""
			for i := range records {
				keyID, records[i].Seal = keys.SealSliceRecord("elsewhere", "s", records[i])
			}
			s := token.NewSliceSecret("elsewhere", "s", "w", token.WindowOf(a.ExpiresAt.Unix()), keyID, records)
			s.UID = "uid-s"
			return s
		}, false, false, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x := New(logr.Discard())
			x.Trust = provenance.NewChecker(keys, "ns")
			x.Put(tt.secret())
			ra, _ := find(x, a.Token)
			rb, _ := find(x, b.Token)
			if (ra != nil) != tt.a || (rb != nil) != tt.b || x.LiveHTTP() != tt.records {
				t.Errorf("a found %v, b found %v, %d live; want %v, %v, %d", ra != nil, rb != nil, x.LiveHTTP(), tt.a, tt.b, tt.records)
			}
		})
	}
}

func TestSlicePagesAndSubjects(t *testing.T) {
	x := New(logr.Discard())
	own := issuedFor("user-1")
	x.Put(secret("a-own", "uid-a", own)) // a Secret of its own, of the earlier layout
	in := []token.Issued{issuedFor("user-1"), issuedFor("user-2"), issuedFor("user-1")}
	x.Put(sliceOf(nil, "b-slice", "5", in...))
	x.Put(secret("c-own", "uid-c", httpToken(time.Hour)))

	var want []string
	ids := []string{in[0].ID, in[1].ID, in[2].ID}
	slices.Sort(ids)
	want = append(want, "a-own")
	for _, id := range ids {
		want = append(want, "b-slice/"+id)
	}
	want = append(want, "c-own")
	for _, limit := range []int{1, 2, 10} {
		var got []string
		after := Position{}
		for {
			recs, more := x.Page(after, limit)
			for _, r := range recs {
				got = append(got, name(r))
			}
			if !more {
				break
			}
			after = PositionOf(recs[len(recs)-1])
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: %v, want %v", limit, got, want)
		}
	}

	var got []string
	x.BySubject("app", "user-1", func(r *token.Record) bool {
		got = append(got, name(r))
		return true
	})
	wantSubject := []string{"a-own"}
	for _, id := range ids {
		if id != in[1].ID {
			wantSubject = append(wantSubject, "b-slice/"+id)
		}
	}
	if !slices.Equal(got, wantSubject) {
		t.Errorf("user-1's tokens: %v, want %v", got, wantSubject)
	}
	if issuers := x.Issuers(); !slices.Equal(issuers, []string{"app"}) {
		t.Errorf("issuers %v", issuers)
	}
	x.Forget(types.NamespacedName{Namespace: "ns", Name: "b-slice"}, "uid-b-slice")
	x.Forget(types.NamespacedName{Namespace: "ns", Name: "a-own"}, "uid-a")
	if issuers := x.Issuers(); len(issuers) != 0 {
		t.Errorf("issuers once every token with a subject is gone: %v", issuers)
	}
}

// name is a Record's Secret name, and its id for a token of a slice.
func name(r *token.Record) string {
	if r.Packing == token.PackedEntry {
		return r.Name + "/" + r.Current.ID.String()
	}
	return r.Name
}

// A relist sets the subjects of slice tokens aside and loads them at its end: what BySubject
// then walks is what the last version of each slice holds.
func TestSliceSubjectsFromSnapshot(t *testing.T) {
	x := New(logr.Discard())
	t1, t2, t3 := issuedFor("user-1"), issuedFor("user-1"), issuedFor("user-2")
	snap := x.NewSnapshot()
	snap.Add(sliceOf(nil, "a-slice", "5", t1, t2))
	snap.Add(sliceOf(nil, "b-slice", "6", t3))
	moved := t2
	moved.Subject = "user-2"
	snap.Add(sliceOf(nil, "a-slice", "7", t1, moved)) // a newer version of a-slice, read again
	x.Replace(snap)
	for subject, want := range map[string][]string{
		"user-1": {"a-slice/" + t1.ID},
		"user-2": {"a-slice/" + moved.ID, "b-slice/" + t3.ID},
	} {
		var got []string
		x.BySubject("app", subject, func(r *token.Record) bool {
			got = append(got, name(r))
			return true
		})
		if !slices.Equal(got, want) {
			t.Errorf("%s's tokens after a relist: %v, want %v", subject, got, want)
		}
	}
	x.Forget(types.NamespacedName{Namespace: "ns", Name: "a-slice"}, "uid-a-slice")
	x.Forget(types.NamespacedName{Namespace: "ns", Name: "b-slice"}, "uid-b-slice")
	if n := x.state.sliceSubjects.Len(); n != 0 {
		t.Errorf("%d subjects left once every slice is gone", n)
	}
}
