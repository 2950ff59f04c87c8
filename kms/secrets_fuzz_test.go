package kms

import (
	"encoding/json"
	"testing"
)

// FuzzSecretDocuments feeds the decoders of secrets' client text (filters,
// rotation intervals, extended configuration and its CustomData, values,
// stage lists) and of stored envelopes arbitrary input: they never panic,
// and what they accept keeps its bounds.
func FuzzSecretDocuments(f *testing.F) {
	for _, s := range []string{
		`[{"Key":"SecretName","Values":["db"]}]`, `[{"Key":"TagKey","Values":[]}]`, `null`, `[]`,
		`30d`, `6h`, `21600s`, `-1d`, `9999999999999999999d`, `d`, `+7d`,
		`{"SecretSubType":"RamUserAccessKey","UserName":"app"}`, `{"CustomData":{"a":1}}`, `{}`, `{"a":`,
		`["ACSCurrent","blue"]`, `aGVsbG8=`, "\x01\x00\x05abcde",
	} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if fs, err := ParseSecretFilters(a); err == nil {
			if len(fs) > 10 {
				t.Fatalf("%d filters accepted", len(fs))
			}
			for _, x := range fs {
				if len(x.Values) == 0 || len(x.Values) > 10 || !contains(secretFilterKeys, x.Key) {
					t.Fatalf("filter %+v accepted", x)
				}
			}
		}
		if secs, err := parseSecretRotationInterval(a); err == nil && (secs < MinSecretRotationPeriod || secs > MaxSecretRotationPeriod) {
			t.Fatalf("%q accepted as %d s", a, secs)
		}
		if checkJSONObject(FieldExtendedConfig, a) == nil && len(a) > MaxExtendedConfigSize {
			t.Fatalf("%d bytes of extended config accepted", len(a))
		}
		if checkJSONObject(FieldCustomData, b) == nil {
			if ext, err := withCustomData(a, b); err == nil && ext != "" {
				if len(ext) > MaxExtendedConfigSize || !json.Valid([]byte(ext)) {
					t.Fatalf("withCustomData(%q, %q) = %q", a, b, ext)
				}
			}
		}
		for _, dt := range []string{"", SecretDataText, SecretDataBinary, b} {
			if got, err := checkSecretData(a, dt); err == nil && got != SecretDataText && got != SecretDataBinary {
				t.Fatalf("data type %q accepted as %q", dt, got)
			}
		}
		var stages []string
		if json.Unmarshal([]byte(a), &stages) == nil && checkSecretStages(stages) == nil && len(stages) > MaxSecretStagesPerCall {
			t.Fatalf("%d stages accepted", len(stages))
		}
		if dk, sealed, err := splitSecretEnvelope([]byte(a)); err == nil {
			if 3+len(dk)+len(sealed) != len(a) || len(dk) > secretMaxDataKeyBlob {
				t.Fatalf("envelope of %d bytes split into %d + %d", len(a), len(dk), len(sealed))
			}
		}
	})
}
