package api_test

import (
	"testing"
)

// The core refuses inputs by domain field (kms.FieldError); this face must
// answer with the Alibaba parameter's name, exactly as the reference does.
func TestFieldErrors_NameTheFaceParameter(t *testing.T) {
	tn := startNode(t)
	key := tn.createKey(t, "fields")
	var enc struct{ CiphertextBlob string }
	tn.must(t, "Encrypt", map[string]string{"KeyId": key, "Plaintext": "c2VjcmV0"}, &enc)
	cases := []struct {
		name   string
		action string
		params map[string]string
		code   string
		msg    string
	}{
		{"a missing key version", "GetPublicKey", map[string]string{"KeyId": key}, "MissingParameter",
			`missing parameter: the parameter "KeyVersionId" is needed but not provided`},
		{"a malformed destination ARN", "ReEncrypt", map[string]string{"CiphertextBlob": enc.CiphertextBlob, "DestinationKeyId": "acs:kms:x"}, "InvalidParameter",
			`invalid parameter: the parameter "DestinationKeyId" is not valid: an ARN has the form acs:kms:<region>:<account>:key/<key id>`},
		{"a short deletion window", "ScheduleKeyDeletion", map[string]string{"KeyId": key, "PendingWindowInDays": "1"}, "InvalidParameter",
			`invalid parameter: the parameter "PendingWindowInDays" is not valid: must be between 7 and 366`},
		{"a protection description too long", "SetDeletionProtection", map[string]string{"ProtectedResourceArn": tn.keyArn(key), "EnableDeletionProtection": "true", "DeletionProtectionDescription": string(make([]byte, 129))}, "InvalidParameter",
			`invalid parameter: the parameter "DeletionProtectionDescription" is not valid: at most 128 characters`},
		{"a data key spec", "GenerateDataKey", map[string]string{"KeyId": key, "KeySpec": "AES_512"}, "InvalidParameter",
			`invalid parameter: the parameter "KeySpec" is not valid: must be AES_256 or AES_128`},
		{"a RAM policy type", "AttachPolicyToUser", map[string]string{"UserName": "u1", "PolicyType": "Custom", "PolicyName": "AliyunKMSFullAccess"}, "InvalidParameter",
			`invalid parameter: the parameter "PolicyType" is not valid: only System policies exist here`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := tn.call(t, c.action, c.params)
			ae := wantAPIError(t, err, 400, c.code)
			if ae.Message != c.msg {
				t.Fatalf("message = %q\nwant      %q", ae.Message, c.msg)
			}
		})
	}
}
