package notify

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keepvs/keepvs/internal/model"
)

// Mail alerts: keepalived's smtp_alert. The subjects, bodies and headers
// are keepalived 2.2.7's (taken from its binary's strings), so filters
// written for its mail keep working:
//
//	[router_id] Realserver [10.0.0.2]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - DOWN
//	=> CHECK failed on service : connection refused <=
//	[router_id] Virtualserver [10.0.0.1]:tcp:80 - DOWN
//	[router_id] VRRP Instance VI_1 - Entering MASTER state
//	=> VRRP Instance is now owning VRRP VIPs <=
//	[router_id] VRRP Group G - Entering MASTER state
//	=> All VRRP group instances are now in MASTER state <=
//
// Mail goes out one at a time in order, from a goroutine of its own, so
// a slow or dead smtp_server never holds a state change; a queue that
// fills (the server down for long) drops the newest with a log line.

// mailQueue bounds the alerts waiting for the server.
const mailQueue = 256

// Mailer sends alert mail through global_defs' smtp_server to
// notification_email.
type Mailer struct {
	server   string // host:port
	from     string
	to       []string
	helo     string
	timeout  time.Duration
	routerID string
	log      *slog.Logger

	q    chan mail
	done chan struct{}
	once sync.Once
}

type mail struct{ subject, body string }

// NewMailer returns the Mailer global_defs asks for, or nil when it names
// no smtp_server or no notification_email (nothing is sent then, as in
// keepalived).
func NewMailer(g model.Global, log *slog.Logger) *Mailer {
	if g.SMTPServer.Host == "" || len(g.NotificationEmail) == 0 {
		return nil
	}
	host, _ := os.Hostname()
	m := &Mailer{
		server:   net.JoinHostPort(g.SMTPServer.Host, strconv.Itoa(int(g.SMTPServer.Port))),
		from:     g.NotificationEmailFrom,
		to:       g.NotificationEmail,
		helo:     g.SMTPHeloName,
		timeout:  g.SMTPConnectTimeout.D(),
		routerID: g.RouterID,
		log:      log,
		q:        make(chan mail, mailQueue),
		done:     make(chan struct{}),
	}
	if m.from == "" {
		m.from = "keepalived@" + host
	}
	if m.helo == "" {
		m.helo = host
	}
	if m.routerID == "" {
		m.routerID = host
	}
	if m.timeout <= 0 {
		m.timeout = 30 * time.Second
	}
	go m.run()
	return m
}

// The alerts do nothing on a nil Mailer.

// RealServer alerts a real server's change: up, or down with the reason.
func (m *Mailer) RealServer(rs, vs string, up bool, reason string) {
	if m == nil {
		return
	}
	body := "=> CHECK succeed on service <="
	if !up {
		body = "=> CHECK failed on service : " + reason + " <="
	}
	m.send(fmt.Sprintf("[%s] Realserver %s of virtual server %s - %s", m.routerID, rs, vs, upDown(up)), body)
}

// VirtualServer alerts a virtual server's quorum gained or lost.
func (m *Mailer) VirtualServer(vs string, up bool) {
	if m == nil {
		return
	}
	body := "=> Gained quorum <="
	if !up {
		body = "=> Lost quorum <="
	}
	m.send(fmt.Sprintf("[%s] Virtualserver %s - %s", m.routerID, vs, upDown(up)), body)
}

// Instance alerts a VRRP instance's new state (MASTER, BACKUP, FAULT,
// STOP or DELETED).
func (m *Mailer) Instance(name, state string) {
	if m == nil {
		return
	}
	body := "=> VRRP Instance is no longer owning VRRP VIPs <="
	switch state {
	case "MASTER":
		body = "=> VRRP Instance is now owning VRRP VIPs <="
	case "STOP":
		body = "=> VRRP Instance stopping <="
	case "DELETED":
		body = "=> VRRP Deleted at reload <="
	}
	m.send(fmt.Sprintf("[%s] VRRP Instance %s - Entering %s state", m.routerID, name, state), body)
}

// Group alerts a sync group's new state.
func (m *Mailer) Group(name, state string) {
	if m == nil {
		return
	}
	body := "=> All VRRP group instances are now in " + state + " state <="
	if state == "STOP" {
		body = "=> All VRRP group instances are now stopping <="
	}
	m.send(fmt.Sprintf("[%s] VRRP Group %s - Entering %s state", m.routerID, name, state), body)
}

func (m *Mailer) send(subject, body string) {
	select {
	case m.q <- mail{subject, body}:
	default:
		m.log.Warn("smtp alert dropped: too many waiting for the smtp server", "subject", subject)
	}
}

// Close sends what is queued, for at most one connect timeout more, and
// stops.
func (m *Mailer) Close() {
	if m == nil {
		return
	}
	m.once.Do(func() { close(m.q) })
	select {
	case <-m.done:
	case <-time.After(m.timeout):
	}
}

func (m *Mailer) run() {
	defer close(m.done)
	for a := range m.q {
		if err := m.deliver(a, time.Now()); err != nil {
			m.log.Error("smtp alert not sent", "server", m.server, "subject", a.subject, "err", err)
			continue
		}
		m.log.Info("smtp alert sent", "subject", a.subject)
	}
}

// deliver is one SMTP session: HELO, MAIL FROM, RCPT TO each recipient,
// DATA with keepalived's headers, QUIT; every step within the connect
// timeout.
func (m *Mailer) deliver(a mail, now time.Time) error {
	c, err := net.DialTimeout("tcp", m.server, m.timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(m.timeout))
	r := bufio.NewReader(c)
	step := func(cmd string, want int) error {
		if cmd != "" {
			if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
				return err
			}
		}
		return expect(r, want, cmd)
	}
	if err := step("", 220); err != nil {
		return err
	}
	if err := step("HELO "+m.helo, 250); err != nil {
		return err
	}
	if err := step("MAIL FROM:<"+m.from+">", 250); err != nil {
		return err
	}
	for _, to := range m.to {
		if err := step("RCPT TO:<"+to+">", 250); err != nil {
			return err
		}
	}
	if err := step("DATA", 354); err != nil {
		return err
	}
	if _, err := c.Write(message(m.from, m.to, a, now)); err != nil {
		return err
	}
	if err := expect(r, 250, "DATA"); err != nil {
		return err
	}
	return step("QUIT", 221)
}

// message is the mail with its headers, dot-stuffed and ended with the
// lone dot.
func message(from string, to []string, a mail, now time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	fmt.Fprintf(&b, "From: %s\r\n", from)
	fmt.Fprintf(&b, "Subject: %s\r\n", a.subject)
	b.WriteString("X-Mailer: Keepalived\r\n")
	fmt.Fprintf(&b, "To: %s\r\n\r\n", strings.Join(to, ", "))
	for _, line := range strings.Split(a.body, "\n") {
		if strings.HasPrefix(line, ".") {
			line = "." + line
		}
		b.WriteString(line + "\r\n")
	}
	b.WriteString(".\r\n")
	return []byte(b.String())
}

// expect reads one (possibly multi-line) SMTP reply and checks its code.
func expect(r *bufio.Reader, want int, after string) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if len(line) < 4 {
			return fmt.Errorf("smtp server: short reply %q", line)
		}
		if line[3] == '-' {
			continue
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || code != want {
			if after == "" {
				after = "connect"
			}
			return fmt.Errorf("smtp server answered %q to %s", strings.TrimSpace(line), after)
		}
		return nil
	}
}

// Alerting says whether an object's smtp_alert is on: its own setting,
// else the global one for its kind (smtp_alert_vrrp or _checker), else
// smtp_alert, else def (keepalived: on for real servers, off otherwise).
func Alerting(own, kind, global *bool, def bool) bool {
	for _, b := range []*bool{own, kind, global} {
		if b != nil {
			return *b
		}
	}
	return def
}
