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
// What is where:
//
//	cluster_test.go     formation with --bootstrap-expect, operator init once, members, health, metrics
//	cli_test.go         kmsctl across nodes, encryption context, V1 signatures, credential sources, exit codes
//	index_test.go       X-Kms-Index on writes, X-Kms-Min-Index waits (bounded)
//	membership_test.go  nodes joining later, restarts (also on new addresses), SIGTERM/SIGKILL of the leader,
//	                    a node with another root key
//	durability_test.go  acknowledged writes survive SIGKILL of every node, DisableKey bound, --max-staleness,
//	                    a node cut off (SIGSTOP of the others) facing keys it has not seen
//	snapshot_test.go    disaster recovery: save, restore into new and initialized clusters, refusals
//	                    (edited snapshots; 1 GiB uploads by callers who may not restore, measured by RSS)
//	disk_test.go        no data key, plaintext or secret in data dirs, snapshots or logs
//	dev_test.go         kmsd --dev with and without --data-dir
//	readme_test.go      the README's "Five minutes with kmsctl" block, run as written
//	console_test.go     the browser console through a real Chromium (chromedp): every guide flow on a
//	                    3-node TLS cluster with a SoftHSM domain, each result checked through the API;
//	                    RAFTKMS_CONSOLE_SCREENSHOTS=1 writes the README's screenshots to docs/console/
//
// A test that finds a product bug says so in its failure message ("BUG: ...",
// with the file to look at) and, where it can, goes on checking the rest of
// its contract through a workaround.
//
// TestReadme_EveryShellBlockRunsAsWritten needs jq and softhsm2 (make deps
// installs them) and the ports the README hard-codes; it fails with a clear
// message when one is missing or a port is taken. TestConsole_Browser needs
// Debian's chromium (make deps) and fails, saying so, without it.
package e2e
