package model

import (
	"os"
	"testing"
)

// TestWriteLargeConfig writes the benchmark configuration for measuring
// binaries: KEEPVS_LARGE_CONF=/tmp/large.conf go test -run WriteLarge ./internal/model/
func TestWriteLargeConfig(t *testing.T) {
	path := os.Getenv("KEEPVS_LARGE_CONF")
	if path == "" {
		t.Skip("set KEEPVS_LARGE_CONF=FILE to write the 2,000 x 20 configuration")
	}
	if err := os.WriteFile(path, []byte(LargeConfig(2000, 20)), 0o644); err != nil {
		t.Fatal(err)
	}
}
