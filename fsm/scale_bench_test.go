package fsm

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/google/uuid"
)

// BenchmarkCatalogue_HeapPerKey applies b.N CreateKey commands shaped like
// the service's (UUID key and version ids, 60 bytes of wrapped material, a
// description) into one catalogue and reports the live heap each key adds
// (issue 16: a million keys in little memory). Run with a large -benchtime,
// e.g. -benchtime=200000x.
func BenchmarkCatalogue_HeapPerKey(b *testing.B) {
	h := newHarness(b)
	h.init()
	h.mustApply(CmdCreateInstance, CreateInstanceCmd{Instance: Instance{ID: "kst-scale", AccountID: acct, Type: "software", KeyQuota: 1 << 30}})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	wrapped := make([]byte, 60)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id, ver := uuid.NewString(), uuid.NewString()
		h.mustApply(CmdCreateKey, CreateKeyCmd{
			Now: 2000,
			Key: Key{ID: id, AccountID: acct, InstanceID: "kst-scale", Spec: "Aliyun_AES_256", Usage: "ENCRYPT/DECRYPT",
				Origin: "Aliyun_KMS", ProtectionLevel: "SOFTWARE", State: StateEnabled, CreatedAt: 2000,
				Description: fmt.Sprintf("key %d", i)},
			Version: KeyVersion{ID: ver, CreatedAt: 2000, WrappedMaterial: wrapped},
		})
	}
	b.StopTimer()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(h)
	b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/float64(b.N), "heap-B/key")
}
