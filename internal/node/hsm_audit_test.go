package node

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// A hardware-key request that reaches a node without the domain is served
// by a node with it; the receiving node's audit line says so, and no second
// line is written for the forwarded work.
func TestHSM_ForwardedRequestIsAuditedOnceAndMarked(t *testing.T) {
	domainKey := randomKey(t)
	c := newHSMCluster(t, []hsmNodeSpec{{token: "a", domainKey: domainKey}, {}, {}}, 3)
	logs := []string{filepath.Join(t.TempDir(), "n1.audit"), filepath.Join(t.TempDir(), "n3.audit")}
	for i, idx := range []int{0, 2} {
		c.stop(idx)
		c.cfgs[idx].AuditLog = logs[i]
		c.restart(idx)
	}
	c.waitHealthy()
	c.waitHSM("n1", "ok")
	inst := c.createHardwareInstance(0)
	key := c.createHWKey(0, inst, "Aliyun_AES_256", "")
	enc := c.mustCall(2, "Encrypt", map[string]string{"KeyId": key.id, "Plaintext": "YXVkaXQ="})
	reqID := enc["RequestId"].(string)

	lines := func(path string) []map[string]any {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var out []map[string]any
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		return out
	}
	var found map[string]any
	for _, l := range lines(logs[1]) {
		if l["request_id"] == reqID {
			found = l
		}
	}
	if found == nil {
		t.Fatal("n3 wrote no line for the Encrypt it received")
	}
	if found["forwarded_to"] != "n1" || found["action"] != "Encrypt" || found["code"] != "OK" {
		t.Fatalf("n3's line = %v, want Encrypt OK forwarded_to n1", found)
	}
	for _, l := range lines(logs[0]) {
		if l["request_id"] == reqID || l["action"] == "Encrypt" {
			t.Fatalf("the node that did the HSM work wrote a line of its own: %v", l)
		}
	}
}
