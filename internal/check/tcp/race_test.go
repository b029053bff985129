//go:build race

package tcp

// allocSlack is what the race detector's own allocations may add to a
// count of them.
const allocSlack = 2
