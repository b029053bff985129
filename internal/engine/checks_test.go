package engine

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/check"
	"github.com/keepvs/keepvs/internal/clock/clocktest"
	"github.com/keepvs/keepvs/internal/dataplane/fake"
)

// checked builds an engine with health checks whose Runner never runs:
// tests feed it check events directly, as the Runner would.
func checked(t *testing.T, src string) (*Engine, *fake.Dataplane, *[]Notification) {
	t.Helper()
	clk := clocktest.New(time.Unix(1000, 0))
	dp := newFake()
	var notes []Notification
	e := New(dp, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{Clock: clk, Checks: true,
		Runner: check.NewRunner(check.Config{Clock: clk}),
		Notify: func(n Notification) { notes = append(notes, n) }})
	if err := e.Load(context.Background(), load(t, src)); err != nil {
		t.Fatal(err)
	}
	dp.Calls()
	return e, dp, &notes
}

func event(e *Engine, rs string, up bool, weight int) {
	e.onEvent(check.Event{RealServer: "TCP 10.0.0.1:80 " + rs, At: time.Unix(2000, 0), Up: up, Weight: weight, UpChanged: true, Check: "TCP_CHECK", Reason: "connection refused"})
}

func expectCalls(t *testing.T, dp *fake.Dataplane, want ...string) {
	t.Helper()
	got := dp.Calls()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

const twoRS = `
virtual_server 10.0.0.1 80 {
    protocol TCP
    lvs_sched rr
    real_server 10.0.1.1 80 {
        weight 2
        notify_down "/bin/echo down"
        TCP_CHECK {
        }
    }
    real_server 10.0.1.2 80 {
        weight 3
        inhibit_on_failure
        TCP_CHECK {
        }
    }
}
`

func TestCheckEvents(t *testing.T) {
	e, dp, notes := checked(t, twoRS)
	event(e, "10.0.1.1:80", false, 2)
	expectCalls(t, dp, "DelDest TCP 10.0.0.1:80 10.0.1.1:80")
	event(e, "10.0.1.2:80", false, 3)
	expectCalls(t, dp, "EditDest TCP 10.0.0.1:80 10.0.1.2:80 w0")
	event(e, "10.0.1.1:80", true, 2)
	expectCalls(t, dp, "AddDest TCP 10.0.0.1:80 10.0.1.1:80 w2")
	e.onEvent(check.Event{RealServer: "TCP 10.0.0.1:80 10.0.1.1:80", At: time.Unix(2001, 0), Up: true, Weight: 7, WeightChanged: true})
	expectCalls(t, dp, "EditDest TCP 10.0.0.1:80 10.0.1.1:80 w7")
	if len(*notes) < 2 || (*notes)[0].Kind != "rs_down" || (*notes)[0].Script == nil || (*notes)[0].Script.Cmd != "/bin/echo down" {
		t.Errorf("notifications %+v", *notes)
	}
	st := e.Status()
	if st[1].Up || st[1].Reason != "connection refused" || !st[1].Since.Equal(time.Unix(2000, 0)) {
		t.Errorf("status %+v", st[1])
	}
}

func TestQuorumAndSorryServer(t *testing.T) {
	e, dp, notes := checked(t, `
virtual_server 10.0.0.1 80 {
    protocol TCP
    quorum 4
    hysteresis 1
    sorry_server 10.0.9.9 80
    quorum_down "/bin/echo qdown"
    real_server 10.0.1.1 80 {
        weight 2
        TCP_CHECK {
        }
    }
    real_server 10.0.1.2 80 {
        weight 3
        TCP_CHECK {
        }
    }
}
`)
	// 5 alive; losing 2 leaves 3 = quorum-hysteresis: still up.
	event(e, "10.0.1.1:80", false, 2)
	expectCalls(t, dp, "DelDest TCP 10.0.0.1:80 10.0.1.1:80")
	// 0 alive: quorum lost, the sorry server comes in.
	event(e, "10.0.1.2:80", false, 3)
	expectCalls(t, dp, "DelDest TCP 10.0.0.1:80 10.0.1.2:80", "AddDest TCP 10.0.0.1:80 10.0.9.9:80 w1")
	// 3 alive < quorum+hysteresis 5: still lost, real server waits.
	event(e, "10.0.1.2:80", true, 3)
	expectCalls(t, dp)
	// 5 alive: regained, the sorry server leaves, both come back.
	event(e, "10.0.1.1:80", true, 2)
	expectCalls(t, dp, "DelDest TCP 10.0.0.1:80 10.0.9.9:80", "AddDest TCP 10.0.0.1:80 10.0.1.1:80 w2", "AddDest TCP 10.0.0.1:80 10.0.1.2:80 w3")
	var kinds []string
	for _, n := range *notes {
		kinds = append(kinds, n.Kind)
	}
	if got := strings.Join(kinds, " "); got != "rs_down rs_down quorum_down rs_up rs_up quorum_up" {
		t.Errorf("notifications: %s", got)
	}
}

func TestReload(t *testing.T) {
	e, dp, _ := checked(t, twoRS)
	ctx := context.Background()
	event(e, "10.0.1.1:80", false, 2) // down before the reload
	dp.Calls()

	// Nothing changed: nothing touched, the failed server stays out.
	if err := e.Reload(ctx, load(t, twoRS)); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, dp)

	// One weight changed: exactly one edit.
	changed := strings.Replace(twoRS, "weight 3", "weight 9", 1)
	if err := e.Reload(ctx, load(t, changed)); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, dp, "EditDest TCP 10.0.0.1:80 10.0.1.2:80 w9")
	if st := e.Status(); st[0].Up {
		t.Errorf("a reload brought a failed real server back: %+v", st[0])
	}

	// A new service, a changed scheduler, a removed real server.
	next := strings.Replace(changed, "lvs_sched rr", "lvs_sched wlc", 1)
	next = strings.Replace(next, "10.0.1.1 80", "10.0.1.3 80", 1) + `
virtual_server 10.0.0.2 443 {
    protocol TCP
    real_server 10.0.1.1 443 {
    }
}
`
	if err := e.Reload(ctx, load(t, next)); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, dp,
		"EditService TCP 10.0.0.1:80",
		"AddDest TCP 10.0.0.1:80 10.0.1.3:80 w2",
		"AddService TCP 10.0.0.2:443",
		"AddDest TCP 10.0.0.2:443 10.0.1.1:443 w1")

	// Removing the first service removes it and nothing else.
	only := next[strings.Index(next, "virtual_server 10.0.0.2"):]
	if err := e.Reload(ctx, load(t, only)); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, dp, "DelService TCP 10.0.0.1:80")
}

func TestOmegaOnShutdown(t *testing.T) {
	src := strings.Replace(twoRS, "lvs_sched rr", "lvs_sched rr\n    omega\n    quorum_down \"/bin/echo qdown\"", 1)
	e, _, notes := checked(t, src)
	event(e, "10.0.1.2:80", false, 3)
	*notes = nil
	e.Shutdown()
	var got []string
	for _, n := range *notes {
		got = append(got, n.Kind+" "+n.RS)
	}
	if s := strings.Join(got, ", "); s != "rs_down 10.0.1.1:80, quorum_down " {
		t.Errorf("omega notifications: %s", s)
	}
	e2, _, notes2 := checked(t, twoRS)
	e2.Shutdown()
	if len(*notes2) != 0 {
		t.Errorf("without omega, shutdown notified %v", *notes2)
	}
}
