//go:build !race

package tcp

const allocSlack = 0.1
