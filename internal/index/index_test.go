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
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tokenops/token-operator/internal/token"
)

var now = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// secret is a token Secret holding issued, named name, with this UID.
func secret(name, uid string, issued token.Issued) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(uid)}}
	issued.ApplyTo(s)
	return s
}

func httpToken(ttl time.Duration) token.Issued {
	return token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(now, ttl), Source: token.SourceHTTP}
}

func find(x *Index, tok token.Token) (*token.Record, token.Slot) {
	id, _ := token.ParseID(tok.ID)
	return x.Find(id, token.DigestOf(tok.String()))
}

// step is one thing that happens to the index: a watch event, a local write or a forget.
type step struct {
	secret  *corev1.Secret
	op      string // "watch", "delete", "put", "forget"
	changes int    // how many listener calls it must cause
}

func TestIndexChanges(t *testing.T) {
	a, b := httpToken(time.Hour), httpToken(time.Hour)
	aSecret := secret("a", "uid-a", a)
	aEdited := aSecret.DeepCopy()
	aEdited.Annotations["unrelated"] = "edit"
	aRenewed := secret("a", "uid-a", b)
	aRecreated := secret("a", "uid-a2", a)
	otherType := aSecret.DeepCopy()
	otherType.Type = corev1.SecretTypeOpaque

	tests := []struct {
		name  string
		steps []step
		// finds says which token must be found in which Secret ("" for none) at the end.
		finds map[*token.Token]string
	}{
		{"a watch add is found", []step{{aSecret, "watch", 1}}, map[*token.Token]string{&a.Token: "a", &b.Token: ""}},
		{"an edit that changes no record is no change", []step{{aSecret, "watch", 1}, {aEdited, "watch", 0}},
			map[*token.Token]string{&a.Token: "a"}},
		{"put then the watch's confirmation: one change", []step{{aSecret, "put", 1}, {aSecret, "watch", 0}},
			map[*token.Token]string{&a.Token: "a"}},
		{"put never overwrites what the watch said", []step{{aRenewed, "watch", 1}, {aSecret, "put", 0}},
			map[*token.Token]string{&a.Token: "", &b.Token: "a"}},
		{"a new token in the same Secret moves the id", []step{{aSecret, "watch", 1}, {aRenewed, "watch", 1}},
			map[*token.Token]string{&a.Token: "", &b.Token: "a"}},
		{"delete removes", []step{{aSecret, "watch", 1}, {aSecret, "delete", 1}}, map[*token.Token]string{&a.Token: ""}},
		{"the delete of an older Secret of the same name keeps the newer", []step{{aRecreated, "put", 1}, {aSecret, "delete", 0}},
			map[*token.Token]string{&a.Token: "a"}},
		{"forget of the same UID removes", []step{{aSecret, "put", 1}, {aSecret, "forget", 1}}, map[*token.Token]string{&a.Token: ""}},
		{"forget of another UID keeps", []step{{aRecreated, "put", 1}, {aSecret, "forget", 0}}, map[*token.Token]string{&a.Token: "a"}},
		{"a Secret that is not a token Secret is skipped", []step{{otherType, "watch", 0}}, map[*token.Token]string{&a.Token: ""}},
		{"a copy under another name: both found, either removable", []step{
			{aSecret, "watch", 1}, {secret("copy", "uid-c", a), "watch", 1}, {aSecret, "delete", 1}},
			map[*token.Token]string{&a.Token: "copy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := New(logr.Discard())
			changes := 0
			x.Subscribe(func(_, _ *token.Record) { changes++ })
			for i, st := range tt.steps {
				before := changes
				switch st.op {
				case "watch":
					x.Apply(st.secret, false)
				case "delete":
					x.Apply(st.secret, true)
				case "put":
					x.Put(st.secret)
				case "forget":
					x.Forget(types.NamespacedName{Namespace: st.secret.Namespace, Name: st.secret.Name}, st.secret.UID)
				}
				if got := changes - before; got != st.changes {
					t.Errorf("step %d (%s %s): %d changes, want %d", i, st.op, st.secret.Name, got, st.changes)
				}
			}
			for tok, want := range tt.finds {
				rec, _ := find(x, *tok)
				got := ""
				if rec != nil {
					got = rec.Name
				}
				if got != want {
					t.Errorf("token %s found in %q, want %q", tok.ID, got, want)
				}
			}
		})
	}
}

func TestIndexRotationAndQueries(t *testing.T) {
	x := New(logr.Discard())
	current := httpToken(time.Hour)
	current.Source = token.SourceTokenRequest
	current.Previous = &token.Previous{Token: token.Generate(), ExpiresAt: now.Add(time.Minute)}
	x.Apply(secret("rotated", "uid-r", current), false)
	expired := httpToken(time.Second)
	x.Apply(secret("short", "uid-s", expired), false)

	if rec, slot := find(x, current.Previous.Token); rec == nil || slot != token.SlotPrevious {
		t.Errorf("previous token: %v, %v", rec, slot)
	}
	if rec, slot := find(x, current.Token); rec == nil || slot != token.SlotCurrent {
		t.Errorf("current token: %v, %v", rec, slot)
	}
	wrong := token.Token{ID: current.ID, Secret: expired.Secret}
	if rec, _ := find(x, wrong); rec != nil {
		t.Error("a wrong secret with a known id was found")
	}
	prevID, _ := token.ParseID(current.Previous.ID)
	if rec := x.ByID(prevID); rec == nil || rec.Name != "rotated" {
		t.Errorf("ByID(previous) = %v", rec)
	}
	if got := x.Expired(now.Add(2 * time.Second)); len(got) != 1 || got[0].Name != "short" {
		t.Errorf("Expired = %v", got)
	}
	if x.Len() != 2 {
		t.Errorf("Len = %d", x.Len())
	}
	deleting := secret("short", "uid-s", expired)
	deleting.DeletionTimestamp = &metav1.Time{Time: now}
	x.Apply(deleting, false)
	if rec, _ := find(x, expired.Token); rec != nil {
		t.Error("a Secret being deleted was found")
	}
}

// TestIndexMemory measures what the index holds per token: the Go heap after a collection,
// with 100 000 HTTP token Secrets indexed, divided by their number. `make bench` measures
// the whole operator; this is the index alone.
func TestIndexMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100 000 records")
	}
	purposes := []string{"password-reset", "email-verification", "login", "api-key", "guest"}
	for _, tt := range []struct {
		name  string
		typed bool
		max   float64
	}{
		{"no subject or purpose (the original contract)", false, 450},
		// A 20-byte subject of its own (24 bytes), an About (24), a slot in the subjects'
		// B-tree (about 12); the issuer and purpose are shared (Kind).
		{"a 20-byte subject and one of 5 purposes", true, 520},
	} {
		const n = 100_000
		x := New(logr.Discard())
		before := heapBytes()
		for i := range n {
			issued := httpToken(time.Hour)
			if tt.typed {
				issued.Subject, issued.Purpose, issued.Issuer = fmt.Sprintf("user-%015d", i), purposes[i%5], token.IssuerAnonymous
			}
			x.Apply(secret(token.HTTPSecretName(issued.ID), fmt.Sprintf("%08x-1111-2222-3333-444444444444", i), issued), false)
		}
		perToken := float64(heapBytes()-before) / n
		runtime.KeepAlive(x)
		t.Logf("%s: the index holds %.0f bytes per token (Go heap after GC, %d tokens)", tt.name, perToken, n)
		if perToken > tt.max {
			t.Errorf("%s: the index holds %.0f bytes per token, more than %.0f", tt.name, perToken, tt.max)
		}
	}
}

func heapBytes() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestPage(t *testing.T) {
	x := New(logr.Discard())
	var want []string
	for _, ns := range []string{"b", "a", "c"} {
		for i := range 7 {
			issued := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(time.Now(), time.Hour), Source: token.SourceHTTP}
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("s-%02d", i), UID: types.UID(ns + strconv.Itoa(i))}}
			issued.ApplyTo(s)
			x.Put(s)
		}
	}
	for _, ns := range []string{"a", "b", "c"} {
		for i := range 7 {
			want = append(want, fmt.Sprintf("%s/s-%02d", ns, i))
		}
	}
	for _, limit := range []int{1, 4, 7, 21, 100} {
		var got []string
		after := Position{}
		for pages := 0; ; pages++ {
			if pages > 21 {
				t.Fatalf("limit %d: no end", limit)
			}
			recs, more := x.Page(after, limit)
			if len(recs) > limit || (more && len(recs) != limit) {
				t.Fatalf("limit %d: page of %d, more %v", limit, len(recs), more)
			}
			for _, r := range recs {
				got = append(got, r.Key().String())
			}
			if !more {
				break
			}
			after = PositionOf(recs[len(recs)-1])
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: paged %v, want %v", limit, got, want)
		}
	}

	// The sorted keys follow every change: a Secret gone, one added, one changed, a relist.
	x.Forget(types.NamespacedName{Namespace: "b", Name: "s-03"}, "b3")
	x.Apply(secret("s-00", "new", httpToken(time.Hour)), false) // "ns", between "c" and nothing
	changed := secret("s-01", "a1", httpToken(time.Hour))
	changed.Namespace = "a"
	x.Apply(changed, false)
	if got, want := pageAll(x, 2), sortedKeys(x); !slices.Equal(got, want) {
		t.Errorf("after changes: paged %v, want %v", got, want)
	}
	snap := x.NewSnapshot()
	for _, name := range []string{"z", "m", "a"} {
		snap.Add(secret(name, "uid-"+name, httpToken(time.Hour)))
	}
	x.Replace(snap)
	if got := pageAll(x, 2); !slices.Equal(got, []string{"ns/a", "ns/m", "ns/z"}) {
		t.Errorf("after a relist: paged %v", got)
	}
}

// pageAll pages through x limit at a time and returns the keys.
func pageAll(x *Index, limit int) []string {
	var got []string
	after := Position{}
	for {
		recs, more := x.Page(after, limit)
		for _, r := range recs {
			got = append(got, r.Key().String())
		}
		if !more {
			return got
		}
		after = PositionOf(recs[len(recs)-1])
	}
}

// sortedKeys is every key x holds, sorted.
func sortedKeys(x *Index) []string {
	var keys []string
	for _, r := range x.Records() {
		keys = append(keys, r.Key().String())
	}
	slices.Sort(keys)
	return keys
}

// BenchmarkCensus is the per-scrape cost of the metrics' per-namespace counts, over 100 000
// token Secrets in 100 namespaces.
func BenchmarkCensus(b *testing.B) {
	x := New(logr.Discard())
	for i := range 100_000 {
		issued := httpToken(time.Hour)
		s := secret(token.HTTPSecretName(issued.ID), fmt.Sprintf("%08x-1111-2222-3333-444444444444", i), issued)
		s.Namespace = fmt.Sprintf("ns-%d", i%100)
		x.Apply(s, false)
	}
	b.ResetTimer()
	for b.Loop() {
		if c := x.CensusByNamespace(now); len(c) != 100 {
			b.Fatalf("%d namespaces", len(c))
		}
	}
}

// bySubject names, in order, the Secrets BySubject walks.
func bySubject(x *Index, issuer, subject string) []string {
	var out []string
	x.BySubject(issuer, subject, func(r *token.Record) bool {
		out = append(out, r.Name)
		return true
	})
	return out
}

func TestBySubject(t *testing.T) {
	of := func(name, issuer, subject string) *corev1.Secret {
		i := httpToken(time.Hour)
		i.Issuer, i.Subject = issuer, subject
		return secret(name, "uid-"+name, i)
	}
	x := New(logr.Discard())
	for _, s := range []*corev1.Secret{
		of("a1", "app-a", "user-42"), of("a2", "app-a", "user-42"), of("a3", "app-a", "user-43"),
		of("b1", "app-b", "user-42"), of("n1", token.IssuerAnonymous, "user-42"), of("n2", "", "user-42"),
		of("x", "app-a", ""),
		of("a0", "app-a", "user-4"), // a prefix of user-42 is another subject
	} {
		x.Put(s)
	}
	moved := of("a2", "app-a", "user-44") // the same Secret, edited to another subject
	moved.UID = "uid-a2"

	tests := []struct {
		name, issuer, subject string
		change                func()
		want                  []string
	}{
		{"one issuer's tokens of a subject", "app-a", "user-42", nil, []string{"a1", "a2"}},
		{"another issuer's of the same subject", "app-b", "user-42", nil, []string{"b1"}},
		{"anonymous, written or not", token.IssuerAnonymous, "user-42", nil, []string{"n1", "n2"}},
		{"a subject that is a prefix of another", "app-a", "user-4", nil, []string{"a0"}},
		{"no subject asks for nothing", "app-a", "", nil, nil},
		{"an unknown issuer", "app-c", "user-42", nil, nil},
		{"after an edit to another subject, the old one", "app-a", "user-42", func() { x.Apply(moved, false) }, []string{"a1"}},
		{"and the new one", "app-a", "user-44", nil, []string{"a2"}},
		{"after a deletion", "app-a", "user-42", func() { x.Forget(types.NamespacedName{Namespace: "ns", Name: "a1"}, "uid-a1") }, nil},
		{"after a relist", "app-b", "user-42", func() {
			snap := x.NewSnapshot()
			snap.Add(of("b2", "app-b", "user-42"))
			x.Replace(snap)
		}, []string{"b2"}},
	}
	for _, tt := range tests {
		if tt.change != nil {
			tt.change()
		}
		if got := bySubject(x, tt.issuer, tt.subject); !slices.Equal(got, tt.want) {
			t.Errorf("%s: BySubject(%q, %q) = %v, want %v", tt.name, tt.issuer, tt.subject, got, tt.want)
		}
	}
	if got := x.Issuers(); !slices.Equal(got, []string{"app-b"}) {
		t.Errorf("Issuers after the relist = %v, want [app-b]", got)
	}
}
