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

package token

import (
	"reflect"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestWindowOf(t *testing.T) {
	for _, tc := range []struct{ expiresAt, want int64 }{
		{1796000010, 1796000010}, {1796000011, 1796000010}, {1796000039, 1796000010}, {1796000040, 1796000040}, // 1796000010 = 30 x 59866667
		{0, 0}, {-1, -30},
	} {
		got := WindowOf(tc.expiresAt)
		if got != tc.want {
			t.Errorf("WindowOf(%d) = %d, want %d", tc.expiresAt, got, tc.want)
		}
		if tc.expiresAt < got || tc.expiresAt >= SliceExpiresAt(got) {
			t.Errorf("%d lies outside its window [%d, %d)", tc.expiresAt, got, SliceExpiresAt(got))
		}
	}
}

func TestSliceName(t *testing.T) {
	for _, replica := range []string{"token-operator-controller-manager-6d9f7c7b8-x2x4k", "", "Ünïcode/with spaces", string(make([]byte, 300))} {
		w := SliceWriter(replica)
		name := SliceName(w, 1796000000, 12345)
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 || len(name) > 63 {
			t.Errorf("SliceName for %q = %q: %v", replica, name, errs)
		}
		if errs := validation.IsValidLabelValue(w); len(errs) > 0 {
			t.Errorf("SliceWriter(%q) = %q: %v", replica, w, errs)
		}
	}
	if SliceWriter("a") == SliceWriter("b") {
		t.Error("two replicas share a writer label")
	}
}

func TestSliceSecretRoundTrip(t *testing.T) {
	a := sliceRecord(nil)
	b := sliceRecord(func(r *SliceRecord) { r.ID[7] = 0xff; r.UsesLeft, r.Subject = 1, "user-42" })
	s := NewSliceSecret("tokens", SliceName(SliceWriter("r1"), 1796003600, 0), SliceWriter("r1"), 1796003600, "key-1", []SliceRecord{b, a})
	if !IsSliceSecret(s) || IsTokenSecret(s) {
		t.Fatalf("IsSliceSecret = %v, IsTokenSecret = %v; want a slice that is no token Secret", IsSliceSecret(s), IsTokenSecret(s))
	}
	s.Data["0000000000000000"] = []byte{9, 9}
	s.Data["not-a-key"] = AppendSliceRecord(nil, a)
	got, bad := SliceRecords(s)
	if !reflect.DeepEqual(got, []SliceRecord{a, b}) {
		t.Errorf("SliceRecords = %+v, want the two records in id order", got)
	}
	if !slices.Equal(bad, []string{"0000000000000000", "not-a-key"}) {
		t.Errorf("bad keys %q", bad)
	}
}

// A slice names its seal key in a label (no annotations map in its every copy), in the
// annotation of the same name when the key id is no label value, and is read either way.
func TestSliceSealKey(t *testing.T) {
	r := sliceRecord(nil)
	for _, tc := range []struct {
		name, keyID     string
		wantAnnotations bool
	}{
		{"a key id that is a label value", "key-1", false},
		{"one that is not", "-key-", true},
	} {
		s := NewSliceSecret("ns", "s", "w", 0, tc.keyID, []SliceRecord{r})
		if got := SliceSealKey(s); got != tc.keyID {
			t.Errorf("%s: SliceSealKey = %q, want %q", tc.name, got, tc.keyID)
		}
		if (s.Annotations != nil) != tc.wantAnnotations {
			t.Errorf("%s: annotations %v", tc.name, s.Annotations)
		}
	}
	earlier := NewSliceSecret("ns", "s", "w", 0, "key-1", []SliceRecord{r})
	delete(earlier.Labels, LabelSliceSealKey)
	earlier.Annotations = map[string]string{AnnotationSliceSealKey: "key-0"} // as written before 2026-12-04
	if got := SliceSealKey(earlier); got != "key-0" {
		t.Errorf("a slice of the earlier form: SliceSealKey = %q, want key-0", got)
	}
}
