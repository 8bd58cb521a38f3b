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
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"strconv"
	"time"

	"golang.org/x/sync/singleflight"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/utils/clock"
	"k8s.io/utils/lru"
)

// The TokenReview answers kept: the accepted ones and the rejected ones apart, so that a flood
// of unknown tokens never evicts an accepted one.
const (
	maxAcceptedReviews = 4096
	maxRejectedReviews = 4096
	// reviewTimeout bounds one shared TokenReview, whichever request waits for it.
	reviewTimeout = 10 * time.Second
)

// reviewCache keeps TokenReview answers for ttl, as k8s.io/apiserver's cached token
// authenticator does (an HMAC of the token as the key, so the cache keeps no token; one
// review at a time per token; errors never kept), but bounded: each of its two LRU lists
// holds at most its size, the least recently used answer evicted first. The apiserver's own
// cache (utilcache.Expiring) has no size limit: a flood of random tokens grows it for a
// minute per token.
type reviewCache struct {
	next    authenticator.Token
	clock   clock.PassiveClock
	ttl     time.Duration
	hmacKey []byte
	// accepted and rejected hold cachedReviews by key.
	accepted, rejected *lru.Cache
	inFlight           singleflight.Group
}

type cachedReview struct {
	resp    *authenticator.Response
	ok      bool
	expires time.Time
}

// newReviewCache keeps next's answers for ttl, at most accepted and rejected of each.
func newReviewCache(next authenticator.Token, c clock.PassiveClock, ttl time.Duration, accepted, rejected int) *reviewCache {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand never fails
	return &reviewCache{next: next, clock: c, ttl: ttl, hmacKey: key, accepted: lru.New(accepted), rejected: lru.New(rejected)}
}

// AuthenticateToken answers from the cache, else asks next once for every request that
// presents the same token meanwhile.
func (c *reviewCache) AuthenticateToken(ctx context.Context, tok string) (*authenticator.Response, bool, error) {
	auds, hasAuds := authenticator.AudiencesFrom(ctx)
	key := c.keyOf(auds, tok)
	if r, ok := c.get(key); ok {
		return r.resp, r.ok, nil
	}
	answer := c.inFlight.DoChan(key, func() (any, error) {
		if r, ok := c.get(key); ok {
			return r, nil // raced with a review that just ended
		}
		// Detached: the review is shared by every request waiting for it.
		rctx, cancel := context.WithTimeout(context.Background(), reviewTimeout)
		defer cancel()
		if hasAuds {
			rctx = authenticator.WithAudiences(rctx, auds)
		}
		resp, ok, err := c.next.AuthenticateToken(rctx, tok)
		if err != nil {
			return nil, err
		}
		r := cachedReview{resp: resp, ok: ok, expires: c.clock.Now().Add(c.ttl)}
		if ok {
			c.accepted.Add(key, r)
		} else {
			c.rejected.Add(key, r)
		}
		return r, nil
	})
	select {
	case res := <-answer:
		if res.Err != nil {
			return nil, false, res.Err
		}
		r := res.Val.(cachedReview)
		return r.resp, r.ok, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// get is the unexpired answer kept for key.
func (c *reviewCache) get(key string) (cachedReview, bool) {
	now := c.clock.Now()
	for _, l := range []*lru.Cache{c.accepted, c.rejected} {
		if v, ok := l.Get(key); ok {
			if r := v.(cachedReview); now.Before(r.expires) {
				return r, true
			}
			l.Remove(key)
		}
	}
	return cachedReview{}, false
}

// Len is how many answers the cache holds.
func (c *reviewCache) Len() int { return c.accepted.Len() + c.rejected.Len() }

// keyOf is the HMAC of the token and the audiences, each length-prefixed.
func (c *reviewCache) keyOf(auds authenticator.Audiences, tok string) string {
	h := hmac.New(sha256.New, c.hmacKey)
	field := func(s string) {
		_, _ = h.Write([]byte(strconv.Itoa(len(s)) + ":" + s))
	}
	field(tok)
	for _, a := range auds {
		field(a)
	}
	return string(h.Sum(nil))
}
