package ipvsadm

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// FuzzArgs runs arbitrary command lines (words separated by NUL, or by
// blanks when there is no NUL) against the rich fake table: no panic, an
// exit status ipvsadm can have, and stderr empty exactly when it succeeds
// with something other than a restore.
func FuzzArgs(f *testing.F) {
	for _, s := range []string{
		"-Ln", "-L -n --stats --exact", "-Lnc", "-S", "-A -t 1.2.3.4:80 -p", "-At=1.2.3.4:80",
		"-a -t [2001:db8::1]:80 -r 10.0.0.9 -i --tun-type gue --tun-port 1 --tun-csum",
		"--set 1 2 3", "-R", "-A -t 1.2.3.4:80 -b ,", "-L=", "-p=", "--start-daemon master --mcast-group ff02::1",
		"-E\x00-f\x005\x00-6\x00-s\x00sh\x00-b\x00sh-port", "-Ln -- -x", "-L --tun-info --thresholds",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var argv []string
		if strings.Contains(line, "\x00") {
			argv = strings.Split(line, "\x00")
		} else {
			argv = strings.Fields(line)
		}
		dp := richState(t)
		var out, errb bytes.Buffer
		c := &Cmd{Prog: "ipvsadm", Stdin: strings.NewReader("-C\n-Ln\n"), Stdout: &out, Stderr: &errb, DP: dp, Names: fakeNames{}}
		code := c.Run(context.Background(), argv)
		switch code {
		case 0, 1, 2, 139, 255:
		default:
			t.Fatalf("exit status %d", code)
		}
		if code != 0 && code != 139 && errb.Len() == 0 && !(code == 1 && len(argv) > 0) {
			t.Fatalf("exit %d without a message", code)
		}
	})
}
