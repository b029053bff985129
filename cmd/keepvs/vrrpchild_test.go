package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// TestMain lets the test binary be the daemon's VRRP process, as the
// keepvs binary is, for daemons the tests run in this process.
func TestMain(m *testing.M) {
	if os.Getenv(vrrpChildFDEnv) != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := vrrpChildMain(ctx, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}
