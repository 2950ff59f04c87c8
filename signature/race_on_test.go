//go:build race

package signature

// raceEnabled: the race detector makes sync.Pool drop items on purpose, so
// pooled objects are sometimes made anew.
const raceEnabled = true
