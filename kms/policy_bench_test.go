package kms

import (
	"fmt"
	"testing"
)

// A policy with conditions, as stored on a key: what authorization reads on
// every request.
var benchPolicy = fmt.Sprintf(`{"Version":"1","Statement":[`+
	`{"Sid":"root","Effect":"Allow","Principal":{"RAM":["acs:ram::%[1]s:root"]},"Action":["kms:*"],"Resource":["*"]},`+
	`{"Sid":"app","Effect":"Allow","Principal":{"RAM":["acs:ram::%[1]s:user/app","acs:ram::%[1]s:role/worker"]},"Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey"],"Resource":["*"],`+
	`"Condition":{"StringEquals":{"kms:EncryptionContext:tenant":["a","b"]}}},`+
	`{"Sid":"deny","Effect":"Deny","Principal":{"RAM":["*"]},"Action":["kms:ScheduleKeyDeletion"],"Resource":["*"]}]}`, "1234567890")

func BenchmarkParsePolicy_EveryRequest(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if len(parsePolicyText(benchPolicy)) != 3 {
			b.Fatal("not 3 statements")
		}
	}
}

func BenchmarkParsePolicy_Memo(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if len(parsePolicy(benchPolicy)) != 3 {
				panic("not 3 statements")
			}
		}
	})
}
