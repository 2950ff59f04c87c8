package cluster

import (
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestMemberlistConfig_ProductionProbesEveryTwoSecondsAndKeepsSuspicion(t *testing.T) {
	c := &Cluster{logger: hclog.NewNullLogger()}
	mc, err := c.memberlistConfig(Config{Meta: Meta{ID: "n1"}, BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if mc.ProbeInterval != 2*time.Second || mc.GossipInterval != 500*time.Millisecond {
		t.Errorf("probe %v gossip %v, want 2s and 500ms", mc.ProbeInterval, mc.GossipInterval)
	}
	// The suspicion rules (Lifeguard's multiplier, confirmations) stay
	// memberlist's LAN defaults; only the probe period changed.
	if mc.SuspicionMult != 4 || mc.SuspicionMaxTimeoutMult != 6 || mc.ProbeTimeout != 500*time.Millisecond {
		t.Errorf("suspicion mult %d max mult %d probe timeout %v, want the LAN defaults 4, 6, 500ms",
			mc.SuspicionMult, mc.SuspicionMaxTimeoutMult, mc.ProbeTimeout)
	}
}

func TestMemberlistConfig_FastKeepsTestTimers(t *testing.T) {
	c := &Cluster{logger: hclog.NewNullLogger()}
	mc, err := c.memberlistConfig(Config{Meta: Meta{ID: "n1"}, BindAddr: "127.0.0.1:0", Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	if mc.ProbeInterval != 100*time.Millisecond || mc.GossipInterval != 50*time.Millisecond {
		t.Errorf("probe %v gossip %v, want 100ms and 50ms", mc.ProbeInterval, mc.GossipInterval)
	}
}
