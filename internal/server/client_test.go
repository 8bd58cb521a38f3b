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

package server

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
)

func TestClientKey(t *testing.T) {
	proxies, err := ParseTrustedProxies("127.0.0.1, 10.0.0.0/8, fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		peer    string
		trusted []netip.Prefix
		headers map[string][]string
		user    string
		want    string
	}{
		{"the peer, no proxies trusted", "203.0.113.7:5000", nil, nil, "", "ip:203.0.113.7"},
		{"a forged header from an untrusted peer is ignored", "203.0.113.7:5000", proxies,
			map[string][]string{"X-Forwarded-For": {"198.51.100.9"}}, "", "ip:203.0.113.7"},
		{"a forged header is ignored when no proxy is trusted", "127.0.0.1:5000", nil,
			map[string][]string{"X-Forwarded-For": {"198.51.100.9"}}, "", "ip:127.0.0.1"},
		{"through a trusted proxy", "127.0.0.1:5000", proxies,
			map[string][]string{"X-Forwarded-For": {"198.51.100.9"}}, "", "ip:198.51.100.9"},
		{"the right-most untrusted hop, not what the client claims", "127.0.0.1:5000", proxies,
			map[string][]string{"X-Forwarded-For": {"1.2.3.4, 198.51.100.9, 10.1.2.3"}}, "", "ip:198.51.100.9"},
		{"several header lines are one list", "127.0.0.1:5000", proxies,
			map[string][]string{"X-Forwarded-For": {"1.2.3.4", "198.51.100.9"}}, "", "ip:198.51.100.9"},
		{"every hop trusted: the first", "127.0.0.1:5000", proxies,
			map[string][]string{"X-Forwarded-For": {"10.9.9.9, 10.1.1.1"}}, "", "ip:10.9.9.9"},
		{"garbage stops the walk at the peer", "127.0.0.1:5000", proxies,
			map[string][]string{"X-Forwarded-For": {"198.51.100.9, unknown"}}, "", "ip:127.0.0.1"},
		{"no header behind a trusted proxy: the proxy", "127.0.0.1:5000", proxies, nil, "", "ip:127.0.0.1"},
		{"Forwarded, RFC 7239", "127.0.0.1:5000", proxies,
			map[string][]string{"Forwarded": {`for=1.2.3.4;proto=https, For="[2001:db8:1:2::7]:4711";by=10.0.0.1`}}, "",
			"ip:2001:db8:1:2::/64"},
		{"X-Forwarded-For wins over Forwarded", "127.0.0.1:5000", proxies,
			map[string][]string{"Forwarded": {"for=1.2.3.4"}, "X-Forwarded-For": {"198.51.100.9"}}, "", "ip:198.51.100.9"},
		{"IPv6 by its /64", "[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:5000", nil, nil, "", "ip:2001:db8:1:2::/64"},
		{"IPv4-mapped IPv6 is IPv4", "[::ffff:203.0.113.7]:5000", nil, nil, "", "ip:203.0.113.7"},
		{"a trusted IPv6 proxy", "[fd00::1]:5000", proxies,
			map[string][]string{"X-Forwarded-For": {"2001:db8:9:9::1"}}, "", "ip:2001:db8:9:9::/64"},
		{"an authenticated user, wherever from", "127.0.0.1:5000", proxies,
			map[string][]string{"X-Forwarded-For": {"198.51.100.9"}}, "alice", "user:alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/app/valid/x", nil)
			r.RemoteAddr = tt.peer
			maps.Copy(r.Header, tt.headers)
			if tt.user != "" {
				r = withCaller(r, &user.DefaultInfo{Name: tt.user})
			}
			if got := (&Server{TrustedProxies: tt.trusted}).clientKey(r); got != tt.want {
				t.Errorf("clientKey = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies(" 10.1.2.3/8,,::1, 192.0.2.7 ")
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("192.0.2.7/32")}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ParseTrustedProxies = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example.com", "10.0.0.0/8/8"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted", bad)
		}
	}
}

// FuzzClientAddress: whatever the forwarding headers say, the answer is the peer or an
// address one of them names, and never a trusted proxy unless every hop is one.
func FuzzClientAddress(f *testing.F) {
	f.Add("198.51.100.9, 10.0.0.1", `for="[2001:db8::1]:80";proto=http`)
	f.Add("unknown", "for=_hidden")
	f.Add("", "For=1.2.3.4, for=5.6.7.8")
	proxies := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, xff, forwarded string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "127.0.0.1:1234"
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		r.Header.Set("Forwarded", forwarded)
		got := ClientAddress(r, proxies)
		if !got.IsValid() {
			t.Fatal("no address")
		}
		if got == netip.MustParseAddr("127.0.0.1") {
			return
		}
		for _, hop := range forwardedFor(r.Header) {
			if parseHost(hop) == got {
				return
			}
		}
		t.Fatalf("%s is neither the peer nor a forwarded hop", got)
	})
}

// FuzzParseTokenBody: any body is a token string or a client error, and a token read back is
// exactly the JSON string sent.
func FuzzParseTokenBody(f *testing.F) {
	for _, s := range []string{"", "{}", `{"token":"0123456789abcdef:ABCDEFGHIJKLMNOPQRSTUVWXYZ"}`, `{"token":5}`, `{"token":null}`,
		`{"token":"a"}{"token":"b"}`, `{"token":"\u0000"}`, "[", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		p, err := ParseTokenBody(strings.NewReader(body))
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) || (re.code != 400 && re.code != 413) {
				t.Fatalf("error %v is not a client error", err)
			}
			return
		}
		var back struct{ Token, Purpose string }
		if json.Unmarshal([]byte(body), &back) != nil || back.Token != p.Token || back.Purpose != p.Purpose {
			t.Fatalf("read %+v from %q", p, body)
		}
	})
}
