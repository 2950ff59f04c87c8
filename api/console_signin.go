package api

import (
	"fmt"
	"sync"
	"time"
)

// Limits on failed console sign-ins, per node. A source IP or an access key
// id with this many failures within signInWindow is refused (429, with
// Retry-After) until the window that holds them ends; the refused attempts
// are not checked against the credentials at all. A success clears its
// access key id's count, never its IP's.
const (
	signInWindow            = 5 * time.Minute
	maxSignInFailuresPerKey = 5
	maxSignInFailuresPerIP  = 20
	// maxSignInTracked bounds the sources and the key ids remembered
	// (each); past it, once ended windows are dropped, sign-ins from
	// sources or for key ids not remembered are refused until windows end
	// (fail closed: forgetting failures would lift the limit).
	maxSignInTracked = 10000
)

// throttledFor is a refusal over a rate limit that says when to retry.
type throttledFor struct {
	wait time.Duration
	what string
}

func (e throttledFor) Error() string {
	return fmt.Sprintf("%s: too many failed console sign-ins %s; retry in %d s", errThrottled, e.what, int((e.wait+time.Second-1)/time.Second))
}

func (e throttledFor) Unwrap() error { return errThrottled }

// signInLimiter counts failed sign-ins in fixed windows.
type signInLimiter struct {
	now   func() time.Time
	mu    sync.Mutex
	byIP  map[string]*failWindow
	byKey map[string]*failWindow
}

type failWindow struct {
	start time.Time
	n     int
}

func newSignInLimiter(now func() time.Time) *signInLimiter {
	return &signInLimiter{now: now, byIP: map[string]*failWindow{}, byKey: map[string]*failWindow{}}
}

// check refuses a sign-in from ip (and, when given, for key) over a limit.
func (l *signInLimiter) check(ip, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if wait := waitOf(l.byIP, ip, maxSignInFailuresPerIP, now); wait > 0 {
		return throttledFor{wait: wait, what: "from this address"}
	}
	if key != "" {
		if wait := waitOf(l.byKey, key, maxSignInFailuresPerKey, now); wait > 0 {
			return throttledFor{wait: wait, what: "for this AccessKeyId"}
		}
	}
	return nil
}

func waitOf(m map[string]*failWindow, k string, limit int, now time.Time) time.Duration {
	w, ok := m[k]
	if !ok {
		if len(m) >= maxSignInTracked {
			pruneWindows(m, now)
			if len(m) >= maxSignInTracked {
				return signInWindow
			}
		}
		return 0
	}
	if end := w.start.Add(signInWindow); now.Before(end) && w.n >= limit {
		return end.Sub(now)
	}
	return 0
}

func pruneWindows(m map[string]*failWindow, now time.Time) {
	for k, w := range m {
		if !now.Before(w.start.Add(signInWindow)) {
			delete(m, k)
		}
	}
}

// failed counts a refused sign-in against ip and key.
func (l *signInLimiter) failed(ip, key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	bump(l.byIP, ip, now)
	if key != "" {
		bump(l.byKey, key, now)
	}
}

func bump(m map[string]*failWindow, k string, now time.Time) {
	w, ok := m[k]
	if !ok || !now.Before(w.start.Add(signInWindow)) {
		if !ok && len(m) >= maxSignInTracked {
			pruneWindows(m, now)
			if len(m) >= maxSignInTracked {
				return // check refuses untracked ones meanwhile
			}
		}
		m[k] = &failWindow{start: now, n: 1}
		return
	}
	w.n++
}

// succeeded clears key's failures.
func (l *signInLimiter) succeeded(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byKey, key)
}
