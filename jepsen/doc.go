// Package jepsen is raftkms's fault-injection harness (kms-jepsen): it runs
// real kmsd processes, each in its own network namespace on a bridge,
// drives client workloads against every node while a seeded nemesis
// partitions (nftables), kills, pauses and replaces nodes, records a
// Jepsen-style history (invoke/ok/fail/info), and checks it: register and
// secret-value linearizability with porcupine, set durability, ciphertext
// integrity, the key-state bound, and identical replicas at the end.
//
// It owns the harness and the checkers; it must not be imported by the
// server, and it talks to nodes only through their HTTP API (package
// client) and their processes' signals. See DESIGN.md here and
// docs/JEPSEN.md.
package jepsen
