//go:build !cgo

package main

// hsmBuilt: this binary was built without cgo, so without the PKCS#11
// backend; HSM flags and commands are refused with errNoCgo.
const hsmBuilt = false
