package kms

// Field names an input of the service core in the domain's words, not in
// any face's. A face (the Alibaba RPC API, the operator endpoints, faces to
// come) maps each field to its own parameter name when it reports a
// FieldError; the value of a Field is what an error says when no face
// renamed it (logs, tests of the core).
type Field string

// Inputs of keys and their versions.
const (
	FieldKey                Field = "key"                // a key id, alias or ARN naming the key to act on
	FieldDestinationKey     Field = "destination key"    // the key ReEncrypt seals under
	FieldProtectedResource  Field = "protected resource" // the ARN of a key whose deletion protection changes
	FieldKeyVersionID       Field = "key version id"
	FieldKeySpec            Field = "key spec"           // Aliyun_AES_256, RSA_2048, ...
	FieldKeyUsage           Field = "key usage"          // ENCRYPT/DECRYPT or SIGN/VERIFY
	FieldOrigin             Field = "origin"             // Aliyun_KMS or EXTERNAL
	FieldProtectionLevel    Field = "protection level"   // SOFTWARE or HSM
	FieldDescription        Field = "description"        // of a key or a role
	FieldAutomaticRotation  Field = "automatic rotation" // whether a key rotates by itself
	FieldRotationInterval   Field = "rotation interval"
	FieldPendingWindowDays  Field = "pending window days" // days before a scheduled deletion
	FieldDeletionProtection Field = "deletion protection" // whether a key is protected from deletion
	FieldProtectionReason   Field = "protection reason"   // the description of a deletion protection
	FieldAliasName          Field = "alias name"
	FieldTags               Field = "tags"
	FieldTagKeys            Field = "tag keys"
	FieldKeyPolicyName      Field = "key policy name" // always "default"
	FieldKeyPolicy          Field = "key policy"      // the policy document of a key
	FieldPageNumber         Field = "page number"
	FieldPageSize           Field = "page size"
	FieldFilters            Field = "filters"       // of ListKeys
	FieldInstanceID         Field = "instance id"   // a KMS instance
	FieldInstanceType       Field = "instance type" // software or hardware
	FieldInstanceName       Field = "instance name"
	FieldHSMDomain          Field = "hsm domain"    // of a hardware instance
	FieldMaxInstances       Field = "max instances" // an account's instance limit
	FieldKeyQuota           Field = "key quota"     // of a new instance
	FieldPublicKey          Field = "public key"    // a caller's RSA public key (DER)
	FieldWrappingKeySpec    Field = "wrapping key spec"
	FieldWrappingAlgorithm  Field = "wrapping algorithm"
	FieldEncryptedMaterial  Field = "encrypted material" // imported key material, wrapped
	FieldImportToken        Field = "import token"
	FieldMaterialExpiry     Field = "material expiry" // Unix seconds, 0: never
	FieldRateClass          Field = "rate class"      // symmetric, asymmetric, read, write
	FieldRate               Field = "rate"            // requests per second
	FieldAccountID          Field = "account id"
	FieldAccountName        Field = "account name"
)

// Inputs of cryptographic operations.
const (
	FieldPlaintext     Field = "plaintext"
	FieldCiphertext    Field = "ciphertext"      // a ciphertext blob
	FieldDataKeySpec   Field = "data key spec"   // AES_256 or AES_128
	FieldNumberOfBytes Field = "number of bytes" // of a data key
	FieldAlgorithm     Field = "algorithm"       // of an asymmetric operation
	FieldDigest        Field = "digest"          // a SHA-256 digest to sign or verify
	FieldSignature     Field = "signature"       // to verify
	FieldAAD           Field = "aad"             // additional authenticated data of an instance call (raw bytes)
	FieldIV            Field = "iv"              // the initialization vector of a ciphertext
	FieldPaddingMode   Field = "padding mode"    // of a block cipher mode
	FieldKeyPairSpec   Field = "key pair spec"   // of a data key pair: RSA_2048, EC_P256, ...
	FieldKeyFormat     Field = "key format"      // of a data key pair: PEM or DER
)

// Inputs of identities (RAM and STS).
const (
	FieldUserName           Field = "user name"
	FieldRoleName           Field = "role name"
	FieldDisplayName        Field = "display name" // of a user
	FieldComments           Field = "comments"     // of a user
	FieldAccessKeyID        Field = "access key id"
	FieldAccessKeyStatus    Field = "access key status"    // Active or Inactive
	FieldTrustPolicy        Field = "trust policy"         // a role's trust policy document
	FieldMaxSessionDuration Field = "max session duration" // of a role, in seconds
	FieldRAMPolicyType      Field = "ram policy type"      // System
	FieldRAMPolicyName      Field = "ram policy name"      // AliyunKMSFullAccess, ...
	FieldRoleArn            Field = "role arn"             // the role AssumeRole assumes
	FieldSessionName        Field = "session name"         // of an assumed role
	FieldSessionDuration    Field = "session duration"     // of temporary credentials, in seconds
)

// Inputs of application access (network rules, permission policies,
// application access points, client keys).
const (
	FieldNetworkRuleName      Field = "network rule name"
	FieldNetworkType          Field = "network type"      // Private
	FieldSourcePrivateIP      Field = "source private ip" // addresses and CIDR blocks
	FieldPermissionPolicyName Field = "permission policy name"
	FieldPolicyInstance       Field = "policy kms instance" // the instance a permission policy covers
	FieldPermissions          Field = "permissions"         // permission templates
	FieldResources            Field = "resources"           // key/..., alias/..., secret/...
	FieldAccessControlRules   Field = "access control rules"
	FieldAccessPointName      Field = "application access point name"
	FieldAuthenticationMethod Field = "authentication method" // ClientKey
	FieldAccessPointPolicies  Field = "application access point policies"
	FieldClientKeyAAP         Field = "client key aap" // the AAP a client key belongs to
	FieldClientKeyID          Field = "client key id"
	FieldPassword             Field = "password" // protects a client key's PKCS#12
	FieldNotBefore            Field = "not before"
	FieldNotAfter             Field = "not after"
)

// Inputs of secrets.
const (
	FieldSecretName          Field = "secret name"
	FieldSecretData          Field = "secret data"
	FieldSecretDataType      Field = "secret data type" // text or binary
	FieldSecretVersionID     Field = "secret version id"
	FieldSecretVersionStage  Field = "secret version stage"  // a stage label to read or move
	FieldSecretVersionStages Field = "secret version stages" // the stages a new version gets
	FieldSecretType          Field = "secret type"           // Generic or RAMCredentials
	FieldEncryptionKey       Field = "encryption key"        // the key whose data keys seal a secret
	FieldExtendedConfig      Field = "extended config"
	FieldCustomData          Field = "custom data" // ExtendedConfig.CustomData of UpdateSecret
	FieldSecretPolicy        Field = "secret policy"
	FieldSecretPolicyName    Field = "secret policy name" // always "default"
	FieldRecoveryWindowDays  Field = "recovery window days"
	FieldRemoveFromVersion   Field = "remove from version"
	FieldMoveToVersion       Field = "move to version"
	FieldPasswordLength      Field = "password length"
	FieldExcludeCharacters   Field = "exclude characters"
)

// Inputs of the batch tag actions and of the cloud-shaped actions
// (batchtags.go, cloud.go).
const (
	FieldResourceType Field = "resource type" // key, secret, certificate
	FieldResourceID   Field = "resource id"
	FieldNextToken    Field = "next token"
	FieldVpcID        Field = "vpc id"      // a network rule's name
	FieldVSwitchIDs   Field = "vswitch ids" // blocks of that rule
	FieldZoneIDs      Field = "zone ids"    // cluster zone names
	FieldBindVpcs     Field = "bind vpcs"
	FieldKMProvider   Field = "km provider"
	FieldRegionID     Field = "region id"
	FieldTag          Field = "tag"     // the batch actions' Tag list
	FieldTagKey       Field = "tag key" // the batch actions' TagKey list
)

// Inputs of certificates.
const (
	FieldCertificateID      Field = "certificate id"
	FieldCertificateSubject Field = "certificate subject" // a distinguished name or a JSON object of its attributes
	FieldCertificateSANs    Field = "certificate sans"    // subject alternative names
	FieldCertificate        Field = "certificate"         // PEM, issued by a CA
	FieldCertificateChain   Field = "certificate chain"   // PEM
	FieldCertificateStatus  Field = "certificate status"  // ACTIVE, INACTIVE or REVOKED
	FieldMessage            Field = "message"             // to sign or verify: the message or its digest
	FieldMessageType        Field = "message type"        // RAW or DIGEST
	FieldSignatureValue     Field = "signature value"     // a certificate signature to verify
)
