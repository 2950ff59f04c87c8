package api

import (
	"testing"

	dkmsapi "github.com/aliyun/alibabacloud-dkms-gcs-go-sdk/openapi-util/protobuf/api"
	"google.golang.org/protobuf/proto"
)

// The error body is the SDK's own api.Error message: its generated code
// decodes every field back, defaults left out included.
func TestEncodeInstanceError_DecodesAsTheSDKsErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		status               int32
		code, msg, requestID string
	}{
		{"not found", 404, "InvalidAction.NotFound", "the instance API's actions arrive in a later release", "9A0F-REQ"},
		{"throttled", 429, "Rejected.Throttling", "slow down", "R2"},
		{"defaults left out", 0, "", "", ""},
		{"negative status (int32 sign extension)", -1, "X", "", ""},
		{"non-ASCII message", 400, "InvalidParameter", "paramètre « KeyId » invalide", "R3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e dkmsapi.Error
			if err := proto.Unmarshal(encodeInstanceError(tc.status, tc.code, tc.msg, tc.requestID), &e); err != nil {
				t.Fatal(err)
			}
			if e.StatusCode != tc.status || e.ErrorCode != tc.code || e.ErrorMessage != tc.msg || e.RequestId != tc.requestID {
				t.Fatalf("decoded %+v", &e)
			}
		})
	}
}

func TestIsActionName_KeepsOnlyPlausibleNames(t *testing.T) {
	for name, want := range map[string]bool{
		"Encrypt": true, "AdvanceGenerateDataKeyPairWithoutPlaintext": true, "": false,
		"Encrypt\n": false, "a b": false, "x-y": false, string(make([]byte, 65)): false,
		"A234567890123456789012345678901234567890123456789012345678901234":  true,
		"A2345678901234567890123456789012345678901234567890123456789012345": false,
	} {
		if got := isActionName(name); got != want {
			t.Errorf("isActionName(%q) = %v, want %v", name, got, want)
		}
	}
}
