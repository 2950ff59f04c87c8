package apispec

// common describes the parameters several actions share: their type and
// one line of documentation. An action's own line comes from here unless
// the action gives one.
var common = map[string]Param{
	"KeyId":                          {Type: String, Doc: "the key: its id, alias/NAME, or the ARN of either"},
	"KeyVersionId":                   {Type: String, Doc: "the key version's id"},
	"Plaintext":                      {Type: String, Doc: "the data (text; Base64 by convention for binary data), at most 6 KiB"},
	"CiphertextBlob":                 {Type: Base64, Doc: "a ciphertext blob as Encrypt returned it"},
	"EncryptionContext":              {Type: JSON, Doc: `a JSON object of strings bound to the ciphertext, e.g. {"purpose":"demo"}`},
	"DryRun":                         {Type: Boolean, Doc: "make every check of the call, do nothing, answer DryRunOperationError"},
	"KeySpec":                        {Type: String, Doc: "data key spec: AES_256 or AES_128"},
	"NumberOfBytes":                  {Type: Integer, Doc: "data key length in bytes, 1 to 1024 (instead of KeySpec)"},
	"PageNumber":                     {Type: Integer, Doc: "page to return, from 1"},
	"PageSize":                       {Type: Integer, Doc: "entries per page, 1 to 100"},
	"AliasName":                      {Type: String, Doc: "alias/NAME (alias/acs/ and alias/aliyun/ are reserved)"},
	"Tags":                           {Type: JSON, Doc: `a JSON array like [{"TagKey":"team","TagValue":"payments"}]`},
	"TagKeys":                        {Type: JSON, Doc: `a JSON array of tag keys like ["team"]`},
	"Description":                    {Type: String, Doc: "free text"},
	"EnableAutomaticRotation":        {Type: Boolean, Doc: "rotate the key automatically"},
	"RotationInterval":               {Type: String, Doc: "time between automatic rotations, e.g. 2592000s (7 to 365 days)"},
	"Algorithm":                      {Type: String, Doc: "RSA_PSS_SHA_256, RSA_PKCS1_SHA_256, ECDSA_SHA_256 (sign); RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1 (encrypt)"},
	"Digest":                         {Type: Base64, Doc: "the SHA-256 digest of the message"},
	"PublicKeyBlob":                  {Type: Base64, Doc: "the public key (DER, Base64) to export the data key under"},
	"WrappingKeySpec":                {Type: String, Doc: "spec of the wrapping public key: RSA_2048"},
	"WrappingAlgorithm":              {Type: String, Doc: "RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1 or RSAES_PKCS1_V1_5"},
	"PolicyName":                     {Type: String, Doc: "the key policy's name: default"},
	"UserName":                       {Type: String, Doc: "the RAM user's name"},
	"RoleName":                       {Type: String, Doc: "the RAM role's name"},
	"UserAccessKeyId":                {Type: String, Doc: "the access key's id"},
	"PolicyType":                     {Type: String, Doc: "System"},
	"BypassPolicyLockoutSafetyCheck": {Type: Boolean, Doc: "set a policy even if it locks the caller out of SetKeyPolicy"},
}

func req(name string) Param { return param(name, true, "") }
func opt(name string) Param { return param(name, false, "") }

// reqDoc and optDoc give the parameter a line of its own for this action.
func reqDoc(name, doc string) Param { return param(name, true, doc) }
func optDoc(name, doc string) Param { return param(name, false, doc) }

func param(name string, required bool, doc string) Param {
	p := common[name]
	p.Name, p.Required = name, required
	if p.Type == "" {
		p.Type = String
	}
	if doc != "" {
		p.Doc = doc
	}
	return p
}

func typed(p Param, t Type) Param { p.Type = t; return p }

const (
	kmsAPI = "KMS"
	ramAPI = "RAM"
	stsAPI = "STS"
)

var keyID = "1234abcd-12ab-34cd-56ef-12345678****"

// table is every action the service answers.
var table = []Action{
	// Keys.
	{Name: "CreateKey", API: kmsAPI, Summary: "create a key (AES-256 by default) in a KMS instance",
		Params: []Param{
			optDoc("DKMSInstanceId", "the KMS instance to create it in (default: the account's default instance)"),
			optDoc("KeySpec", "Aliyun_AES_256 (default), Aliyun_AES_128/192 (HSM), RSA_2048/3072/4096, EC_P256, EC_P256K"),
			optDoc("KeyUsage", "ENCRYPT/DECRYPT (default) or SIGN/VERIFY"),
			optDoc("Origin", "Aliyun_KMS (default) or EXTERNAL (material imported later)"),
			optDoc("ProtectionLevel", "SOFTWARE or HSM (from the instance)"),
			opt("Description"),
			opt("EnableAutomaticRotation"),
			opt("RotationInterval"),
			optDoc("AliasName", "an alias/NAME to create with the key"),
			opt("Tags"),
			optDoc("Policy", "the key policy document (JSON); default: the owner account's RAM policies decide"),
		},
		Example: `--DKMSInstanceId kst-... --Description "my key"`},
	{Name: "DescribeKey", API: kmsAPI, Summary: "show a key's metadata",
		Params: []Param{req("KeyId")}, Example: "--KeyId alias/demo"},
	{Name: "ListKeys", API: kmsAPI, Summary: "list the account's keys",
		Params: []Param{opt("PageNumber"), opt("PageSize"),
			typed(optDoc("Filters", `a JSON array like [{"Key":"KeyState","Values":["Enabled"]}]`), JSON)},
		Example: "--PageSize 50"},
	{Name: "UpdateKeyDescription", API: kmsAPI, Summary: "replace a key's description",
		Params: []Param{req("KeyId"), req("Description")}, Example: `--KeyId alias/demo --Description "payments"`},
	{Name: "EnableKey", API: kmsAPI, Summary: "enable a disabled key",
		Params: []Param{req("KeyId")}, Example: "--KeyId alias/demo"},
	{Name: "DisableKey", API: kmsAPI, Summary: "disable a key: it is refused for cryptography until enabled",
		Params: []Param{req("KeyId")}, Example: "--KeyId alias/demo"},
	{Name: "CreateKeyVersion", API: kmsAPI, Summary: "rotate a key: a new primary version",
		Params: []Param{req("KeyId")}, Example: "--KeyId alias/demo"},
	{Name: "ListKeyVersions", API: kmsAPI, Summary: "list a key's versions",
		Params: []Param{req("KeyId"), opt("PageNumber"), opt("PageSize")}, Example: "--KeyId alias/demo"},
	{Name: "DescribeKeyVersion", API: kmsAPI, Summary: "show one key version",
		Params: []Param{req("KeyId"), req("KeyVersionId")}, Example: "--KeyId alias/demo --KeyVersionId " + keyID},
	{Name: "UpdateRotationPolicy", API: kmsAPI, Summary: "turn automatic rotation on or off",
		Params:  []Param{req("KeyId"), req("EnableAutomaticRotation"), opt("RotationInterval")},
		Example: "--KeyId alias/demo --EnableAutomaticRotation true --RotationInterval 2592000s"},
	{Name: "ScheduleKeyDeletion", API: kmsAPI, Summary: "delete a key after a waiting period",
		Params:  []Param{req("KeyId"), typed(reqDoc("PendingWindowInDays", "days before the key is deleted, 7 to 366"), Integer)},
		Example: "--KeyId alias/demo --PendingWindowInDays 7"},
	{Name: "CancelKeyDeletion", API: kmsAPI, Summary: "cancel a scheduled deletion (the key comes back disabled)",
		Params: []Param{req("KeyId")}, Example: "--KeyId alias/demo"},
	{Name: "SetDeletionProtection", API: kmsAPI, Summary: "protect a key from deletion, or remove the protection",
		Params: []Param{
			reqDoc("ProtectedResourceArn", "the key's ARN"),
			typed(reqDoc("EnableDeletionProtection", "true protects, false removes the protection"), Boolean),
			optDoc("DeletionProtectionDescription", "why the key is protected"),
		},
		Example: "--ProtectedResourceArn acs:kms:local:1234567890:key/" + keyID + " --EnableDeletionProtection true"},
	{Name: "GetKeyPolicy", API: kmsAPI, Summary: "show a key's policy document",
		Params: []Param{req("KeyId"), req("PolicyName")}, Example: "--KeyId alias/demo --PolicyName default"},
	{Name: "SetKeyPolicy", API: kmsAPI, Summary: "replace a key's policy document (see also: kmsctl key-policy set)",
		Params: []Param{req("KeyId"), req("PolicyName"),
			typed(reqDoc("Policy", `the policy document: {"Version":"1","Statement":[...]}`), JSON),
			opt("BypassPolicyLockoutSafetyCheck")},
		Example: `--KeyId alias/demo --PolicyName default --Policy '{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::1234567890:*"]},"Action":["kms:*"],"Resource":["*"]}]}'`},

	// Symmetric cryptography.
	{Name: "Encrypt", API: kmsAPI, Summary: "encrypt up to 6 KiB under a key's primary version",
		Params:  []Param{req("KeyId"), req("Plaintext"), opt("EncryptionContext"), opt("DryRun")},
		Example: `--KeyId alias/demo --Plaintext aGVsbG8= --EncryptionContext '{"purpose":"demo"}'`},
	{Name: "Decrypt", API: kmsAPI, Summary: "decrypt a ciphertext blob (it names its key version)",
		Params:  []Param{req("CiphertextBlob"), opt("EncryptionContext"), opt("DryRun")},
		Example: `--CiphertextBlob "$BLOB" --EncryptionContext '{"purpose":"demo"}'`},
	{Name: "GenerateDataKey", API: kmsAPI, Summary: "a random data key, in plaintext and encrypted under a key",
		Params:  []Param{req("KeyId"), opt("KeySpec"), opt("NumberOfBytes"), opt("EncryptionContext"), opt("DryRun")},
		Example: "--KeyId alias/demo --KeySpec AES_256"},
	{Name: "GenerateDataKeyWithoutPlaintext", API: kmsAPI, Summary: "a random data key, encrypted under a key only",
		Params:  []Param{req("KeyId"), opt("KeySpec"), opt("NumberOfBytes"), opt("EncryptionContext"), opt("DryRun")},
		Example: "--KeyId alias/demo --NumberOfBytes 32"},
	{Name: "ReEncrypt", API: kmsAPI, Summary: "decrypt a blob and encrypt it again under another key, inside the service",
		Params: []Param{req("CiphertextBlob"), reqDoc("DestinationKeyId", "the key to encrypt under: id, alias or ARN"),
			typed(optDoc("SourceEncryptionContext", "the blob's encryption context (JSON object)"), JSON),
			typed(optDoc("DestinationEncryptionContext", "the new blob's encryption context (JSON object)"), JSON),
			optDoc("SourceKeyId", "asymmetric source key (not supported)"),
			optDoc("SourceEncryptionAlgorithm", "asymmetric source algorithm (not supported)"),
			opt("DryRun")},
		Example: `--CiphertextBlob "$BLOB" --DestinationKeyId alias/other`},
	{Name: "GenerateAndExportDataKey", API: kmsAPI, Summary: "a random data key, encrypted under a key and under your public key",
		Params: []Param{req("KeyId"), req("PublicKeyBlob"), req("WrappingKeySpec"), req("WrappingAlgorithm"),
			opt("KeySpec"), opt("NumberOfBytes"), opt("EncryptionContext"), opt("DryRun")},
		Example: `--KeyId alias/demo --PublicKeyBlob "$PUB" --WrappingKeySpec RSA_2048 --WrappingAlgorithm RSAES_OAEP_SHA_256`},
	{Name: "ExportDataKey", API: kmsAPI, Summary: "re-encrypt a data key's blob under your public key",
		Params: []Param{req("CiphertextBlob"), req("PublicKeyBlob"), req("WrappingKeySpec"), req("WrappingAlgorithm"),
			opt("EncryptionContext"), opt("DryRun")},
		Example: `--CiphertextBlob "$BLOB" --PublicKeyBlob "$PUB" --WrappingKeySpec RSA_2048 --WrappingAlgorithm RSAES_OAEP_SHA_256`},

	// Asymmetric keys.
	{Name: "AsymmetricSign", API: kmsAPI, Summary: "sign a digest with an asymmetric key version",
		Params:  []Param{req("KeyId"), req("KeyVersionId"), req("Algorithm"), req("Digest"), opt("DryRun")},
		Example: `--KeyId alias/signer --KeyVersionId ` + keyID + ` --Algorithm ECDSA_SHA_256 --Digest "$(echo -n msg | openssl dgst -sha256 -binary | base64)"`},
	{Name: "AsymmetricVerify", API: kmsAPI, Summary: "verify a signature of a digest",
		Params: []Param{req("KeyId"), req("KeyVersionId"), req("Algorithm"), req("Digest"),
			typed(reqDoc("Value", "the signature (Base64)"), Base64), opt("DryRun")},
		Example: `--KeyId alias/signer --KeyVersionId ` + keyID + ` --Algorithm ECDSA_SHA_256 --Digest "$DIGEST" --Value "$SIG"`},
	{Name: "AsymmetricEncrypt", API: kmsAPI, Summary: "encrypt with an RSA key version's public key",
		Params: []Param{req("KeyId"), req("KeyVersionId"), req("Algorithm"),
			typed(reqDoc("Plaintext", "the data (Base64)"), Base64), opt("DryRun")},
		Example: `--KeyId alias/rsa --KeyVersionId ` + keyID + ` --Algorithm RSAES_OAEP_SHA_256 --Plaintext aGVsbG8=`},
	{Name: "AsymmetricDecrypt", API: kmsAPI, Summary: "decrypt with an RSA key version's private key",
		Params: []Param{req("KeyId"), req("KeyVersionId"), req("Algorithm"),
			reqDoc("CiphertextBlob", "the RSA ciphertext (Base64)"), opt("DryRun")},
		Example: `--KeyId alias/rsa --KeyVersionId ` + keyID + ` --Algorithm RSAES_OAEP_SHA_256 --CiphertextBlob "$CT"`},
	{Name: "GetPublicKey", API: kmsAPI, Summary: "the public key of an asymmetric key version (PEM)",
		Params: []Param{req("KeyId"), req("KeyVersionId"), opt("DryRun")}, Example: "--KeyId alias/signer --KeyVersionId " + keyID},

	// Importing key material.
	{Name: "GetParametersForImport", API: kmsAPI, Summary: "a wrapping public key and an import token for an EXTERNAL key",
		Params:  []Param{req("KeyId"), req("WrappingAlgorithm"), req("WrappingKeySpec")},
		Example: "--KeyId alias/byok --WrappingAlgorithm RSAES_OAEP_SHA_256 --WrappingKeySpec RSA_2048"},
	{Name: "ImportKeyMaterial", API: kmsAPI, Summary: "import key material wrapped under GetParametersForImport's public key",
		Params: []Param{req("KeyId"),
			typed(reqDoc("EncryptedKeyMaterial", "the material wrapped under the import public key (Base64)"), Base64),
			reqDoc("ImportToken", "the token GetParametersForImport returned"),
			typed(optDoc("KeyMaterialExpireUnix", "when the material expires, Unix seconds (0: never)"), Integer)},
		Example: `--KeyId alias/byok --EncryptedKeyMaterial "$WRAPPED" --ImportToken "$TOKEN"`},
	{Name: "DeleteKeyMaterial", API: kmsAPI, Summary: "delete an EXTERNAL key's imported material",
		Params: []Param{req("KeyId")}, Example: "--KeyId alias/byok"},

	// Aliases and tags.
	{Name: "CreateAlias", API: kmsAPI, Summary: "give a key an alias",
		Params: []Param{req("AliasName"), req("KeyId")}, Example: "--AliasName alias/demo --KeyId " + keyID},
	{Name: "UpdateAlias", API: kmsAPI, Summary: "point an alias at another key",
		Params: []Param{req("AliasName"), req("KeyId")}, Example: "--AliasName alias/demo --KeyId " + keyID},
	{Name: "DeleteAlias", API: kmsAPI, Summary: "delete an alias (not its key)",
		Params: []Param{req("AliasName")}, Example: "--AliasName alias/demo"},
	{Name: "ListAliases", API: kmsAPI, Summary: "list the account's aliases",
		Params: []Param{opt("PageNumber"), opt("PageSize")}, Example: "--PageSize 50"},
	{Name: "ListAliasesByKeyId", API: kmsAPI, Summary: "list a key's aliases",
		Params: []Param{req("KeyId"), opt("PageNumber"), opt("PageSize")}, Example: "--KeyId " + keyID},
	{Name: "TagResource", API: kmsAPI, Summary: "add or replace tags of a key",
		Params: []Param{req("KeyId"), req("Tags")}, Example: `--KeyId alias/demo --Tags '[{"TagKey":"team","TagValue":"payments"}]'`},
	{Name: "UntagResource", API: kmsAPI, Summary: "remove tags from a key",
		Params: []Param{req("KeyId"), req("TagKeys")}, Example: `--KeyId alias/demo --TagKeys '["team"]'`},
	{Name: "ListResourceTags", API: kmsAPI, Summary: "list a key's tags",
		Params: []Param{req("KeyId")}, Example: "--KeyId alias/demo"},

	// KMS instances.
	{Name: "ListKmsInstances", API: kmsAPI, Summary: "list the account's KMS instances",
		Params: []Param{opt("PageNumber"), opt("PageSize")}, Example: "--PageSize 20"},
	{Name: "GetKmsInstance", API: kmsAPI, Summary: "show a KMS instance",
		Params: []Param{reqDoc("KmsInstanceId", "the instance's id (kst-...)")}, Example: "--KmsInstanceId kst-..."},

	// RAM (API 2015-05-01).
	{Name: "CreateUser", API: ramAPI, Summary: "create a RAM user in the caller's account (account root only)",
		Params:  []Param{req("UserName"), optDoc("DisplayName", "a display name"), optDoc("Comments", "free text")},
		Example: "--UserName app"},
	{Name: "GetUser", API: ramAPI, Summary: "show a RAM user",
		Params: []Param{req("UserName")}, Example: "--UserName app"},
	{Name: "ListUsers", API: ramAPI, Summary: "list the account's RAM users", Example: ""},
	{Name: "DeleteUser", API: ramAPI, Summary: "delete a RAM user",
		Params: []Param{req("UserName")}, Example: "--UserName app"},
	{Name: "CreateAccessKey", API: ramAPI, Summary: "create an access key; the secret is shown only in this answer",
		Params: []Param{optDoc("UserName", "the RAM user (default: the account's root)")}, Example: "--UserName app"},
	{Name: "ListAccessKeys", API: ramAPI, Summary: "list access keys (never their secrets)",
		Params: []Param{optDoc("UserName", "the RAM user (default: the account's root)")}, Example: "--UserName app"},
	{Name: "UpdateAccessKey", API: ramAPI, Summary: "activate or deactivate an access key",
		Params: []Param{optDoc("UserName", "the RAM user (default: the account's root)"), req("UserAccessKeyId"),
			reqDoc("Status", "Active or Inactive")},
		Example: "--UserName app --UserAccessKeyId LTAI... --Status Inactive"},
	{Name: "DeleteAccessKey", API: ramAPI, Summary: "delete an access key",
		Params:  []Param{optDoc("UserName", "the RAM user (default: the account's root)"), req("UserAccessKeyId")},
		Example: "--UserName app --UserAccessKeyId LTAI..."},
	{Name: "CreateRole", API: ramAPI, Summary: "create a RAM role that trusted principals may assume",
		Params: []Param{req("RoleName"),
			typed(reqDoc("AssumeRolePolicyDocument", "the trust policy: who may assume the role (JSON)"), JSON),
			opt("Description"),
			typed(optDoc("MaxSessionDuration", "longest session, seconds (3600 to 43200)"), Integer)},
		Example: `--RoleName auditor --AssumeRolePolicyDocument '{"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"RAM":["acs:ram::1234567890:root"]}}]}'`},
	{Name: "GetRole", API: ramAPI, Summary: "show a RAM role",
		Params: []Param{req("RoleName")}, Example: "--RoleName auditor"},
	{Name: "ListRoles", API: ramAPI, Summary: "list the account's RAM roles", Example: ""},
	{Name: "DeleteRole", API: ramAPI, Summary: "delete a RAM role; its sessions end at once",
		Params: []Param{req("RoleName")}, Example: "--RoleName auditor"},
	{Name: "AttachPolicyToUser", API: ramAPI, Summary: "attach a system policy to a RAM user",
		Params:  []Param{req("PolicyType"), policyName, req("UserName")},
		Example: "--PolicyType System --PolicyName AliyunKMSCryptoUserAccess --UserName app"},
	{Name: "DetachPolicyFromUser", API: ramAPI, Summary: "detach a system policy from a RAM user",
		Params:  []Param{req("PolicyType"), policyName, req("UserName")},
		Example: "--PolicyType System --PolicyName AliyunKMSCryptoUserAccess --UserName app"},
	{Name: "AttachPolicyToRole", API: ramAPI, Summary: "attach a system policy to a RAM role",
		Params:  []Param{req("PolicyType"), policyName, req("RoleName")},
		Example: "--PolicyType System --PolicyName AliyunKMSReadOnlyAccess --RoleName auditor"},
	{Name: "DetachPolicyFromRole", API: ramAPI, Summary: "detach a system policy from a RAM role",
		Params:  []Param{req("PolicyType"), policyName, req("RoleName")},
		Example: "--PolicyType System --PolicyName AliyunKMSReadOnlyAccess --RoleName auditor"},
	{Name: "ListPoliciesForUser", API: ramAPI, Summary: "list the policies attached to a RAM user",
		Params: []Param{req("UserName")}, Example: "--UserName app"},

	// STS (API 2015-04-01).
	{Name: "AssumeRole", API: stsAPI, Summary: "temporary credentials (with a SecurityToken) for a role",
		Params: []Param{reqDoc("RoleArn", "acs:ram::ACCOUNT:role/NAME"), reqDoc("RoleSessionName", "a name for the session, shown in the audit log"),
			typed(optDoc("DurationSeconds", "lifetime of the credentials, seconds (900 up to the role's MaxSessionDuration)"), Integer)},
		Example: "--RoleArn acs:ram::1234567890:role/auditor --RoleSessionName review"},
}

var policyName = reqDoc("PolicyName", "a system policy: AliyunKMSFullAccess, AliyunKMSReadOnlyAccess or AliyunKMSCryptoUserAccess")
