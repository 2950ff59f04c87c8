// Package audit owns the node's audit log: one JSON line per request,
// chained by SHA-256 so that an edited, removed, inserted or reordered line
// is found by Verify (and by `kmsctl operator audit verify`).
//
// A Record is a whitelist of fields — who, what, which key, the result —
// and nothing else: no parameters, no plaintext, ciphertext, key material,
// secrets, signatures or tokens can reach the file because no field can
// hold them.
//
// The line format and the chain construction are a contract with auditors,
// who re-verify files with their own scripts; docs/SECURITY.md states it
// exactly. In short, with h(x) = lowercase hex of SHA-256(x):
//
//	line n = body_n[:len-1] + `,"hash":"` + hash_n + `"}` + "\n"
//	body_n = the JSON object of the record, whose last member is "prev"
//	prev_1 = Genesis (64 zeros); prev_n = hash_(n-1)
//	hash_n = h(body_n)
//
// so hash_n is the SHA-256 of line n with its trailing `,"hash":"…"` member
// (and newline) removed.
//
// The package does not know HTTP; package api fills the records.
package audit
