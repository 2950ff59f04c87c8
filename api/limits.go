package api

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// errThrottled answers a request over a rate limit or over the node's fair
// share of capacity: 429 Rejected.Throttling.
var errThrottled = errors.New("request was denied due to request throttling")

// bucket is a token bucket: rate tokens per second, at most burst stored.
type bucket struct {
	tokens float64
	last   time.Time
}

// limiter holds this node's per-account rate limits (token buckets per
// account and action class) and its fair admission of concurrent requests.
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket // account + "/" + class

	// Admission: at most maxInFlight requests at once on the node. Under
	// contention (half the capacity in use) an account may hold only its
	// fair share — capacity divided by the accounts with requests in
	// flight — so a flood from one account cannot starve another, and the
	// node answers 429 instead of queueing without bound.
	maxInFlight int
	inFlight    map[string]int
	total       int
	// refused remembers accounts turned away recently: they want capacity
	// too, so they count when the fair share is computed, and the account
	// holding the most cannot take every slot that frees up.
	refused map[string]time.Time
}

// demandWindow is how long a refused account keeps counting as active.
const demandWindow = time.Second

func newLimiter(maxInFlight int) *limiter {
	return &limiter{buckets: map[string]*bucket{}, maxInFlight: maxInFlight, inFlight: map[string]int{}, refused: map[string]time.Time{}}
}

// allowRate takes one token from the account's bucket for class, refilled
// at rate per second with a burst of max(rate, 1).
func (l *limiter) allowRate(account, class string, rate float64, now time.Time) error {
	if rate <= 0 {
		return nil
	}
	burst := rate
	if burst < 1 {
		burst = 1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	k := account + "/" + class
	b, ok := l.buckets[k]
	if !ok {
		b = &bucket{tokens: burst, last: now}
		l.buckets[k] = b
	}
	b.tokens += now.Sub(b.last).Seconds() * rate
	if b.tokens > burst {
		b.tokens = burst
	}
	b.last = now
	if b.tokens < 1 {
		return fmt.Errorf("%w: account %s is limited to %g %s requests per second on this node", errThrottled, account, rate, class)
	}
	b.tokens--
	return nil
}

// slot is one admitted request's place on the node; release gives it back.
// (A value, not a closure: admitting a request allocates nothing.)
type slot struct {
	l       *limiter
	account string
}

// admit reserves a slot for one request of account.
func (l *limiter) admit(account string, now time.Time) (slot, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	refuse := func(err error) (slot, error) {
		l.refused[account] = now
		return slot{}, err
	}
	if l.total >= l.maxInFlight {
		return refuse(fmt.Errorf("%w: the node is at capacity (%d requests in flight); retry with backoff", errThrottled, l.maxInFlight))
	}
	if l.total >= l.maxInFlight/2 {
		active := map[string]bool{account: true}
		for a := range l.inFlight {
			active[a] = true
		}
		for a, at := range l.refused {
			if now.Sub(at) > demandWindow {
				delete(l.refused, a)
				continue
			}
			active[a] = true
		}
		if share := l.maxInFlight / len(active); l.inFlight[account] >= share {
			return refuse(fmt.Errorf("%w: account %s holds its fair share (%d) of this node's capacity; retry with backoff", errThrottled, account, share))
		}
	}
	if len(l.refused) > 0 {
		delete(l.refused, account)
	}
	l.inFlight[account]++
	l.total++
	return slot{l: l, account: account}, nil
}

// release gives the slot back (once).
func (sl slot) release() {
	l := sl.l
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.inFlight[sl.account]--; l.inFlight[sl.account] <= 0 {
		delete(l.inFlight, sl.account)
	}
}

// DefaultMaxInFlight is a node's default bound on concurrent API requests.
const DefaultMaxInFlight = 512

// admit applies the account's rate limit for the action's class (the face's
// route names it) and fair admission; it returns the slot's release.
func (s *Server) admit(account, class string) (slot, error) {
	now := s.now()
	if err := s.limits.allowRate(account, class, s.cfg.Service.RateLimit(account, class), now); err != nil {
		return slot{}, err
	}
	return s.limits.admit(account, now)
}
