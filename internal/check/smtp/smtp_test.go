package smtp

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/check"
)

// responder is a tiny SMTP server answering with the given greeting and
// HELO reply, and recording the HELO it got.
type responder struct {
	greeting, heloReply string
	mu                  sync.Mutex
	helo                string
}

func (r *responder) serve(t *testing.T) check.Target {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(c)
				c.Write([]byte(r.greeting))
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				r.mu.Lock()
				r.helo = strings.TrimSpace(line)
				r.mu.Unlock()
				c.Write([]byte(r.heloReply))
				if _, err := br.ReadString('\n'); err != nil {
					return
				}
				c.Write([]byte("221 2.0.0 Bye\r\n"))
			}()
		}
	}()
	return check.Target{Addr: netip.MustParseAddrPort(ln.Addr().String())}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name                string
		greeting, heloReply string
		heloName            string
		ok                  bool
		reason, wantHelo    string
	}{
		{"ok", "220 mx ESMTP\r\n", "250 mx\r\n", "", true, "", "HELO smtpchecker.keepalived.org"},
		{"multi-line greeting and helo_name", "220-mx ESMTP\r\n220 welcome\r\n", "250 mx\r\n", "lb.example", true, "", "HELO lb.example"},
		{"busy", "554 go away\r\n", "", "", false, `bad greeting from`, ""},
		{"HELO refused", "220 mx\r\n", "501 bad name\r\n", "", false, `bad HELO reply from`, "HELO smtpchecker.keepalived.org"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &responder{greeting: tt.greeting, heloReply: tt.heloReply}
			tg := r.serve(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			res := (&Checker{Target: tg, HeloName: tt.heloName}).Check(ctx)
			if res.OK != tt.ok || !strings.Contains(res.Reason, tt.reason) {
				t.Errorf("Check = %+v, want ok=%v reason containing %q", res, tt.ok, tt.reason)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.helo != tt.wantHelo {
				t.Errorf("server got %q, want %q", r.helo, tt.wantHelo)
			}
		})
	}
}

func TestSilentServerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			time.Sleep(2 * time.Second)
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res := (&Checker{Target: check.Target{Addr: netip.MustParseAddrPort(ln.Addr().String())}}).Check(ctx)
	if res.OK || !strings.Contains(res.Reason, "read greeting from") || !strings.Contains(res.Reason, "timeout") {
		t.Errorf("Check = %+v", res)
	}
}
