package model

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keepvs/keepvs/internal/conf"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGolden loads every testdata/**/*.conf and compares the model's JSON
// dump with NAME.json and the diagnostics with NAME.diag. Run with -update
// after a deliberate change and review the diff.
func TestGolden(t *testing.T) {
	var files []string
	filepath.WalkDir("testdata", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".conf") && !strings.Contains(path, string(filepath.Separator)+"inc"+string(filepath.Separator)) {
			files = append(files, path)
		}
		return nil
	})
	if len(files) == 0 {
		t.Fatal("no testdata/*.conf")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(strings.TrimPrefix(path, "testdata/"), ".conf"), func(t *testing.T) {
			c, diags := Load(path, testOptions())
			js, err := json.MarshalIndent(c, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			js = append(js, '\n')
			var d strings.Builder
			for _, x := range diags {
				d.WriteString(x.String())
				d.WriteByte('\n')
			}
			base := strings.TrimSuffix(path, ".conf")
			golden(t, base+".json", js)
			golden(t, base+".diag", []byte(d.String()))
		})
	}
}

// testOptions makes loading deterministic.
func testOptions() conf.Options {
	return conf.Options{
		ConfigID: "lb1",
		Getenv:   func(k string) (string, bool) { return "env-" + k, true },
		Random:   func(lo, hi int) int { return lo },
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if len(got) == 0 {
			os.Remove(path)
			return
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs (-want +got):\n%s", path, lineDiff(string(want), string(got)))
	}
}

// lineDiff is a small line-oriented diff for golden mismatches.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	i, j := 0, 0
	for i < len(w) || j < len(g) {
		switch {
		case i < len(w) && j < len(g) && w[i] == g[j]:
			i++
			j++
		case j < len(g) && (i >= len(w) || !contains(w[i:], g[j])):
			b.WriteString("+" + g[j] + "\n")
			j++
		default:
			b.WriteString("-" + w[i] + "\n")
			i++
		}
	}
	return b.String()
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}
