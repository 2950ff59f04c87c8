// Package e2e holds raftkms's process-level end-to-end tests (DESIGN.md §10,
// tier 3): they build cmd/kmsd and cmd/kmsctl, start real kmsd processes on
// loopback ports as an operator would, and drive them with kmsctl and raw
// HTTP. Nothing in the package is imported by the server; its only non-test
// file is this comment.
//
// Run them all (make test does, through make test-unit):
//
//	go test -count=1 ./e2e/
//
// or one of them, with the nodes' logs on failure:
//
//	go test -count=1 ./e2e/ -run TestRestore_IntoNewClusterWithSameRootKey -v
//
// TestMain builds both binaries into a temporary directory, so the tests
// never depend on bin/ being fresh. Every kmsd gets its own data dir under
// t.TempDir(), fast timings (--raft-timeout 300ms --fast-gossip
// --dead-server-timeout 5s) and free loopback ports; its stdout and stderr go
// to a log file whose tail is printed when the test fails. Processes are
// killed in t.Cleanup, and on Linux also when the test binary dies.
//
// TestReadme_WalkthroughRunsAsWritten needs jq (make deps installs it) and
// the port 127.0.0.1:9700 that the README hard-codes; it fails with a clear
// message when either is missing.
package e2e
