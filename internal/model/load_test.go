package model

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keepvs/keepvs/internal/conf"
)

// TestLoadIsParseThenBuild: Load builds each top-level statement as it is
// read; that must give exactly the Config and diagnostics of parsing the
// whole file first and building after (Build, which the fuzzer and
// RealServerFor use).
func TestLoadIsParseThenBuild(t *testing.T) {
	var files []string
	filepath.WalkDir("testdata", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".conf") {
			files = append(files, path)
		}
		return nil
	})
	large := filepath.Join(t.TempDir(), "large.conf")
	if err := os.WriteFile(large, []byte(LargeConfig(30, 7)), 0o644); err != nil {
		t.Fatal(err)
	}
	files = append(files, large)
	for _, path := range files {
		c1, d1 := Load(path, testOptions())
		f, d2 := conf.ParseFile(path, testOptions())
		c2, more := Build(f)
		d2 = append(d2, more...)
		j1, _ := json.Marshal(c1)
		j2, _ := json.Marshal(c2)
		if string(j1) != string(j2) {
			t.Errorf("%s: Load and ParseFile+Build differ:\n%s\n%s", path, j1, j2)
		}
		if d1.Error() != d2.Error() {
			t.Errorf("%s: diagnostics differ:\n--- Load\n%s\n--- ParseFile+Build\n%s", path, d1, d2)
		}
	}
}
