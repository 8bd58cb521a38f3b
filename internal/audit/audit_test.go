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

package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokenops/token-operator/internal/token"
)

func TestWrite(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf)
	l.now = func() time.Time { return time.Date(2026, 11, 29, 10, 0, 0, 0, time.FixedZone("CET", 3600)) }
	if err := l.Write(Event{Operation: OpIssue, Outcome: Success, TokenID: "0123456789abcdef", User: "alice",
		UserAgent: strings.Repeat("x", 300)}); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(Event{Operation: OpClear, Outcome: Success, User: "bob"}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), buf.String())
	}
	var e Event
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil {
		t.Fatal(err)
	}
	if e.Audit != Version || !e.Time.Equal(l.now()) || e.Time.Location() != time.UTC || len(e.UserAgent) != 256 || e.TokenID != "0123456789abcdef" {
		t.Errorf("line = %+v", e)
	}
	if !strings.HasPrefix(lines[1], `{"audit":"`+Version+`","time":"2026-11-29T09:00:00Z","operation":"clear","outcome":"success","user":"bob"}`) {
		t.Errorf("line = %s", lines[1])
	}
	var none *Log
	if err := none.Write(Event{}); err != nil {
		t.Errorf("a nil Log: %v", err)
	}
}

func TestOfNamesTheTokenNeverItsSecret(t *testing.T) {
	issued := token.Issued{Token: token.Generate(), Lifetime: token.NewLifetime(time.Now(), time.Hour), Source: token.SourceTokenRequest}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "api-key", UID: "uid",
		OwnerReferences: []metav1.OwnerReference{{Kind: "TokenRequest", Name: "api-key", UID: "tr", Controller: new(true)}}}}
	issued.ApplyTo(s)
	rec, err := token.RecordOf(s)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := New(&buf).Write(Of(OpRotate, Success, &rec)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"token_id":"` + issued.ID + `"`, `"source":"tokenrequest"`, `"namespace":"ns"`, `"name":"api-key"`,
		`"token_request":"api-key"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("%s lacks %s", buf.String(), want)
		}
	}
	if strings.Contains(buf.String(), issued.Secret) {
		t.Error("the line holds the token's secret")
	}
}
