package api

import (
	"testing"

	"github.com/raftkms/raftkms/apispec"
	"github.com/raftkms/raftkms/fsm"
	"github.com/raftkms/raftkms/kms"
)

// The official SDK sends UpdateSecret's ExtendedConfig.CustomData map as
// one query parameter per member; the handler sees the JSON object.
func TestDeclaredOnly_RebuildsAFlattenedJSONParameter(t *testing.T) {
	a, _ := apispec.Lookup("UpdateSecret")
	var got params
	fn := declaredOnly(a, func(c *call) (any, error) { got = c.p; return nil, nil })
	fn(&call{p: params{"SecretName": "s", "ExtendedConfig.CustomData.DBName": "app1", "ExtendedConfig.CustomData.Port": "3306",
		"ExtendedConfig.CustomData.Opts.tls": "on", "ExtendedConfig.Other": "x"}})
	if want := `{"DBName":"app1","Opts":{"tls":"on"},"Port":"3306"}`; got["ExtendedConfig.CustomData"] != want || got["SecretName"] != "s" || len(got) != 2 {
		t.Fatalf("handler saw %v, want SecretName and ExtendedConfig.CustomData %s", got, want)
	}
	// The JSON text itself wins over members.
	fn(&call{p: params{"ExtendedConfig.CustomData": `{"a":"b"}`, "ExtendedConfig.CustomData.c": "d"}})
	if got["ExtendedConfig.CustomData"] != `{"a":"b"}` {
		t.Fatalf("handler saw %v", got)
	}
	// Members that contradict each other make no value.
	fn(&call{p: params{"ExtendedConfig.CustomData.a": "1", "ExtendedConfig.CustomData.a.b": "2"}})
	if _, ok := got["ExtendedConfig.CustomData"]; ok {
		t.Fatalf("handler saw %v, want no ExtendedConfig.CustomData", got)
	}
	// A string parameter is never rebuilt from members.
	a, _ = apispec.Lookup("DescribeSecret")
	fn = declaredOnly(a, func(c *call) (any, error) { got = c.p; return nil, nil })
	fn(&call{p: params{"SecretName.x": "y"}})
	if len(got) != 0 {
		t.Fatalf("handler saw %v, want nothing", got)
	}
}

func TestSecretAnswers_RotationFields(t *testing.T) {
	for _, tc := range []struct {
		sec                      fsm.Secret
		rotation, interval, next string
	}{
		{fsm.Secret{Type: fsm.SecretTypeGeneric}, "Invalid", "", ""},
		{fsm.Secret{Type: fsm.SecretTypeRAMCredentials}, "Disabled", "", ""},
		{fsm.Secret{Type: fsm.SecretTypeRAMCredentials, RotationInterval: 86400, NextRotation: 1}, "Disabled", "86400s", ""},
		{fsm.Secret{Type: fsm.SecretTypeRAMCredentials, AutoRotation: true, RotationInterval: 21600, NextRotation: 1700000000000}, "Enabled", "21600s", "2023-11-14T22:13:20Z"},
	} {
		if r, i, n := secretRotation(&tc.sec), secretInterval(&tc.sec), secretNextRotation(&tc.sec); r != tc.rotation || i != tc.interval || n != tc.next {
			t.Errorf("%+v: AutomaticRotation %q, RotationInterval %q, NextRotationDate %q; want %q %q %q", tc.sec, r, i, n, tc.rotation, tc.interval, tc.next)
		}
	}
}

// Reading a value and listing are reads, every change a write; a random
// password is a read (it changes nothing and names no key).
func TestRPCClass_OfTheSecretsActions(t *testing.T) {
	for action, want := range map[string]string{
		"GetSecretValue": kms.ClassRead, "DescribeSecret": kms.ClassRead, "ListSecrets": kms.ClassRead,
		"ListSecretVersionIds": kms.ClassRead, "GetSecretPolicy": kms.ClassRead, "GetRandomPassword": kms.ClassRead,
		"CreateSecret": kms.ClassWrite, "PutSecretValue": kms.ClassWrite, "UpdateSecret": kms.ClassWrite,
		"UpdateSecretVersionStage": kms.ClassWrite, "DeleteSecret": kms.ClassWrite, "RestoreSecret": kms.ClassWrite,
		"RotateSecret": kms.ClassWrite, "UpdateSecretRotationPolicy": kms.ClassWrite, "SetSecretPolicy": kms.ClassWrite,
	} {
		if got := rpcClass(action); got != want {
			t.Errorf("rpcClass(%s) = %s, want %s", action, got, want)
		}
	}
}
