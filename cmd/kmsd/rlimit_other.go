//go:build !unix

package main

import "github.com/hashicorp/go-hclog"

func raiseOpenFileLimit(hclog.Logger) uint64 { return 0 }
