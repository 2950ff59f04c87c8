//go:build cgo

package main

// hsmBuilt: this binary has the PKCS#11 backend (package hsm needs cgo).
const hsmBuilt = true
