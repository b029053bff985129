package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/keepvs/keepvs/internal/api"
	"github.com/keepvs/keepvs/internal/engine"
)

// runStatus is `keepvs status`: every real server's check state.
func runStatus(ctx context.Context, argv []string, stdout, stderr io.Writer) int {
	c, err := api.Dial(ctx, api.DefaultSocket())
	if err != nil {
		fmt.Fprintf(stderr, "keepvs status: %v\n", err)
		return 1
	}
	defer c.Close()
	var st []engine.RSStatus
	if err := c.Status(ctx, &st); err != nil {
		fmt.Fprintf(stderr, "keepvs status: %v\n", err)
		return 1
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
	return 0
}
