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
	"context"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/tokenops/token-operator/internal/token"
)

// A client is who a request comes from, as far as the server can tell: the authenticated
// user when Auth admitted one, else the client's address. Rate limits are kept per client;
// the audit log names it.

// callerKey is the context key of the user Auth admitted.
type callerKey struct{}

// withCaller records the user Auth admitted for the request's handlers.
func withCaller(r *http.Request, u user.Info) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, u))
}

// callerOf is the user Auth admitted for the request, nil when none did.
func callerOf(ctx context.Context) user.Info {
	u, _ := ctx.Value(callerKey{}).(user.Info)
	return u
}

// clientKey is the rate limits' key for a request's client: "user:<name>" for a user Auth
// admitted, else "ip:<address>", an IPv6 address by its /64 (one host's many addresses are
// one client).
func (s *Server) clientKey(r *http.Request) string {
	if u := callerOf(r.Context()); u != nil {
		return "user:" + u.GetName()
	}
	addr := ClientAddress(r, s.TrustedProxies)
	if !addr.IsValid() {
		return "peer:" + r.RemoteAddr
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + addr.String()
}

// ClientAddress is the address a request comes from. It is the TCP peer, unless the peer is
// one of the trusted proxies: then it is the right-most address of X-Forwarded-For (or, without
// that header, of the Forwarded header's for= parameters) that is not a trusted proxy, which is
// the address the first trusted proxy saw. Whatever an untrusted peer writes in those headers
// is ignored. An entry that is no address ("unknown", an obfuscated name) stops the walk and
// the peer is used. Invalid only when the peer address itself does not parse.
func ClientAddress(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseHost(r.RemoteAddr)
	if !isTrusted(peer, trusted) {
		return peer
	}
	for i, h := range slices.Backward(forwardedFor(r.Header)) {
		hop := parseHost(h)
		switch {
		case !hop.IsValid():
			return peer
		case !isTrusted(hop, trusted):
			return hop
		case i == 0:
			return hop // every hop is a trusted proxy: the first one is the client
		}
	}
	return peer
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor is the chain of client addresses the proxies wrote, left (the original
// client, as claimed) to right (the latest proxy's peer): X-Forwarded-For, all its lines in
// order; without it, the for= parameters of Forwarded (RFC 7239).
func forwardedFor(h http.Header) []string {
	var hops []string
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, line := range xff {
			for hop := range strings.SplitSeq(line, ",") {
				hops = append(hops, strings.TrimSpace(hop))
			}
		}
		return hops
	}
	for _, line := range h.Values("Forwarded") {
		for element := range strings.SplitSeq(line, ",") {
			for pair := range strings.SplitSeq(element, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					hops = append(hops, strings.Trim(v, `"`))
				}
			}
		}
	}
	return hops
}

// parseHost reads an address with or without a port, IPv6 in brackets or bare, and unmaps an
// IPv4-mapped IPv6 address; invalid for anything else.
func parseHost(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}
	}
	return a.Unmap()
}

// ParseTrustedProxies reads a comma-separated list of CIDRs or single addresses.
func ParseTrustedProxies(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.Contains(item, "/") {
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// issuerOf is who issues a token over HTTP (token.Record.Issuer): the caller
// --http-auth=kubernetes admitted, else token.IssuerAnonymous.
func issuerOf(r *http.Request) string {
	if u := callerOf(r.Context()); u != nil {
		return u.GetName()
	}
	return token.IssuerAnonymous
}
