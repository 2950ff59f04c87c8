package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Issue 9: a kmsd that gets SIGTERM leaves Raft at once — the leader takes it
// out of the configuration within seconds (--dead-server-timeout is an hour
// here, so only the graceful leave can do it) — and no node, the stopping one
// included, logs an [ERROR] line while it goes. Started again on its data
// dir, it is added back as a member.
func TestLeave_SIGTERMLeavesRaftAtOnceWithoutErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		pick func(c *testCluster) *kmsdNode
	}{
		{"follower", func(c *testCluster) *kmsdNode { return c.Followers()[0] }},
		{"leader", func(c *testCluster) *kmsdNode { return c.Leader() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startClusterWith(t, "n", 3, "", []string{"--dead-server-timeout", "1h"})
			c.Init()
			c.createKey(c.Leader(), "before the leave")
			victim := tc.pick(c)
			offsets := map[*kmsdNode]int64{}
			for _, n := range c.Nodes {
				offsets[n] = logSize(t, n)
			}

			if code, took := victim.Terminate(30 * time.Second); code != 0 {
				t.Fatalf("%s exited %d on SIGTERM (after %s), want 0", victim.ID, code, took)
			}
			var others []*kmsdNode
			for _, n := range c.Nodes {
				if n != victim {
					others = append(others, n)
				}
			}
			eventually(t, 5*time.Second, victim.ID+" out of the Raft configuration and seen left by every survivor", func() error {
				for _, n := range others {
					s, err := getStatus(n)
					if err != nil {
						return err
					}
					m, ok := s.member(victim.ID)
					if ok && (m.RaftMember || m.Status != "left") {
						return fmt.Errorf("%s's view of %s: %+v", n.ID, victim.ID, m)
					}
				}
				return nil
			})
			for _, n := range others {
				eventually(t, 10*time.Second, "a write through "+n.ID, func() error {
					if r := c.Ctl(n, "CreateKey", "--DKMSInstanceId", c.Creds.InstanceId); r.Code != 0 {
						return fmt.Errorf("%s", r)
					}
					return nil
				})
			}
			for _, n := range c.Nodes {
				if lines := errorLines(t, n, offsets[n]); len(lines) > 0 {
					t.Errorf("%s logged %d [ERROR] lines after %s got SIGTERM:\n%s", n.ID, len(lines), victim.ID, strings.Join(lines, "\n"))
				}
			}

			victim.Start()
			c.WaitReady(45 * time.Second) // the leader counts it as a Raft member again
			c.createKey(victim, "through the rejoined node")
		})
	}
}

func logSize(t *testing.T, n *kmsdNode) int64 {
	st, err := os.Stat(n.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func errorLines(t *testing.T, n *kmsdNode, offset int64) []string {
	var out []string
	for _, l := range strings.Split(readFrom(n.LogPath, offset), "\n") {
		if strings.Contains(l, "[ERROR]") {
			out = append(out, l)
		}
	}
	return out
}
