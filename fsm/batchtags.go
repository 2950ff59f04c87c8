package fsm

import "fmt"

// Batch tags (TagResources, UntagResources): one command changes the tags
// of several resources of one account, all or none. Apply checks every
// resource before it stores any: a missing key, a secret pending deletion
// or a tag limit on the last resource leaves the first ones as they were.

// CmdTagResources sets or removes tags on several keys and secrets.
const CmdTagResources CommandType = 68

// TagResourcesCmd sets Tags on, or removes the tag keys Remove from (All:
// every tag of), each key of KeyIDs and each secret of Secrets (names) of
// the account. Certificates, when they carry tags, get a list of their
// own here (omitempty: older entries decode the same).
type TagResourcesCmd struct {
	Now       int64             `msgpack:"now"`
	AccountID string            `msgpack:"acct"`
	KeyIDs    []string          `msgpack:"keys,omitempty"`
	Secrets   []string          `msgpack:"secrets,omitempty"`
	Certs     []string          `msgpack:"certs,omitempty"`
	Tags      map[string]string `msgpack:"tags,omitempty"`
	Remove    []string          `msgpack:"remove,omitempty"`
	All       bool              `msgpack:"all,omitempty"`
}

func (cmd *TagResourcesCmd) change(tags map[string]string) map[string]string {
	if cmd.All {
		return map[string]string{}
	}
	n := make(map[string]string, len(tags)+len(cmd.Tags))
	for k, v := range tags {
		n[k] = v
	}
	for k, v := range cmd.Tags {
		n[k] = v
	}
	for _, k := range cmd.Remove {
		delete(n, k)
	}
	return n
}

func (c *catalogue) applyTagResources(cmd *TagResourcesCmd, index uint64) error {
	keys := make([]*Key, 0, len(cmd.KeyIDs))
	for _, id := range cmd.KeyIDs {
		k, err := c.key(id)
		if err != nil {
			return err
		}
		if k.AccountID != cmd.AccountID {
			return fmt.Errorf("%w: %s", ErrKeyNotFound, id)
		}
		n := k.clone()
		n.Tags = cmd.change(k.Tags)
		if len(n.Tags) > MaxTagsPerKey {
			return fmt.Errorf("%w (key %s has %d, the request would make %d)", ErrTagLimit, id, len(k.Tags), len(n.Tags))
		}
		n.ModifyIndex = index
		keys = append(keys, n)
	}
	secrets := make([]*Secret, 0, len(cmd.Secrets))
	for _, name := range cmd.Secrets {
		s, err := c.liveSecret(cmd.AccountID, name)
		if err != nil {
			return err
		}
		n := s.clone()
		n.Tags = cmd.change(s.Tags)
		if len(n.Tags) > MaxTagsPerSecret {
			return fmt.Errorf("%w: a secret may carry at most %d tags (secret %s)", ErrTagLimit, MaxTagsPerSecret, name)
		}
		n.UpdatedAt, n.ModifyIndex = cmd.Now, index
		secrets = append(secrets, n)
	}
	certs := make([]*Certificate, 0, len(cmd.Certs))
	for _, id := range cmd.Certs {
		x, ok := c.certs[id]
		if !ok || x.AccountID != cmd.AccountID {
			return fmt.Errorf("%w: %s", ErrCertificateNotFound, id)
		}
		n := x.clone()
		n.Tags = cmd.change(x.Tags)
		if len(n.Tags) > MaxTagsPerCertificate {
			return fmt.Errorf("%w: a certificate may carry at most %d tags (certificate %s)", ErrTagLimit, MaxTagsPerCertificate, id)
		}
		n.UpdatedAt, n.ModifyIndex = cmd.Now, index
		certs = append(certs, n)
	}
	for _, k := range keys {
		c.putKey(k)
	}
	for _, x := range certs {
		c.certs[x.ID] = x
	}
	for _, s := range secrets {
		c.secrets[secretKey(s.AccountID, s.Name)] = s
	}
	return nil
}
