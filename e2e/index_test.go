package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/raftkms/raftkms/client"
)

// Issue 2: responses to writes carry the Raft index (X-Kms-Index); a request
// carrying X-Kms-Min-Index is served only once the node has applied that
// index, with a bounded wait and then a clear error.
func TestWrites_CarryIndex_MinIndexServedOnlyOnceApplied(t *testing.T) {
	c := startCluster(t, "n", 3, "")
	c.Init()
	leader := c.Leader()
	follower := c.Followers()[0]
	lc, fc := c.Client(leader), c.Client(follower)
	ctx := context.Background()

	// Writes through the leader and through a follower (forwarded) both
	// answer with the index they were applied at, increasing.
	create, err := fc.Call(ctx, "CreateKey", map[string]string{"DKMSInstanceId": c.Creds.InstanceId, "Description": "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if create.Index == 0 || create.Header.Get("X-Kms-Index") == "" {
		t.Fatalf("CreateKey through a follower carries no X-Kms-Index: %v", create.Header)
	}
	var meta struct{ KeyMetadata struct{ KeyId string } }
	create.Decode(&meta)
	key := meta.KeyMetadata.KeyId
	update, err := lc.Call(ctx, "UpdateKeyDescription", map[string]string{"KeyId": key, "Description": "v2"})
	if err != nil {
		t.Fatal(err)
	}
	if update.Index <= create.Index {
		t.Fatalf("UpdateKeyDescription at index %d, not after CreateKey's %d", update.Index, create.Index)
	}
	alias, err := fc.Call(ctx, "CreateAlias", map[string]string{"KeyId": key, "AliasName": "alias/min-index"})
	if err != nil {
		t.Fatal(err)
	}
	if alias.Index <= update.Index {
		t.Fatalf("CreateAlias at index %d, not after %d", alias.Index, update.Index)
	}

	describe := func(cl *client.Client, opts ...client.CallOption) (string, error) {
		r, err := cl.Call(ctx, "DescribeKey", map[string]string{"KeyId": key}, opts...)
		if err != nil {
			return "", err
		}
		var d struct{ KeyMetadata struct{ Description string } }
		r.Decode(&d)
		return d.KeyMetadata.Description, nil
	}

	t.Run("read your write on a follower", func(t *testing.T) {
		w, err := lc.Call(ctx, "UpdateKeyDescription", map[string]string{"KeyId": key, "Description": "v3"})
		if err != nil {
			t.Fatal(err)
		}
		desc, err := describe(fc, client.WithMinIndex(w.Index))
		if err != nil {
			t.Fatal(err)
		}
		if desc != "v3" {
			t.Fatalf("follower with X-Kms-Min-Index %d answered Description %q, want v3", w.Index, desc)
		}
		if s := mustStatus(t, follower); s.AppliedIndex < w.Index {
			t.Fatalf("follower answered at applied index %d < %d", s.AppliedIndex, w.Index)
		}
	})

	t.Run("waits for an index not yet written", func(t *testing.T) {
		next := mustStatus(t, leader).CommitIndex + 1
		type result struct {
			desc string
			err  error
			at   time.Time
		}
		done := make(chan result, 1)
		go func() {
			d, err := describe(fc, client.WithMinIndex(next))
			done <- result{d, err, time.Now()}
		}()
		// The index does not exist yet, so no answer may come.
		select {
		case r := <-done:
			t.Fatalf("follower answered before index %d was written: %q %v", next, r.desc, r.err)
		case <-time.After(700 * time.Millisecond):
		}
		issued := time.Now()
		w, err := lc.Call(ctx, "UpdateKeyDescription", map[string]string{"KeyId": key, "Description": "v4"})
		if err != nil {
			t.Fatal(err)
		}
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("follower did not answer within 10s of index %d being written", w.Index)
		}
		if r.err != nil {
			t.Fatalf("follower refused once index %d (wanted %d) was written: %v", w.Index, next, r.err)
		}
		if w.Index == next && r.desc != "v4" {
			t.Fatalf("follower answered Description %q at min index %d, want the write's v4", r.desc, next)
		}
		if r.at.Before(issued) {
			t.Fatalf("follower answered before the write at index %d was sent", w.Index)
		}
	})

	t.Run("bounded wait then a clear error", func(t *testing.T) {
		far := mustStatus(t, leader).CommitIndex + 1_000_000
		start := time.Now()
		_, err := describe(fc, client.WithMinIndex(far))
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusServiceUnavailable || ae.Code != "ServiceUnavailable.IndexNotReached" || ae.Message == "" {
			t.Fatalf("min index far ahead: want 503 ServiceUnavailable.IndexNotReached, got %v", err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("the wait for an unreachable index took %s: not bounded", d)
		}
		// The same through kmsctl --min-index.
		code := c.Ctl(follower, "--min-index", fmt.Sprint(far), "DescribeKey", "--KeyId", key).serviceError(t)
		if code != "ServiceUnavailable.IndexNotReached" {
			t.Fatalf("kmsctl --min-index far ahead: Code %s", code)
		}
		// A header that is not an index is the client's mistake.
		_, err = describe(fc, client.WithHeader("X-Kms-Min-Index", "soon"))
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest {
			t.Fatalf("X-Kms-Min-Index: soon: want HTTP 400, got %v", err)
		}
	})
}
