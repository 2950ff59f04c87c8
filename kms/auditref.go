package kms

// KeyIDOfVersion returns the id of the key a version belongs to in this
// node's catalogue, "" when the version is unknown here. It authorizes
// nothing: it is for the audit log, which names the key of a refused
// Decrypt whose ciphertext names only the version.
func (s *Service) KeyIDOfVersion(versionID string) string {
	if versionID == "" {
		return ""
	}
	if v, ok := s.fsm.KeyVersion(versionID); ok {
		return v.KeyID
	}
	return ""
}
