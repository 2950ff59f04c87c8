package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Issue 2: a fourth node started with --join becomes a member and the leader
// adds it to Raft; it serves ciphertexts made before it existed. A node
// started with the cluster's --bootstrap-expect as well joins the existing
// cluster instead of bootstrapping another.
func TestMembership_NodeStartedWithJoinIsAddedToRaftAndDecryptsOlderCiphertexts(t *testing.T) {
	c := startCluster(t, "n", 3, "")
	c.Init()
	key := c.createKey(c.Nodes[0], "made before n4 and n5")
	plain := b64("older than the new nodes")
	ctx := `{"app":"membership"}`
	old := []sealed{{Blob: c.encrypt(c.Nodes[1], key, plain, ctx), Context: ctx, Plaintext: plain, KeyID: key}}

	for _, tc := range []struct {
		id, zone string
		expect   int
		joinVia  *kmsdNode
	}{
		{"n4", "zone-d", 0, c.Nodes[0]}, // only --join
		{"n5", "zone-e", 3, c.Nodes[1]}, // --join and the same --bootstrap-expect
	} {
		t.Run(tc.id, func(t *testing.T) {
			n := newNode(t, tc.id, tc.zone, c.RootKey)
			n.Join = []string{tc.joinVia.Gossip}
			n.Expect = tc.expect
			n.Start()
			c.Nodes = append(c.Nodes, n)
			leaderID := mustStatus(t, c.Leader()).NodeId

			eventually(t, 30*time.Second, tc.id+" added to Raft by the leader", func() error {
				s, err := getStatus(c.Leader())
				if err != nil {
					return err
				}
				m, ok := s.member(tc.id)
				if !ok || !m.RaftMember || !m.Alive || m.Zone != tc.zone {
					return fmt.Errorf("leader's view of %s: %+v (found %v)", tc.id, m, ok)
				}
				return nil
			})
			c.WaitReady(30 * time.Second)
			s := mustStatus(t, n)
			if s.Leader != leaderID && s.Leader != mustStatus(t, c.Leader()).NodeId {
				t.Fatalf("%s follows %q, not the cluster's leader", tc.id, s.Leader)
			}
			if len(s.Members) != len(c.Nodes) {
				t.Fatalf("%s sees %d members, want %d: %+v", tc.id, len(s.Members), len(c.Nodes), s.Members)
			}

			checkDecrypts(t, []string{"--credentials", c.CredsFile, "--endpoint", n.Endpoint()}, tc.id, old)
			// It serves writes too (forwarded to the leader), and a key it
			// creates is usable elsewhere at once.
			k := c.createKey(n, "created through "+tc.id)
			p := b64("from " + tc.id)
			blob := c.encrypt(c.Nodes[0], k, p, "")
			checkDecrypts(t, []string{"--credentials", c.CredsFile, "--endpoint", n.Endpoint()}, tc.id,
				[]sealed{{Blob: blob, Plaintext: p, KeyID: k}})
		})
	}

	// Still one cluster: every node names the same leader and the leader
	// counts five Raft members.
	s := mustStatus(t, c.Leader())
	members := 0
	for _, m := range s.Members {
		if m.RaftMember {
			members++
		}
	}
	if members != 5 {
		t.Fatalf("leader counts %d Raft members, want 5: %+v", members, s.Members)
	}
}

// Issue 2: SIGTERM on a follower exits 0; restarted on its data dir it
// rejoins with its state and catches up with what was written meanwhile.
func TestRestart_FollowerRejoinsWithStateAndCatchesUp(t *testing.T) {
	c := startCluster(t, "n", 3, "")
	c.Init()
	leader := c.Leader()
	f := c.Followers()[0]

	key1 := c.createKey(leader, "before the restart")
	p1 := b64("sealed before the restart")
	blobs := []sealed{{Blob: c.encrypt(f, key1, p1, `{"when":"before"}`), Context: `{"when":"before"}`, Plaintext: p1, KeyID: key1}}

	code, took := f.Terminate(30 * time.Second)
	if code != 0 {
		t.Fatalf("%s exited %d on SIGTERM, want 0", f.ID, code)
	}
	t.Logf("%s stopped in %s", f.ID, took)

	// Writes while it is down: new keys, a new version of the old key (the
	// new version encrypts), an alias.
	var keys []string
	for i := range 5 {
		keys = append(keys, c.createKey(leader, fmt.Sprintf("while %s was down #%d", f.ID, i)))
	}
	c.Ctl(leader, "CreateKeyVersion", "--KeyId", key1).ok(t, nil)
	c.Ctl(leader, "CreateAlias", "--AliasName", "alias/while-down", "--KeyId", keys[0]).ok(t, nil)
	p2 := b64("sealed while the follower was down")
	blobs = append(blobs,
		sealed{Blob: c.encrypt(leader, "alias/while-down", p2, ""), Plaintext: p2, KeyID: keys[0]},
		sealed{Blob: c.encrypt(leader, key1, p2, ""), Plaintext: p2, KeyID: key1})
	want := c.Ctl(leader, "ListKeys", "--PageSize", "100").ok(t, nil).Stdout

	f.Start()
	eventually(t, 30*time.Second, f.ID+" healthy after restart", func() error {
		if code, body := healthCode(f); code != http.StatusOK {
			return fmt.Errorf("/v1/health %d %s", code, body)
		}
		return nil
	})
	// Healthy means caught up (issue 2): what was written while it was
	// down is visible on it now, without waiting for an index.
	got := c.Ctl(f, "ListKeys", "--PageSize", "100").ok(t, nil).Stdout
	if !jsonEqualIgnoringRequestID(t, want, got) {
		t.Fatalf("%s reported healthy but lists other keys than the leader:\nleader %s\n%s %s", f.ID, want, f.ID, got)
	}
	checkDecrypts(t, []string{"--credentials", c.CredsFile, "--endpoint", f.Endpoint()}, f.ID, blobs)
	var d struct{ KeyMetadata struct{ KeyId string } }
	c.Ctl(f, "DescribeKey", "--KeyId", "alias/while-down").ok(t, &d)
	if d.KeyMetadata.KeyId != keys[0] {
		t.Fatalf("alias/while-down on %s names %s, want %s", f.ID, d.KeyMetadata.KeyId, keys[0])
	}
	c.WaitReady(30 * time.Second)
}

// Issue 2: SIGTERM on the leader exits 0 and hands leadership over: another
// node leads quickly and writes resume; crypto on the others never stops.
// Removed from Raft once gone past --dead-server-timeout, then restarted on
// its data dir, the old leader is added again and catches up.
func TestRestart_LeaderSIGTERMHandsOverAndWritesResume(t *testing.T) {
	c := startCluster(t, "n", 3, "")
	c.Init()
	old := c.Leader()
	key := c.createKey(old, "before the hand-over")
	p := b64("sealed under the first leader")
	blobs := []sealed{{Blob: c.encrypt(old, key, p, ""), Plaintext: p, KeyID: key}}
	var others []*kmsdNode
	for _, n := range c.Nodes {
		if n != old {
			others = append(others, n)
		}
	}

	start := time.Now()
	code, took := old.Terminate(30 * time.Second)
	if code != 0 {
		t.Fatalf("leader %s exited %d on SIGTERM, want 0", old.ID, code)
	}
	t.Logf("leader %s stopped in %s", old.ID, took)

	var newLeader *kmsdNode
	eventually(t, 5*time.Second, "a new leader that both remaining nodes follow", func() error {
		ids := map[string]bool{}
		for _, n := range others {
			s, err := getStatus(n)
			if err != nil {
				return err
			}
			if s.Leader == "" || s.Leader == old.ID {
				return fmt.Errorf("%s sees leader %q", n.ID, s.Leader)
			}
			ids[s.Leader] = true
			if s.RaftState == "Leader" {
				newLeader = n
			}
		}
		if len(ids) != 1 || newLeader == nil {
			return fmt.Errorf("no agreed leader among the remaining nodes: %v", ids)
		}
		return nil
	})
	t.Logf("new leader %s after %s", newLeader.ID, time.Since(start))

	// Writes resume through either remaining node.
	var key2 string
	for _, n := range others {
		eventually(t, 5*time.Second, "a write through "+n.ID, func() error {
			var out struct{ KeyMetadata struct{ KeyId string } }
			r := c.Ctl(n, "CreateKey", "--DKMSInstanceId", c.Creds.InstanceId, "--Description", "after the hand-over")
			if r.Code != 0 {
				return fmt.Errorf("%s", r)
			}
			r.ok(t, &out)
			key2 = out.KeyMetadata.KeyId
			return nil
		})
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("writes resumed %s after SIGTERM of the leader", d)
	}
	p2 := b64("sealed under the second leader")
	blobs = append(blobs, sealed{Blob: c.encrypt(others[0], key2, p2, ""), Plaintext: p2, KeyID: key2})
	for _, n := range others {
		checkDecrypts(t, []string{"--credentials", c.CredsFile, "--endpoint", n.Endpoint()}, n.ID, blobs)
	}

	// It left gossip: the others see it gone, not alive.
	eventually(t, 10*time.Second, old.ID+" seen gone by the others", func() error {
		for _, n := range others {
			s, err := getStatus(n)
			if err != nil {
				return err
			}
			if m, ok := s.member(old.ID); ok && m.Alive {
				return fmt.Errorf("%s still sees %s alive: %+v", n.ID, old.ID, m)
			}
		}
		return nil
	})

	// Gone past --dead-server-timeout (5s), it is removed from Raft.
	eventually(t, 20*time.Second, old.ID+" removed from the Raft configuration", func() error {
		s, err := getStatus(newLeader)
		if err != nil {
			return err
		}
		if m, ok := s.member(old.ID); ok && m.RaftMember {
			return fmt.Errorf("leader %s still has %s in Raft: %+v", newLeader.ID, old.ID, m)
		}
		return nil
	})

	// Back on its data dir, it is added again, with its state, and catches
	// up.
	old.Start()
	c.WaitReady(30 * time.Second)
	checkDecrypts(t, []string{"--credentials", c.CredsFile, "--endpoint", old.Endpoint()}, old.ID, blobs)
	want := c.Ctl(newLeader, "ListKeys").ok(t, nil).Stdout
	got := c.Ctl(old, "ListKeys").ok(t, nil).Stdout
	if !jsonEqualIgnoringRequestID(t, want, got) {
		t.Fatalf("restarted %s lists other keys than the leader:\nleader %s\n%s %s", old.ID, want, old.ID, got)
	}
}

// Issue 2 (/v1/health: ready means "its root key is the cluster's") and
// issue 9 point 7: a node started with another root key joins gossip but
// never Raft (the cluster port refuses its key, and the leader adds only
// members that pass it); it reports itself unhealthy with the reason and
// answers every request with 503 ServiceUnavailable.RootKeyMismatch, so it
// neither serves crypto nor lets a write through.
func TestMembership_NodeWithOtherRootKeyIsUnhealthyAndServesNothing(t *testing.T) {
	c := startCluster(t, "n", 3, "")
	c.Init()
	key := c.createKey(c.Nodes[0], "the cluster's key")
	p := b64("sealed under the right root key")
	blob := c.encrypt(c.Nodes[1], key, p, "")

	bad := newNode(t, "n4", "zone-d", newRootKeyFile(t))
	bad.Join = []string{c.Nodes[0].Gossip}
	bad.Start()
	eventually(t, 30*time.Second, "n4 knows the cluster refuses its root key", func() error {
		code, body := healthCode(bad)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "root key") {
			return fmt.Errorf("GET /v1/health on n4 = %d %s, want 503 naming the root key", code, body)
		}
		return nil
	})
	if s, err := getStatus(bad); err != nil || s.Leader != "" || s.Initialized {
		t.Fatalf("n4 status: %+v, %v; want no leader and no catalogue", s, err)
	}

	r := c.Ctl(bad, decryptArgs(blob, "")...)
	if strings.Contains(r.Stdout, p) || r.serviceError(t) != "ServiceUnavailable.RootKeyMismatch" {
		t.Fatalf("Decrypt on a node with the wrong root key:\n%s", r)
	}
	r = c.Ctl(bad, "CreateKey", "--DKMSInstanceId", c.Creds.InstanceId, "--Description", "through the wrong root key")
	if r.serviceError(t) != "ServiceUnavailable.RootKeyMismatch" {
		t.Fatalf("CreateKey on a node with the wrong root key:\n%s", r)
	}
	// The cluster is unaffected, and n4 is in no Raft configuration.
	for _, n := range c.Nodes {
		checkDecrypts(t, []string{"--credentials", c.CredsFile, "--endpoint", n.Endpoint()}, n.ID, []sealed{{Blob: blob, Plaintext: p, KeyID: key}})
		if code, body := healthCode(n); code != http.StatusOK {
			t.Fatalf("%s unhealthy after n4 joined: %d %s", n.ID, code, body)
		}
		s, err := getStatus(n)
		if err != nil {
			t.Fatal(err)
		}
		if m, _ := s.member("n4"); m.RaftMember {
			t.Fatalf("%s lists n4 as a Raft member", n.ID)
		}
	}
}

// Issue 2: when the leader dies (SIGKILL, no hand-over), a new one is
// elected, writes resume, and crypto on the followers never stops.
func TestFailover_LeaderKilledCryptoOnFollowersNeverStops(t *testing.T) {
	c := startCluster(t, "n", 3, "")
	c.Init()
	leader := c.Leader()
	key := c.createKey(leader, "failover")
	p := b64("through the failover")
	blob := c.encrypt(leader, key, p, "")
	followers := c.Followers()

	type tally struct {
		ok   atomic.Int64
		errs chan string
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	tallies := make([]*tally, len(followers))
	for i, f := range followers {
		tl := &tally{errs: make(chan string, 1000)}
		tallies[i] = tl
		cl := c.Client(f)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				r, err := cl.Call(ctx, "Decrypt", map[string]string{"CiphertextBlob": blob})
				cancel()
				var out struct{ Plaintext string }
				if err == nil {
					err = r.Decode(&out)
				}
				if err == nil && out.Plaintext != p {
					err = fmt.Errorf("plaintext %q", out.Plaintext)
				}
				if err != nil {
					select {
					case tl.errs <- fmt.Sprintf("%s: %v", f.ID, err):
					default:
					}
					continue
				}
				tl.ok.Add(1)
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	eventually(t, 10*time.Second, "decrypts flowing on both followers", func() error {
		for i, tl := range tallies {
			if tl.ok.Load() < 5 {
				return fmt.Errorf("%s: %d decrypts", followers[i].ID, tl.ok.Load())
			}
		}
		return nil
	})

	killed := time.Now()
	leader.Kill()
	before := make([]int64, len(tallies))
	for i, tl := range tallies {
		before[i] = tl.ok.Load()
	}
	var newLeader *kmsdNode
	eventually(t, 10*time.Second, "a new leader", func() error {
		for _, f := range followers {
			if s, err := getStatus(f); err == nil && s.RaftState == "Leader" {
				newLeader = f
				return nil
			}
		}
		return fmt.Errorf("no leader among %s, %s", followers[0].ID, followers[1].ID)
	})
	for _, f := range followers {
		eventually(t, 10*time.Second, "a write through "+f.ID, func() error {
			if r := c.Ctl(f, "CreateKeyVersion", "--KeyId", key); r.Code != 0 {
				return fmt.Errorf("%s", r)
			}
			return nil
		})
	}
	t.Logf("leader %s killed; %s leads and writes resumed after %s", leader.ID, newLeader.ID, time.Since(killed))
	close(stop)
	wg.Wait()
	stop = make(chan struct{})
	for i, tl := range tallies {
		close(tl.errs)
		var errs []string
		for e := range tl.errs {
			errs = append(errs, e)
		}
		if len(errs) > 0 {
			t.Errorf("Decrypt on %s failed %d times during the failover (%d ok), e.g.:\n%s", followers[i].ID, len(errs), tl.ok.Load(), strings.Join(errs[:min(len(errs), 5)], "\n"))
		}
		if tl.ok.Load() <= before[i] {
			t.Errorf("no Decrypt succeeded on %s between the kill and the new leader's first writes", followers[i].ID)
		}
	}
}

// Issue 2: "a node restarted on its data dir rejoins with its state" — also
// when it comes back on other addresses (a container rescheduled with new
// ports): the leader updates its Raft address and it catches up.
func TestRestart_FollowerOnNewAddressesRejoinsWithState(t *testing.T) {
	c := startCluster(t, "n", 3, "")
	c.Init()
	leader := c.Leader()
	f := c.Followers()[0]
	key := c.createKey(leader, "before the move")
	p := b64("sealed before the move")
	blobs := []sealed{{Blob: c.encrypt(leader, key, p, ""), Plaintext: p, KeyID: key}}

	if code, _ := f.Terminate(30 * time.Second); code != 0 {
		t.Fatalf("%s exited %d on SIGTERM", f.ID, code)
	}
	key2 := c.createKey(leader, "while it moved")
	p2 := b64("sealed while it moved")
	blobs = append(blobs, sealed{Blob: c.encrypt(leader, key2, p2, ""), Plaintext: p2, KeyID: key2})

	oldCluster := f.Cluster
	f.HTTP, f.Cluster, f.Gossip = freeAddr(t), freeAddr(t), freeAddr(t)
	f.Start()
	eventually(t, 30*time.Second, f.ID+" known to the leader at its new cluster address", func() error {
		s, err := getStatus(c.Leader())
		if err != nil {
			return err
		}
		m, ok := s.member(f.ID)
		if !ok || !m.RaftMember || !m.Alive || m.ClusterAddr != f.Cluster || m.HttpAddr != f.HTTP {
			return fmt.Errorf("leader's view of %s: %+v (was at %s, now %s)", f.ID, m, oldCluster, f.Cluster)
		}
		return nil
	})
	c.WaitReady(30 * time.Second)
	checkDecrypts(t, []string{"--credentials", c.CredsFile, "--endpoint", f.Endpoint()}, f.ID, blobs)
	// It takes part in Raft again: a write through it succeeds and it
	// applies writes made elsewhere.
	k3 := c.createKey(f, "through the moved node")
	r, err := c.Client(leader).Call(context.Background(), "UpdateKeyDescription", map[string]string{"KeyId": k3, "Description": "seen by the moved node"})
	if err != nil {
		t.Fatal(err)
	}
	var d struct{ KeyMetadata struct{ Description string } }
	c.Ctl(f, "--min-index", fmt.Sprint(r.Index), "DescribeKey", "--KeyId", k3).ok(t, &d)
	if d.KeyMetadata.Description != "seen by the moved node" {
		t.Fatalf("moved node shows Description %q", d.KeyMetadata.Description)
	}
}
