package api_test

import (
	"testing"

	"github.com/google/uuid"
)

// TestDryRun_ReportsWhatTheRealCallWould: DryRunOperationError means "the
// request would have succeeded" (api/actions.go, dryRun: "it got this far,
// so the parameters and permissions are in order"). The handlers check
// DryRun before calling the service, so the key is never resolved and the
// service's own checks never run: a dry run against a key that does not
// exist, a disabled key, or without Plaintext is answered "would have
// succeeded". Each request below must fail as the real call fails.
func TestDryRun_ReportsWhatTheRealCallWould(t *testing.T) {
	f := newFixture(t)
	unknown := uuid.NewString()
	cases := []errCase{
		{"Encrypt/unknown key", "Encrypt", map[string]string{"KeyId": unknown, "Plaintext": "eA=="}, 404, keyNotFound},
		{"Encrypt/unknown alias", "Encrypt", map[string]string{"KeyId": "alias/no-such-alias", "Plaintext": "eA=="}, 404, aliasNotFound},
		{"Encrypt/missing KeyId", "Encrypt", map[string]string{"Plaintext": "eA=="}, 400, missingParam},
		{"Encrypt/missing Plaintext", "Encrypt", map[string]string{"KeyId": "$KEY"}, 400, missingParam},
		{"Encrypt/Plaintext over 6144 bytes", "Encrypt", map[string]string{"KeyId": "$KEY", "Plaintext": string(make([]byte, 6145))}, 400, invalidParam},
		{"Encrypt/disabled key", "Encrypt", map[string]string{"KeyId": "$DISABLED", "Plaintext": "eA=="}, 409, disabledCode},
		{"Decrypt/missing CiphertextBlob", "Decrypt", nil, 400, missingParam},
		{"Decrypt/damaged blob", "Decrypt", map[string]string{"CiphertextBlob": "AAAA"}, 400, invalidCipher},
		{"Decrypt/wrong context", "Decrypt", map[string]string{"CiphertextBlob": "$BLOB", "EncryptionContext": `{"purpose":"other"}`}, 400, invalidCipher},
		{"Decrypt/disabled key", "Decrypt", map[string]string{"CiphertextBlob": "$DISABLED_BLOB", "EncryptionContext": fixtureContext}, 409, disabledCode},
		{"GenerateDataKey/unknown key", "GenerateDataKey", map[string]string{"KeyId": unknown}, 404, keyNotFound},
		{"GenerateDataKey/disabled key", "GenerateDataKey", map[string]string{"KeyId": "$DISABLED"}, 409, disabledCode},
		{"GenerateDataKeyWithoutPlaintext/unknown key", "GenerateDataKeyWithoutPlaintext", map[string]string{"KeyId": unknown}, 404, keyNotFound},
		{"ReEncrypt/unknown destination", "ReEncrypt", map[string]string{"CiphertextBlob": "$BLOB", "SourceEncryptionContext": fixtureContext, "DestinationKeyId": unknown}, 404, keyNotFound},
		{"ReEncrypt/missing DestinationKeyId", "ReEncrypt", map[string]string{"CiphertextBlob": "$BLOB", "SourceEncryptionContext": fixtureContext}, 400, missingParam},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := f.hash()
			p := f.expand(tc.params)
			p["DryRun"] = "true"
			_, err := f.call(t, tc.action, p)
			wantAPIError(t, err, tc.status, tc.code)
			if f.hash() != before {
				t.Error("the catalogue changed")
			}
		})
	}
}
