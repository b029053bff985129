package main

import (
	"bytes"
	"log/syslog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoggerSyslogAndConsole(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	pc, err := net.ListenPacket("unixgram", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	dial := func(p syslog.Priority) (*syslog.Writer, error) { return syslog.Dial("unixgram", sock, p, "keepvs") }
	opts, _ := parseOptions(daemonOptions, []string{"-l", "-S", "local3"})
	var console bytes.Buffer
	log, closeLog, err := newLogger(opts, &console, dial)
	if err != nil {
		t.Fatal(err)
	}
	log.Warn("real server down", "rs", "10.0.1.1:80")
	closeLog()
	buf := make([]byte, 1024)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	// local3 (19) * 8 + warning (4) = 156.
	if msg := string(buf[:n]); !strings.HasPrefix(msg, "<156>") || !strings.Contains(msg, `msg="real server down" rs=10.0.1.1:80`) {
		t.Errorf("syslog got %q", msg)
	}
	if !strings.Contains(console.String(), "level=WARN") {
		t.Errorf("-l: console got %q", console.String())
	}

	// -G: no syslog; without -l the console is the fallback.
	opts, _ = parseOptions(daemonOptions, []string{"-G"})
	console.Reset()
	log, _, _ = newLogger(opts, &console, dial)
	log.Info("x")
	if !strings.Contains(console.String(), "msg=x") {
		t.Errorf("-G without -l logs nowhere: %q", console.String())
	}
	if _, err := facility("local9"); err == nil {
		t.Error("local9 accepted")
	}
}
