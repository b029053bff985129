// Package notifytest has test helpers for notifications: an SMTP server
// that records what keepvs sends.
package notifytest

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// SMTP is a minimal SMTP server for tests: it records each session's commands
// and message, and refuses RCPT TO for addresses containing Refuse (set it between
// sessions).
type SMTP struct {
	l        net.Listener
	sessions chan []string // commands, then "DATA:" + the message
	Refuse   string
}

// NewSMTP serves on l until the test ends.
func NewSMTP(t *testing.T, l net.Listener) *SMTP {
	s := &SMTP{l: l, sessions: make(chan []string, 16)}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *SMTP) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	var got []string
	say := func(line string) { io.WriteString(c, line+"\r\n") }
	say("220-sink ready")
	say("220 sink")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			s.sessions <- got
			return
		}
		line = strings.TrimRight(line, "\r\n")
		got = append(got, line)
		switch {
		case strings.HasPrefix(line, "RCPT TO:") && s.Refuse != "" && strings.Contains(line, s.Refuse):
			say("550 no such user")
		case line == "DATA":
			say("354 go on")
			var msg strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil || l == ".\r\n" {
					break
				}
				msg.WriteString(l)
			}
			got = append(got, "DATA:"+msg.String())
			say("250 queued")
		case line == "QUIT":
			// Recorded before the reply: the client starts its next
			// session only after it, so sessions queue in their order.
			s.sessions <- got
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

// Next is the next finished session: the client's commands in order,
// with the message after DATA as one "DATA:" + message entry.
func (s *SMTP) Next(t *testing.T) []string {
	t.Helper()
	select {
	case got := <-s.sessions:
		return got
	case <-time.After(5 * time.Second):
		t.Fatal("no smtp session")
		return nil
	}
}
