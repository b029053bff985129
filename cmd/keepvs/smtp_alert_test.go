package main

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/keepvs/keepvs/internal/notify/notifytest"
)

// TestSMTPAlertChecker: a real server whose check fails is mailed DOWN in
// keepalived's format (real servers alert by default once
// notification_email and smtp_server are set); its virtual server's
// quorum loss is mailed only because it asks with smtp_alert.
func TestSMTPAlertChecker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink := notifytest.NewSMTP(t, ln)
	vport, dead := freePort(t), freePort(t)
	conf := fmt.Sprintf(`global_defs {
    router_id lb1
    notification_email {
        ops@example.com
    }
    notification_email_from lb1@example.com
    smtp_server 127.0.0.1 %d
}
virtual_server 127.0.0.1 %d {
    protocol TCP
    delay_loop 1
    smtp_alert
    real_server 127.0.0.1 %d {
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
}
`, ln.Addr().(*net.TCPAddr).Port, vport, dead)
	startDaemonD(t, conf, "-C")
	var subjects []string
	for range 2 {
		got := sink.Next(t)
		if len(got) < 6 {
			t.Fatalf("session %q", got)
		}
		msg := got[len(got)-2]
		i := strings.Index(msg, "Subject: ")
		subjects = append(subjects, msg[i+len("Subject: "):i+strings.Index(msg[i:], "\r\n")])
		if strings.Contains(msg, "Realserver") && !strings.Contains(msg, "=> CHECK failed on service : ") {
			t.Errorf("real server mail without the failure:\n%s", msg)
		}
	}
	want := []string{
		fmt.Sprintf("[lb1] Realserver [127.0.0.1]:tcp:%d of virtual server [127.0.0.1]:tcp:%d - DOWN", dead, vport),
		fmt.Sprintf("[lb1] Virtualserver [127.0.0.1]:tcp:%d - DOWN", vport),
	}
	if strings.Join(subjects, "\n") != strings.Join(want, "\n") {
		t.Errorf("subjects\n%s\nwant\n%s", strings.Join(subjects, "\n"), strings.Join(want, "\n"))
	}
}
