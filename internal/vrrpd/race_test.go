//go:build race

package vrrpd_test

// raceEnabled: the race detector's own bookkeeping makes allocation
// counts meaningless.
const raceEnabled = true
