package notify

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/notify/notifytest"
)

func sinkGlobal(t *testing.T) (*notifytest.SMTP, model.Global) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().(*net.TCPAddr)
	g := model.Global{RouterID: "lb1", NotificationEmail: []string{"ops@example.com", "oncall@example.com"},
		NotificationEmailFrom: "lb1@example.com", SMTPServer: model.SMTPServer{Host: "127.0.0.1", Port: uint16(a.Port)},
		SMTPHeloName: "lb1.example.com"}
	return notifytest.NewSMTP(t, l), g
}

// TestMailerSession: keepalived's SMTP dialogue and message, alerts in
// the order they were raised.
func TestMailerSession(t *testing.T) {
	sink, g := sinkGlobal(t)
	m := NewMailer(g, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer m.Close()
	m.RealServer("[10.0.0.2]:tcp:80", "[10.0.0.1]:tcp:80", false, "connection refused")
	m.Instance("VI_1", "MASTER")

	got := sink.Next(t)
	want := []string{"HELO lb1.example.com", "MAIL FROM:<lb1@example.com>", "RCPT TO:<ops@example.com>", "RCPT TO:<oncall@example.com>", "DATA"}
	if len(got) != 7 || strings.Join(got[:5], "|") != strings.Join(want, "|") || got[6] != "QUIT" {
		t.Fatalf("session %q", got)
	}
	msg := got[5]
	for _, w := range []string{
		"\r\nFrom: lb1@example.com\r\n",
		"\r\nSubject: [lb1] Realserver [10.0.0.2]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - DOWN\r\n",
		"\r\nX-Mailer: Keepalived\r\n",
		"\r\nTo: ops@example.com, oncall@example.com\r\n\r\n=> CHECK failed on service : connection refused <=\r\n",
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("message lacks %q:\n%s", w, msg)
		}
	}
	if !strings.HasPrefix(msg, "DATA:Date: ") {
		t.Errorf("message does not start with its Date header:\n%s", msg)
	}
	second := sink.Next(t)
	if !strings.Contains(second[5], "Subject: [lb1] VRRP Instance VI_1 - Entering MASTER state\r\n") ||
		!strings.Contains(second[5], "=> VRRP Instance is now owning VRRP VIPs <=") {
		t.Errorf("second alert:\n%s", second[5])
	}
}

// TestMailerRefused: a server that refuses a recipient loses that alert
// (logged), not the next one.
func TestMailerRefused(t *testing.T) {
	sink, g := sinkGlobal(t)
	sink.Refuse = "oncall"
	var logged strings.Builder
	m := NewMailer(g, slog.New(slog.NewTextHandler(&logged, nil)))
	m.Group("G", "BACKUP")
	first := sink.Next(t)
	if first[len(first)-1] != "RCPT TO:<oncall@example.com>" {
		t.Fatalf("session went on after a refused recipient: %q", first)
	}
	sink.Refuse = ""
	m.VirtualServer("[10.0.0.1]:tcp:80", false)
	second := sink.Next(t)
	if !strings.Contains(second[5], "Subject: [lb1] Virtualserver [10.0.0.1]:tcp:80 - DOWN") {
		t.Errorf("second alert: %q", second)
	}
	m.Close()
	if !strings.Contains(logged.String(), "smtp alert not sent") || !strings.Contains(logged.String(), "550 no such user") {
		t.Errorf("refusal not logged: %s", logged.String())
	}
}

func TestMailerOff(t *testing.T) {
	if NewMailer(model.Global{SMTPServer: model.SMTPServer{Host: "127.0.0.1", Port: 25}}, nil) != nil {
		t.Error("a mailer without notification_email")
	}
	if NewMailer(model.Global{NotificationEmail: []string{"a@b"}}, nil) != nil {
		t.Error("a mailer without smtp_server")
	}
	var m *Mailer
	m.Instance("VI_1", "MASTER") // nil: nothing, no panic
	m.Close()
}

func TestAlerting(t *testing.T) {
	on, off := true, false
	tests := []struct {
		own, kind, global *bool
		def, want         bool
	}{
		{nil, nil, nil, true, true},
		{nil, nil, nil, false, false},
		{nil, nil, &on, false, true},
		{nil, &off, &on, true, false},
		{&on, &off, &off, false, true},
	}
	for i, tt := range tests {
		if got := Alerting(tt.own, tt.kind, tt.global, tt.def); got != tt.want {
			t.Errorf("%d: Alerting = %v, want %v", i, got, tt.want)
		}
	}
}
