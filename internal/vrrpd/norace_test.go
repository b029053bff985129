//go:build !race

package vrrpd_test

const raceEnabled = false
