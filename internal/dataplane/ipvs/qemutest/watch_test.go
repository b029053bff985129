package qemutest

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	cfipvs "github.com/cloudflare/ipvs"
)

// TestGuestWatch times a daemon from its start to the kernel's table
// complete, the same way for keepalived and keepvs: it starts the command
// in $KEEPVS_WATCH_CMD (its output to $KEEPVS_WATCH_LOG) and asks the
// kernel every 50 ms, over netlink from this one process (no fork per
// look), for the destinations of the first and of the last virtual
// service of the configuration. The table counts as complete when the
// last service has all its destinations and a full listing then agrees;
// a full listing that does not (a daemon that does not add in file order)
// sends it back to polling. It prints when the first service appeared and
// when the table was complete, in seconds from the start.
func TestGuestWatch(t *testing.T) {
	inGuest(t)
	cmdline := strings.Fields(os.Getenv("KEEPVS_WATCH_CMD"))
	if len(cmdline) == 0 {
		t.Skip("KEEPVS_WATCH_CMD not set")
	}
	nvs, _ := strconv.Atoi(os.Getenv("KEEPVS_WATCH_VS"))
	nrs, _ := strconv.Atoi(os.Getenv("KEEPVS_WATCH_RS"))
	if nvs == 0 || nrs == 0 {
		t.Fatal("KEEPVS_WATCH_VS and KEEPVS_WATCH_RS must say the table's size")
	}
	c, err := cfipvs.New()
	if err != nil {
		t.Fatal(err)
	}
	// largeConfig's first and last virtual_server.
	svc := func(v int) cfipvs.Service {
		return cfipvs.Service{Address: netip.AddrFrom4([4]byte{10, byte(v / 250), byte(v % 250), 1}), Port: 80,
			Family: cfipvs.INET, Protocol: cfipvs.TCP}
	}
	first, last := svc(0), svc(nvs-1)
	log, err := os.Create(os.Getenv("KEEPVS_WATCH_LOG"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(cmdline[0], cmdline[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var tFirst, tDone time.Duration
	fulls := 0
	for deadline := t0.Add(120 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if tFirst == 0 {
			if _, err := c.Destinations(first); err == nil {
				tFirst = time.Since(t0)
			} else {
				continue
			}
		}
		ds, err := c.Destinations(last)
		if err != nil || len(ds) < nrs {
			continue
		}
		at := time.Since(t0)
		fulls++
		if n, m := count(c); n == nvs && m == nvs*nrs {
			tDone = at
			break
		}
	}
	// The daemon keeps running: the script stops it by its pid file.
	fmt.Printf("WATCH first=%.3f done=%.3f full_listings=%d start=%s\n", tFirst.Seconds(), tDone.Seconds(), fulls, t0.UTC().Format("15:04:05.000"))
	if tDone == 0 {
		t.Errorf("table not complete after 120 s")
	}
}

// count is how many services and destinations the kernel has.
func count(c cfipvs.Client) (int, int) {
	svcs, err := c.Services()
	if err != nil {
		return 0, 0
	}
	n := 0
	for _, s := range svcs {
		ds, err := c.Destinations(s.Service)
		if err == nil {
			n += len(ds)
		}
	}
	return len(svcs), n
}
