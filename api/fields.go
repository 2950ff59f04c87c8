package api

import (
	"errors"
	"strings"

	"github.com/raftkms/raftkms/kms"
)

// paramNames names the core's input fields as this face's clients know
// them: the parameters of the Alibaba RPC API and, for the fields only they
// take, of the operator endpoints. A kms.FieldError is reported with these
// names, so the core never needs to know them. A field missing here is
// reported under its domain name (TestParamNames_CoverEveryField keeps the
// table complete).
var paramNames = map[kms.Field]string{
	kms.FieldKey:                "KeyId",
	kms.FieldDestinationKey:     "DestinationKeyId",
	kms.FieldProtectedResource:  "ProtectedResourceArn",
	kms.FieldKeyVersionID:       "KeyVersionId",
	kms.FieldKeySpec:            "KeySpec",
	kms.FieldKeyUsage:           "KeyUsage",
	kms.FieldOrigin:             "Origin",
	kms.FieldProtectionLevel:    "ProtectionLevel",
	kms.FieldDescription:        "Description",
	kms.FieldAutomaticRotation:  "EnableAutomaticRotation",
	kms.FieldRotationInterval:   "RotationInterval",
	kms.FieldPendingWindowDays:  "PendingWindowInDays",
	kms.FieldDeletionProtection: "EnableDeletionProtection",
	kms.FieldProtectionReason:   "DeletionProtectionDescription",
	kms.FieldAliasName:          "AliasName",
	kms.FieldTags:               "Tags",
	kms.FieldTagKeys:            "TagKeys",
	kms.FieldKeyPolicyName:      "PolicyName",
	kms.FieldKeyPolicy:          "Policy",
	kms.FieldPageNumber:         "PageNumber",
	kms.FieldPageSize:           "PageSize",
	kms.FieldFilters:            "Filters",
	kms.FieldInstanceID:         "KmsInstanceId",
	kms.FieldPublicKey:          "PublicKeyBlob",
	kms.FieldWrappingKeySpec:    "WrappingKeySpec",
	kms.FieldWrappingAlgorithm:  "WrappingAlgorithm",
	kms.FieldEncryptedMaterial:  "EncryptedKeyMaterial",
	kms.FieldImportToken:        "ImportToken",
	kms.FieldMaterialExpiry:     "KeyMaterialExpireUnix",

	kms.FieldPlaintext:     "Plaintext",
	kms.FieldCiphertext:    "CiphertextBlob",
	kms.FieldDataKeySpec:   "KeySpec",
	kms.FieldNumberOfBytes: "NumberOfBytes",
	kms.FieldAlgorithm:     "Algorithm",
	kms.FieldDigest:        "Digest",
	kms.FieldAAD:           "Aad",
	kms.FieldIV:            "Iv",
	kms.FieldPaddingMode:   "PaddingMode",
	kms.FieldKeyPairSpec:   "KeyPairSpec",
	kms.FieldKeyFormat:     "KeyFormat",
	kms.FieldSignature:     "Value",

	kms.FieldUserName:           "UserName",
	kms.FieldRoleName:           "RoleName",
	kms.FieldDisplayName:        "DisplayName",
	kms.FieldComments:           "Comments",
	kms.FieldAccessKeyID:        "UserAccessKeyId",
	kms.FieldAccessKeyStatus:    "Status",
	kms.FieldTrustPolicy:        "AssumeRolePolicyDocument",
	kms.FieldMaxSessionDuration: "MaxSessionDuration",
	kms.FieldRAMPolicyType:      "PolicyType",
	kms.FieldRAMPolicyName:      "PolicyName",
	kms.FieldRoleArn:            "RoleArn",
	kms.FieldSessionName:        "RoleSessionName",
	kms.FieldSessionDuration:    "DurationSeconds",

	kms.FieldNetworkRuleName:      "Name",
	kms.FieldNetworkType:          "Type",
	kms.FieldSourcePrivateIP:      "SourcePrivateIp",
	kms.FieldPermissionPolicyName: "Name",
	kms.FieldPolicyInstance:       "KmsInstance",
	kms.FieldPermissions:          "Permissions",
	kms.FieldResources:            "Resources",
	kms.FieldAccessControlRules:   "AccessControlRules",
	kms.FieldAccessPointName:      "Name",
	kms.FieldAuthenticationMethod: "AuthenticationMethod",
	kms.FieldAccessPointPolicies:  "Policies",
	kms.FieldClientKeyAAP:         "AapName",
	kms.FieldClientKeyID:          "ClientKeyId",
	kms.FieldPassword:             "Password",
	kms.FieldNotBefore:            "NotBefore",
	kms.FieldNotAfter:             "NotAfter",

	kms.FieldSecretName:          "SecretName",
	kms.FieldSecretData:          "SecretData",
	kms.FieldSecretDataType:      "SecretDataType",
	kms.FieldSecretVersionID:     "VersionId",
	kms.FieldSecretVersionStage:  "VersionStage",
	kms.FieldSecretVersionStages: "VersionStages",
	kms.FieldSecretType:          "SecretType",
	kms.FieldEncryptionKey:       "EncryptionKeyId",
	kms.FieldExtendedConfig:      "ExtendedConfig",
	kms.FieldCustomData:          "ExtendedConfig.CustomData",
	kms.FieldSecretPolicy:        "Policy",
	kms.FieldSecretPolicyName:    "PolicyName",
	kms.FieldRecoveryWindowDays:  "RecoveryWindowInDays",
	kms.FieldRemoveFromVersion:   "RemoveFromVersion",
	kms.FieldMoveToVersion:       "MoveToVersion",
	kms.FieldPasswordLength:      "PasswordLength",
	kms.FieldExcludeCharacters:   "ExcludeCharacters",
	// Batch tags and the cloud-shaped actions.
	kms.FieldResourceType: "ResourceType",
	kms.FieldResourceID:   "ResourceId",
	kms.FieldNextToken:    "NextToken",
	kms.FieldVpcID:        "VpcId",
	kms.FieldVSwitchIDs:   "VSwitchIds",
	kms.FieldZoneIDs:      "ZoneIds",
	kms.FieldBindVpcs:     "BindVpcs",
	kms.FieldKMProvider:   "KMProvider",
	kms.FieldRegionID:     "RegionId",
	kms.FieldTag:          "Tag",
	kms.FieldTagKey:       "TagKey",

	kms.FieldCertificateID:      "CertificateId",
	kms.FieldCertificateSubject: "Subject",
	kms.FieldCertificateSANs:    "SubjectAlternativeNames",
	kms.FieldCertificate:        "Certificate",
	kms.FieldCertificateChain:   "CertificateChain",
	kms.FieldCertificateStatus:  "Status",
	kms.FieldMessage:            "Message",
	kms.FieldMessageType:        "MessageType",
	kms.FieldSignatureValue:     "SignatureValue",

	// Fields only the operator endpoints take, named as their bodies and
	// query strings name them.
	kms.FieldInstanceType: "type",
	kms.FieldInstanceName: "name",
	kms.FieldHSMDomain:    "HsmDomain",
	kms.FieldMaxInstances: "MaxInstances",
	kms.FieldKeyQuota:     "KeyQuota",
	kms.FieldAccountID:    "AccountId",
	kms.FieldAccountName:  "name",
	kms.FieldRateClass:    "Class",
	kms.FieldRate:         "Rate",
}

// paramName is the name this face gives a core field.
func paramName(f kms.Field) string {
	if n, ok := paramNames[f]; ok {
		return n
	}
	return string(f)
}

// errorMessage is err's text for a client: a FieldError anywhere in the
// chain names the parameter as this face does.
func errorMessage(err error) string {
	msg := err.Error()
	var fe *kms.FieldError
	if errors.As(err, &fe) {
		msg = strings.Replace(msg, fe.Error(), fe.Message(paramName), 1)
	}
	return msg
}
