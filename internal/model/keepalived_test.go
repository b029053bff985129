package model

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// keepalivedNotices are keepalived's messages that only report a default it
// filled in or a setting it ignores. keepalived 2.2.7's -t exits non-zero
// after any message, these included, so a configuration counts as rejected
// by keepalived only if it printed something else.
var keepalivedNotices = regexp.MustCompile(`setting default|defaulting to| - setting$|^Warning|will be ignored|- clearing|^\s*$`)

// verdictDifferences are the configurations where keepvs deliberately gives
// another verdict than keepalived 2.2.7's `keepalived -t`. Everything else in
// testdata must get the same verdict from both.
var verdictDifferences = map[string]string{
	// keepvs rejects, keepalived accepts (or only logs):
	"lvs/fwmark_zero.conf":              "fwmark 0 can never match a packet; keepalived takes it",
	"lvs/group_undefined.conf":          "a virtual_server naming an undefined group: keepalived only logs it",
	"lvs/vs_duplicate.conf":             "the same virtual service twice: keepalived merges them silently",
	"lvs/thresholds_inverted.conf":      "lthreshold above uthreshold: the kernel would never clear OVERLOAD",
	"lvs/granularity_wrong_family.conf": "an IPv6 prefix length as persistence_granularity of an IPv4 service",

	// keepvs accepts (with a warning), keepalived 2.2.7 rejects: old
	// configurations that ran for years, with an unambiguous meaning.
	"seeds/seed000_01.conf":     "nb_get_retry in TCP_CHECK: keepalived 2.2.7 knows it only in HTTP_GET; we take it as retry, deprecated",
	"seeds/seed000_02.conf":     "nb_get_retry in TCP_CHECK (as seed000_01)",
	"seeds/seed000_09.conf":     "nb_get_retry in TCP_CHECK (as seed000_01)",
	"seeds/seed000_10.conf":     "nb_get_retry in TCP_CHECK (as seed000_01)",
	"seeds/seed000_11.conf":     "nb_get_retry in TCP_CHECK (as seed000_01)",
	"seeds/seed000_12.conf":     "nb_get_retry in TCP_CHECK (as seed000_01)",
	"seeds/seed000_13.conf":     "nb_get_retry in TCP_CHECK (as seed000_01)",
	"seeds/seed000_14.conf":     "nb_get_retry in TCP_CHECK (as seed000_01)",
	"seeds/seed000_15.conf":     "nb_get_retry in TCP_CHECK (as seed000_01)",
	"seeds/seed000_16.conf":     "nb_get_retry in TCP_CHECK (as seed000_01)",
	"seeds/seed000_17.conf":     "nb_get_retry in TCP_CHECK (as seed000_01)",
	"seeds/seed000_18.conf":     "nb_get_retry in TCP_CHECK (as seed000_01)",
	"seeds/seed002_master.conf": "nat_mask (obsolete, ignored with a warning) and persistence_timeout 0 (no persistence, warned); also a vrrp_script whose command is shell syntax, which keepalived finds no program for",
	"seeds/seed002_backup.conf": "its vrrp_script is shell syntax (`[[ -f ... ]]`): keepalived looks for a program named `[[`; keepvs checks scripts when it runs them, not in -t",
	"lvs/aliases.conf":          "nb_get_retry outside HTTP_GET and nat_mask, as in the seeds",
	"lvs/persistence_zero.conf": "persistence_timeout 0, as in seed002",
}

// TestKeepalivedAgrees runs the real keepalived's config test on every
// testdata configuration and compares its verdict with ours. It needs
// keepalived (CI installs it) and skips without it.
func TestKeepalivedAgrees(t *testing.T) {
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		for _, p := range []string{"/usr/sbin/keepalived", "/sbin/keepalived"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
	}
	if bin == "" {
		t.Skip("keepalived is not installed (apt-get install keepalived): cannot compare verdicts")
	}
	if os.Geteuid() != 0 {
		// keepalived runs as root; its script checks (script_user,
		// enable_script_security) give other verdicts for another user.
		t.Skip("not root: keepalived's config test assumes root, as keepalived runs")
	}
	var files []string
	filepath.WalkDir("testdata", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".conf") && !strings.Contains(path, "/inc/") {
			files = append(files, path)
		}
		return nil
	})
	dir := t.TempDir()
	agreed := 0
	for _, path := range files {
		name := strings.TrimPrefix(path, "testdata/")
		t.Run(name, func(t *testing.T) {
			_, diags := Load(path, testOptions())
			ours := !diags.HasErrors()
			theirs, out := keepalivedVerdict(t, bin, dir, path)
			reason, differs := verdictDifferences[name]
			switch {
			case ours == theirs && differs:
				t.Errorf("listed as a deliberate difference (%s) but both say accepted=%v; remove it from the list", reason, ours)
			case ours != theirs && !differs:
				t.Errorf("keepvs accepted=%v, keepalived accepted=%v\nkeepvs:\n%s\nkeepalived:\n%s", ours, theirs, diags.Error(), out)
			case ours == theirs:
				agreed++
			}
		})
	}
	t.Logf("%d of %d configurations: same verdict as keepalived; %d deliberate differences", agreed, len(files), len(verdictDifferences))
}

// keepalivedVerdict runs `keepalived -t`. Script security is switched on in
// a wrapper so that keepalived's exit status says whether the
// configuration is valid, not whether scripts run as root (status 6).
func keepalivedVerdict(t *testing.T, bin, dir, path string) (bool, string) {
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(dir, strings.ReplaceAll(strings.TrimPrefix(path, "testdata/"), "/", "_")+".wrap")
	src := "global_defs {\n  enable_script_security\n  script_user root\n}\ninclude " + abs + "\n"
	if err := os.WriteFile(wrapper, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-t", "-f", wrapper, "-l", "-n", "-i", "lb1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Skipf("keepalived -t hung for 10s on this file (a keepalived problem, seen with track_file init_file): no verdict to compare\n%s", out.String())
	}
	if err == nil {
		return true, out.String()
	}
	if _, ok := err.(*exec.ExitError); !ok {
		t.Fatalf("running keepalived: %v", err)
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if !keepalivedNotices.MatchString(l) {
			return false, out.String()
		}
	}
	return true, out.String()
}
