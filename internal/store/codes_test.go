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
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tokenops/token-operator/internal/index"
	"github.com/tokenops/token-operator/internal/otp"
	"github.com/tokenops/token-operator/internal/provenance"
)

// codeFixture is a store with keys over a fake API server, at a fake time; funcs intercept its
// writes.
func codeFixture(t *testing.T, funcs interceptor.Funcs) (*Store, client.Client, *clocktesting.FakeClock) {
	t.Helper()
	keys, err := provenance.NewKeyring(map[string][]byte{provenance.FirstKeyID: []byte(strings.Repeat("k", 32))}, provenance.FirstKeyID, now)
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithInterceptorFuncs(funcs).Build()
	tokens := index.New(logr.Discard())
	tokens.Trust = provenance.NewChecker(keys, "ns")
	clk := clocktesting.NewFakeClock(now)
	return New(c, c, tokens, clk), c, clk
}

var login = CodeFor{Issuer: "app-a", Subject: "user-42", Purpose: "login"}

func codeRequest(f CodeFor, attempts int) CodeRequest {
	return CodeRequest{CodeFor: f, TTL: 5 * time.Minute, Digits: 6, MaxAttempts: attempts, Limit: otp.Limit{Count: 5, Window: 15 * time.Minute}}
}

// wrongCode is a code of six digits other than c.
func wrongCode(c string) string {
	if c == "000000" {
		return "000001"
	}
	return "000000"
}

func TestCodes(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s, c, clk := codeFixture(t, interceptor.Funcs{})
	first, wait, err := s.IssueCode(ctx, "ns", codeRequest(login, 3))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(wait).To(BeZero())
	g.Expect(first).To(MatchRegexp(`^[0-9]{6}$`))

	name, err := s.CodeName(login)
	g.Expect(err).NotTo(HaveOccurred())
	secret := &corev1.Secret{}
	g.Expect(c.Get(ctx, types.NamespacedName{Namespace: "ns", Name: name}, secret)).To(Succeed())
	g.Expect(name).NotTo(ContainSubstring("user-42"))
	for k, v := range secret.Data {
		g.Expect(string(v)).NotTo(ContainSubstring(first), "data key %s holds the code", k)
		g.Expect(string(v)).NotTo(ContainSubstring("user-42"), "data key %s holds the subject", k)
	}

	// Another issuer, subject or purpose has its own code: this one verifies nothing there.
	for _, other := range []CodeFor{{"app-b", "user-42", "login"}, {"app-a", "user-43", "login"}, {"app-a", "user-42", "reset"}} {
		v, _, err := s.VerifyCode(ctx, "ns", other, first)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(v).To(Equal(otp.Dead), "%+v", other)
	}

	// A second code replaces the first.
	second, _, err := s.IssueCode(ctx, "ns", codeRequest(login, 3))
	g.Expect(err).NotTo(HaveOccurred())
	if second != first {
		v, left, err := s.VerifyCode(ctx, "ns", login, first)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(v).To(Equal(otp.Wrong))
		g.Expect(left).To(Equal(2))
	}
	v, _, err := s.VerifyCode(ctx, "ns", login, second)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(otp.Valid))
	v, _, _ = s.VerifyCode(ctx, "ns", login, second)
	g.Expect(v).To(Equal(otp.Dead), "a code verifies once")

	// Out of attempts, the right code is refused.
	third, _, err := s.IssueCode(ctx, "ns", codeRequest(login, 2))
	g.Expect(err).NotTo(HaveOccurred())
	for _, want := range []int{1, 0} {
		v, left, err := s.VerifyCode(ctx, "ns", login, wrongCode(third))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(v).To(Equal(otp.Wrong))
		g.Expect(left).To(Equal(want))
	}
	v, _, _ = s.VerifyCode(ctx, "ns", login, third)
	g.Expect(v).To(Equal(otp.Dead))

	// Expired, the right code is refused; the sweep removes the Secret once the window is over.
	fourth, _, err := s.IssueCode(ctx, "ns", codeRequest(login, 3))
	g.Expect(err).NotTo(HaveOccurred())
	clk.Step(5 * time.Minute)
	v, _, _ = s.VerifyCode(ctx, "ns", login, fourth)
	g.Expect(v).To(Equal(otp.Dead))
	n, err := s.SweepCodes(ctx, "ns")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(BeZero(), "the window still counts its issues")
	clk.Step(10 * time.Minute)
	n, err = s.SweepCodes(ctx, "ns")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n).To(Equal(1))
	g.Expect(apierrors.IsNotFound(c.Get(ctx, types.NamespacedName{Namespace: "ns", Name: name}, secret))).To(BeTrue())
}

func TestCodeIssueLimit(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	s, _, clk := codeFixture(t, interceptor.Funcs{})
	req := codeRequest(login, 3)
	req.Limit = otp.Limit{Count: 2, Window: 15 * time.Minute}
	for range 2 {
		_, wait, err := s.IssueCode(ctx, "ns", req)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(wait).To(BeZero())
	}
	c, wait, err := s.IssueCode(ctx, "ns", req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c).To(BeEmpty())
	g.Expect(wait).To(Equal(15 * time.Minute))
	other := req
	other.Purpose = "reset"
	_, wait, _ = s.IssueCode(ctx, "ns", other)
	g.Expect(wait).To(BeZero(), "each subject and purpose has its own limit")
	clk.Step(15 * time.Minute)
	_, wait, _ = s.IssueCode(ctx, "ns", req)
	g.Expect(wait).To(BeZero(), "a new window")
}

// TestCodeConflict: a verification whose write loses to another writer reads again and decides
// on the newer state, so that the attempt it spends is counted on top of the other's.
func TestCodeConflict(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	var s *Store
	raced := false
	s, c, _ := codeFixture(t, interceptor.Funcs{Update: func(ctx context.Context, c client.WithWatch, obj client.Object,
		opts ...client.UpdateOption) error {
		if !raced { // another replica spends an attempt between this one's read and write
			raced = true
			live := &corev1.Secret{}
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(obj), live)).To(Succeed())
			st, err := otp.Read(live)
			g.Expect(err).NotTo(HaveOccurred())
			st.Attempts++
			otp.Write(live, st)
			g.Expect(c.Update(ctx, live)).To(Succeed())
		}
		return c.Update(ctx, obj, opts...)
	}})
	first, _, err := s.IssueCode(ctx, "ns", codeRequest(login, 5))
	g.Expect(err).NotTo(HaveOccurred())
	raced = false
	v, left, err := s.VerifyCode(ctx, "ns", login, wrongCode(first))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(otp.Wrong))
	g.Expect(left).To(Equal(3), "two attempts spent: the other replica's and this one's")
	name, _ := s.CodeName(login)
	secret := &corev1.Secret{}
	g.Expect(c.Get(ctx, types.NamespacedName{Namespace: "ns", Name: name}, secret)).To(Succeed())
	g.Expect(string(secret.Data[otp.DataAttempts])).To(Equal("2"))
}
