package node

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/raftkms/raftkms/client"
	"github.com/raftkms/raftkms/cluster"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/internal/testutil"
)

// finalizeUpgrade posts kmsctl operator upgrade finalize's request through
// node i and returns the HTTP status and the answer.
func (c *testCluster) finalizeUpgrade(i int) (int, map[string]any) {
	c.t.Helper()
	resp, err := c.clients[i].Do(ctxT(c.t), http.MethodPost, "/v1/operator/upgrade", nil, nil, nil)
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode, map[string]any{"Code": apiErr.Code, "Message": apiErr.Message}
	}
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("finalize answer is not JSON: %s", b)
	}
	return resp.StatusCode, m
}

// A server advertising an older log level (n3 here, as a build from before
// levels does: no level at all) closes the gate for writes of a higher
// level — 503 ServiceUnavailable.Upgrading naming it — while level-1 writes
// go on; once it advertises this build's level, the same write succeeds and
// every replica records it.
func TestUpgradeGate_RefusesANewLevelWhileAServerIsBehind(t *testing.T) {
	c := newTestCluster(t, 3)
	setLevel := func(level int) {
		if err := c.nodes[2].Gossip().UpdateMeta(func(m *cluster.Meta) { m.Level = level }); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, "n1 sees n3's level", 10*time.Second, func() bool {
			m, ok := c.nodes[0].Gossip().Member("n3")
			return ok && m.Level == level
		})
	}
	setLevel(0)

	code, ans := c.finalizeUpgrade(0)
	msg, _ := ans["Message"].(string)
	if code != http.StatusServiceUnavailable || ans["Code"] != "ServiceUnavailable.Upgrading" ||
		!strings.Contains(msg, "node n3") || !strings.Contains(msg, "log level 1") {
		t.Fatalf("finalize with n3 behind: HTTP %d %v", code, ans)
	}
	c.createKey(0, "a level-1 write while n3 is behind")
	up, err := c.nodes[0].Service().Upgrade()
	if err != nil || up.ClusterLevel != fsm.BaseLevel || len(up.Behind) != 1 || up.Behind[0].ID != "n3" {
		t.Fatalf("Upgrade() = %+v, %v", up, err)
	}

	setLevel(fsm.LogLevel)
	code, ans = c.finalizeUpgrade(1)
	if code != http.StatusOK || ans["FinalizedLevel"] != float64(fsm.LogLevel) {
		t.Fatalf("finalize with every server at level %d: HTTP %d %v", fsm.LogLevel, code, ans)
	}
	for _, n := range c.nodes {
		testutil.Eventually(t, n.ID()+" records the finalized level", 10*time.Second, func() bool {
			return n.FSM().FinalizedLevel() == fsm.LogLevel
		})
	}
}
