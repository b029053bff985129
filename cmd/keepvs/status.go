package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keepvs/keepvs/internal/api"
	"github.com/keepvs/keepvs/internal/engine"
	"github.com/keepvs/keepvs/internal/vrrpd"
)

// runStatus is `keepvs status`: every real server's check state.
func runStatus(ctx context.Context, argv []string, stdout, stderr io.Writer) int {
	c, err := api.Dial(ctx, api.DefaultSocket())
	if err != nil {
		fmt.Fprintf(stderr, "keepvs status: %v\n", err)
		return 1
	}
	defer c.Close()
	var raw json.RawMessage
	if err := c.Status(ctx, &raw); err != nil {
		fmt.Fprintf(stderr, "keepvs status: %v\n", err)
		return 1
	}
	// A daemon running VRRP answers {"real_servers": [...], "vrrp":
	// [...]}; an LVS-only one the bare list of real servers.
	var st []engine.RSStatus
	var full struct {
		RealServers []engine.RSStatus      `json:"real_servers"`
		VRRP        []vrrpd.InstanceStatus `json:"vrrp"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		if err := json.Unmarshal(raw, &full); err != nil {
			fmt.Fprintf(stderr, "keepvs status: %v\n", err)
			return 1
		}
		st = full.RealServers
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "VIRTUAL SERVER\tREAL SERVER\tSTATE\tWEIGHT\tSINCE\tREASON")
	for _, s := range st {
		state := "up"
		switch {
		case s.Sorry && s.Up:
			state = "sorry (in)"
		case s.Sorry:
			state = "sorry (out)"
		case !s.Up:
			state = "DOWN"
		case !s.Checked:
			state = "up (no check)"
		}
		since := "-"
		if !s.Since.IsZero() {
			since = s.Since.Local().Format(time.DateTime)
		}
		vs := s.VS
		if !s.QuorumUp {
			vs += " (quorum lost)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", vs, s.RS, state, s.Weight, since, s.Reason)
	}
	w.Flush()
	if cs, err := c.Checks(ctx); err == nil {
		fmt.Fprintf(stdout, "\nchecks: %d probes started, %d of them 100 ms or more late (the latest %.1f ms)\n", cs.Probes, cs.Late, cs.MaxLateMS)
	}
	if len(full.VRRP) > 0 {
		fmt.Fprintln(stdout)
		printVRRPStatus(stdout, full.VRRP)
	}
	return 0
}

// printVRRPStatus is the VRRP half of `keepvs status`.
func printVRRPStatus(out io.Writer, st []vrrpd.InstanceStatus) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "VRRP INSTANCE\tINTERFACE\tVRID\tSTATE\tPRIORITY\tMASTER\tVIPS\tSINCE\tRX\tTX\tDROPS")
	for _, s := range st {
		since := "-"
		if !s.Since.IsZero() {
			since = s.Since.Local().Format(time.DateTime)
		}
		master := s.Master
		if master == "" {
			master = "-"
		}
		var drops uint64
		for _, d := range s.Stats.Drops {
			drops += d
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d/%d\t%s\t%s\t%s\t%d\t%d\t%d\n", s.Name, s.Interface, s.VRID, s.State,
			s.Priority, s.BasePriority, master, strings.Join(s.VIPs, ","), since,
			s.Stats.RcvdAdvertisements, s.Stats.SentAdvertisements, drops)
	}
	w.Flush()
}

const rsUsage = `usage: keepvs rs add VIRTUAL_SERVER 'real_server ADDR PORT { ... }'
       keepvs rs del VIRTUAL_SERVER ADDR:PORT
       keepvs rs weight VIRTUAL_SERVER ADDR:PORT WEIGHT
VIRTUAL_SERVER as keepvs status shows it, e.g. "TCP 10.0.0.1:80".
Changes last until the next reload of the configuration.
`

// runRS is `keepvs rs`: real servers added, removed or reweighted at run
// time, with their health checks, without a reload.
func runRS(ctx context.Context, argv []string, stdout, stderr io.Writer) int {
	if len(argv) < 3 {
		fmt.Fprint(stderr, rsUsage)
		return 2
	}
	c, err := api.Dial(ctx, api.DefaultSocket())
	if err != nil {
		fmt.Fprintf(stderr, "keepvs rs: %v\n", err)
		return 1
	}
	defer c.Close()
	verb, vs := argv[0], argv[1]
	switch {
	case verb == "add" && len(argv) == 3:
		err = c.AddRealServer(ctx, vs, argv[2])
	case verb == "del" && len(argv) == 3, verb == "weight" && len(argv) == 4:
		ap, perr := netip.ParseAddrPort(argv[2])
		if perr != nil {
			fmt.Fprintf(stderr, "keepvs rs: %q is not ADDR:PORT\n", argv[2])
			return 2
		}
		if verb == "del" {
			err = c.RemoveRealServer(ctx, vs, ap)
			break
		}
		w, werr := strconv.Atoi(argv[3])
		if werr != nil {
			fmt.Fprintf(stderr, "keepvs rs: weight %q is not a number\n", argv[3])
			return 2
		}
		err = c.SetRealServerWeight(ctx, vs, ap, w)
	default:
		fmt.Fprint(stderr, rsUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "keepvs rs %s: %v\n", verb, err)
		return 1
	}
	return 0
}
