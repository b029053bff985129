package model

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keepvs/keepvs/internal/conf"
)

// FuzzBuild runs arbitrary text through the parser and the model builder,
// seeded with every testdata configuration. Nothing may panic, and a model
// must always serialize.
func FuzzBuild(f *testing.F) {
	filepath.WalkDir("testdata", func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".conf") {
			if b, err := os.ReadFile(path); err == nil {
				f.Add(string(b))
			}
		}
		return nil
	})
	f.Fuzz(func(t *testing.T, src string) {
		opt := testOptions()
		opt.MaxLines = 2000
		opt.MaxBytes = 1 << 20
		file, _ := conf.Parse("f.conf", []byte(src), opt)
		c, _ := Build(file)
		if _, err := json.Marshal(c); err != nil {
			t.Fatalf("model does not serialize: %v", err)
		}
	})
}
