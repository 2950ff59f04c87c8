package kms

import (
	"errors"
	"strings"
	"testing"

	kcrypto "github.com/raftkms/raftkms/crypto"
)

// A refused input names the domain field, never a face's parameter, and is
// still the package's sentinel for errors.Is.
func TestFieldError_NamesTheDomainField(t *testing.T) {
	e := newSvcEnv(t)
	k := e.createKey(t, CreateKeyInput{DKMSInstanceID: e.inst})
	ec := e.createKey(t, CreateKeyInput{DKMSInstanceID: e.inst, KeySpec: kcrypto.SpecECP256, KeyUsage: UsageSignVerify})
	arn := e.svc.KeyArn(k)
	cases := []struct {
		name  string
		call  func() error
		field Field
		want  error
	}{
		{"a sign without a version", func() error {
			_, err := e.svc.AsymmetricSign(bg, e.caller, SignInput{KeyVersionRef: KeyVersionRef{Key: ec.ID}, Algorithm: kcrypto.AlgECDSASHA256, Digest: make([]byte, 32)})
			return err
		}, FieldKeyVersionID, ErrMissingParameter},
		{"a deletion without a window", func() error {
			_, err := e.svc.ScheduleKeyDeletion(bg, e.caller, KeyDeletionInput{Key: k.ID})
			return err
		}, FieldPendingWindowDays, ErrMissingParameter},
		{"a protection change that says neither on nor off", func() error {
			_, err := e.svc.SetDeletionProtection(bg, e.caller, DeletionProtectionInput{KeyArn: arn})
			return err
		}, FieldDeletionProtection, ErrMissingParameter},
		{"a rotation policy that says neither on nor off", func() error {
			_, err := e.svc.UpdateRotationPolicy(bg, e.caller, RotationPolicyInput{Key: k.ID, Interval: "30d"})
			return err
		}, FieldAutomaticRotation, ErrMissingParameter},
		{"a malformed destination ARN", func() error {
			blob, err := e.svc.Encrypt(bg, e.caller, EncryptInput{Key: k.ID, Plaintext: []byte("x")})
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.svc.ReEncrypt(bg, e.caller, ReEncryptInput{Ciphertext: blob.CiphertextBlob, DestinationKey: "acs:kms:x"})
			return err
		}, FieldDestinationKey, ErrInvalidParameter},
		{"a data key spec", func() error {
			_, err := e.svc.GenerateDataKey(bg, e.caller, DataKeyInput{Key: k.ID, KeySpec: "AES_512"})
			return err
		}, FieldDataKeySpec, ErrInvalidParameter},
		{"a user policy of another type", func() error {
			_, err := e.svc.AttachPolicy(bg, e.caller, PolicyAttachmentInput{To: AttachToUser, Name: "u", PolicyType: "Custom", PolicyName: PolicyFullAccess})
			return err
		}, FieldRAMPolicyType, ErrInvalidParameter},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field || !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want a FieldError on %q wrapping %v", err, c.field, c.want)
			}
			if !strings.Contains(err.Error(), string(c.field)) {
				t.Fatalf("%q does not name the field %q", err, c.field)
			}
		})
	}
}

// A face renames the field and keeps everything else of the message.
func TestFieldError_MessageUsesTheFacesName(t *testing.T) {
	missingOne := missing(FieldKeyVersionID).(*FieldError)
	if got, want := missingOne.Message(func(Field) string { return "KeyVersionId" }), `missing parameter: the parameter "KeyVersionId" is needed but not provided`; got != want {
		t.Errorf("Message = %q, want %q", got, want)
	}
	bad := invalid(FieldPendingWindowDays, "must be between 7 and 366").(*FieldError)
	if got, want := bad.Message(func(Field) string { return "PendingWindowInDays" }), `invalid parameter: the parameter "PendingWindowInDays" is not valid: must be between 7 and 366`; got != want {
		t.Errorf("Message = %q, want %q", got, want)
	}
}

func TestFieldError_ReasonNamesOtherFieldsAsTheFaceDoes(t *testing.T) {
	err := invalid(FieldProtectionLevel, "HSM keys live in a hardware KMS instance ("+FieldInstanceID.Ref()+")")
	face := func(f Field) string {
		return map[Field]string{FieldProtectionLevel: "ProtectionLevel", FieldInstanceID: "DKMSInstanceId"}[f]
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("not a FieldError: %v", err)
	}
	if got, want := fe.Message(face), `invalid parameter: the parameter "ProtectionLevel" is not valid: HSM keys live in a hardware KMS instance (DKMSInstanceId)`; got != want {
		t.Errorf("face's message:\n got %s\nwant %s", got, want)
	}
	if got, want := err.Error(), `invalid parameter: the parameter "protection level" is not valid: HSM keys live in a hardware KMS instance (instance id)`; got != want {
		t.Errorf("domain message:\n got %s\nwant %s", got, want)
	}
	if strings.Contains(err.Error(), "\x00") {
		t.Errorf("a marker leaked into the text: %q", err.Error())
	}
}
