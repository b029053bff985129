package main

import (
	"log/slog"

	"github.com/keepvs/keepvs/internal/engine"
	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/notify"
)

// notifier turns the engine's notifications into notify scripts (in order
// per subject) and LVS FIFO lines, as keepalived's checker process does.
type notifier struct {
	scripts *notify.Runner
	fifos   []*notify.FIFO
	mail    *notify.Mailer // nil: no smtp_server or notification_email
	global  model.Global
}

func newNotifier(cfg *model.Config, log *slog.Logger) *notifier {
	g := cfg.Global
	n := &notifier{scripts: notify.New(notify.Options{User: g.ScriptUser, Group: g.ScriptGroup, Security: g.EnableScriptSecurity, Log: log}),
		mail: notify.NewMailer(g, log), global: g}
	for _, f := range []*model.FIFO{g.NotifyFIFO, g.LVSNotifyFIFO} {
		if f == nil {
			continue
		}
		fifo, err := notify.OpenFIFO(f.Path)
		if err != nil {
			log.Error("notify fifo not opened; its lines are lost", "err", err)
			continue
		}
		n.fifos = append(n.fifos, fifo)
	}
	return n
}

// handle is the engine's Notify hook.
func (n *notifier) handle(ev engine.Notification) {
	vs := vsFIFOName(ev.Virtual)
	var line string
	switch ev.Kind {
	case "rs_up", "rs_down":
		line = notify.RSLine(ev.RSFIFO, vs, ev.Kind == "rs_up")
	case "quorum_up", "quorum_down":
		line = notify.VSLine(vs, ev.Kind == "quorum_up")
	}
	for _, f := range n.fifos {
		f.Write(line)
	}
	if n.mail != nil {
		g := n.global
		switch ev.Kind {
		case "rs_up", "rs_down":
			if ev.Real != nil && notify.Alerting(ev.Real.SMTPAlert, g.SMTPAlertChecker, g.SMTPAlert, true) {
				n.mail.RealServer(ev.RSFIFO, vs, ev.Kind == "rs_up", ev.Reason)
			}
		case "quorum_up", "quorum_down":
			if notify.Alerting(ev.Virtual.SMTPAlert, g.SMTPAlertChecker, g.SMTPAlert, false) {
				n.mail.VirtualServer(vs, ev.Kind == "quorum_up")
			}
		}
	}
	if ev.Script != nil {
		n.scripts.Run(ev.VS+" "+ev.RS, *ev.Script)
	}
}

// close waits for running scripts and closes the FIFOs.
func (n *notifier) close() {
	n.scripts.Wait()
	n.mail.Close()
	for _, f := range n.fifos {
		f.Close()
	}
}

func vsFIFOName(vs *model.VirtualServer) string {
	if vs.Addr.IsValid() {
		return notify.ServiceName(vs.Protocol.String(), vs.Addr, vs.Port)
	}
	return "[" + vs.Name() + "]"
}
