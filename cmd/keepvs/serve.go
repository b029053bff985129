package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/keepvs/keepvs/internal/api"
	"github.com/keepvs/keepvs/internal/check/build"
	"github.com/keepvs/keepvs/internal/check/tcp"
	"github.com/keepvs/keepvs/internal/clock"
	"github.com/keepvs/keepvs/internal/conf"
	"github.com/keepvs/keepvs/internal/dataplane"
	"github.com/keepvs/keepvs/internal/dataplane/ipvs"
	"github.com/keepvs/keepvs/internal/dataplane/proxy"
	"github.com/keepvs/keepvs/internal/engine"
	"github.com/keepvs/keepvs/internal/ipvsadm"
	"github.com/keepvs/keepvs/internal/lvs"
	"github.com/keepvs/keepvs/internal/model"
	"github.com/keepvs/keepvs/internal/sched"
)

// kernelHasIPVS reports whether this kernel has IP Virtual Server loaded.
func kernelHasIPVS() bool {
	_, err := os.Stat("/proc/net/ip_vs")
	return err == nil
}

// chooseDataplane picks the data plane and says why.
func chooseDataplane(want string, log *slog.Logger) (string, error) {
	switch want {
	case "", "auto":
		if kernelHasIPVS() {
			log.Info("kernel IPVS is present; using it", "dataplane", "ipvs")
			return "ipvs", nil
		}
		log.Info("no IP Virtual Server in this kernel (no /proc/net/ip_vs); using the userspace proxy", "dataplane", "proxy")
		return "proxy", nil
	case "proxy", "ipvs":
		return want, nil
	case "xdp":
		return "", fmt.Errorf("--dataplane %s: not built yet; use proxy, ipvs or auto", want)
	}
	return "", fmt.Errorf("--dataplane %q: want proxy, ipvs, xdp or auto", want)
}

// tcpCheckMode checks --tcp-check's value before anything starts.
func tcpCheckMode(want string) (string, error) {
	switch want {
	case "", "connect":
		return "connect", nil
	case "syn":
		return want, nil
	}
	return "", fmt.Errorf("--tcp-check %q: want connect or syn", want)
}

// openTCPCheck sets up --tcp-check=syn: the raw sockets and reserved
// source ports of the half-open prober, run until ctx ends. Without them
// (no CAP_NET_RAW) TCP_CHECKs connect, with one warning.
func openTCPCheck(ctx context.Context, mode string, receive tcp.ReceiveMode, log *slog.Logger) build.Options {
	opt := build.Options{Logger: log}
	if mode != "syn" {
		return opt
	}
	p, err := tcp.OpenSynProber(tcp.SynOptions{Receive: receive, Logger: log})
	if err != nil {
		log.Warn("--tcp-check syn: cannot probe half-open; TCP_CHECK connects instead", "err", err)
		return opt
	}
	first, last := p.Ports()
	log.Info("TCP_CHECK probes half-open", "source_ports", fmt.Sprintf("%d-%d", first, last), "reserved", p.Reserved(), "answers", p.Receive())
	go p.Run(ctx)
	opt.SynProber = p
	return opt
}

// runningDataplane is a data plane with what the daemon does around it:
// run runs it until ctx ends, loaded follows the configuration's first
// load, stop removes what keepvs installed.
type runningDataplane struct {
	dp     dataplane.Dataplane
	run    func(ctx context.Context) error
	loaded func(ctx context.Context)
	stop   func(ctx context.Context)
}

// openDataplane builds the chosen data plane. The kernel's is shared with
// whatever else uses IPVS: global_defs lvs_flush empties it first,
// otherwise keepvs adopts the services it is configured with, and on stop
// it removes what it installed (lvs_flush_on_stop).
func openDataplane(ctx context.Context, name string, cfg *model.Config, log *slog.Logger) (*runningDataplane, error) {
	if name == "ipvs" {
		k, err := ipvs.Open()
		if err != nil {
			return nil, fmt.Errorf("--dataplane ipvs: %w", err)
		}
		own := ipvs.NewOwner(k)
		if err := own.Start(ctx, cfg.Global.LVSFlush); err != nil {
			k.Close()
			return nil, fmt.Errorf("--dataplane ipvs: %w", err)
		}
		if t := cfg.Global.LVSTimeouts; t != nil {
			if err := own.SetTimeouts(ctx, lvs.Timeouts{TCP: t.TCP.D(), TCPFin: t.TCPFin.D(), UDP: t.UDP.D()}); err != nil {
				log.Error("lvs_timeouts", "err", err)
			}
		}
		return &runningDataplane{
			dp:  own,
			run: func(ctx context.Context) error { <-ctx.Done(); return nil },
			loaded: func(ctx context.Context) {
				n, err := own.Settle(ctx)
				if err != nil {
					log.Error("adopting the kernel's virtual services", "err", err)
				}
				log.Info("kernel IPVS ready", "adopted", n, "installed", own.Owned(), "requests", k.Ops().Changes())
			},
			stop: func(ctx context.Context) {
				if err := own.Release(ctx, cfg.Global.LVSFlushOnStop); err != nil {
					log.Error("removing the virtual services", "err", err)
				}
			},
		}, nil
	}
	table := lvs.NewTable(clock.Real{}, sched.Standard())
	px := proxy.New(table, log, proxy.Options{})
	return &runningDataplane{
		dp:     px,
		run:    px.Run,
		loaded: func(context.Context) {},
		stop:   func(ctx context.Context) { px.Flush(ctx) },
	}, nil
}

// serve runs the daemon until SIGTERM or SIGINT.
func serve(ctx context.Context, prog, path string, src []byte, copt conf.Options, opts parsed, stderr io.Writer) int {
	log, closeLog, err := newLogger(opts, stderr, localSyslog)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 2
	}
	defer closeLog()
	cfg, diags := loadConfig(path, src, copt)
	only := subsystems(opts)
	only(cfg)
	if opts.has("dump-conf") && cfg != nil {
		// keepalived -d: the configuration as the daemon will run it, in
		// the log.
		if js, err := json.Marshal(cfg); err == nil {
			log.Info("configuration", "config", path, "dump", string(js))
		}
	}
	for _, d := range diags {
		if d.Severity == conf.Warning {
			log.Warn(d.String())
		} else {
			log.Error(d.String())
		}
	}
	if diags.HasErrors() {
		log.Error("configuration rejected; not starting", "config", path)
		return 4
	}
	tcpMode, err := tcpCheckMode(opts.get("tcp-check", ""))
	if err != nil {
		log.Error(err.Error())
		return 2
	}
	dpName, err := chooseDataplane(opts.get("dataplane", "auto"), log)
	if err != nil {
		log.Error(err.Error())
		return 2
	}
	rdp, err := openDataplane(ctx, dpName, cfg, log)
	if err != nil {
		log.Error(err.Error())
		return 1
	}
	dp := rdp.dp

	sock := opts.get("control-socket", api.DefaultSocket())
	l, err := api.Listen(sock)
	if err != nil {
		log.Error(err.Error())
		return 1
	}
	if pid := opts.get("pid", ""); pid != "" {
		if err := os.WriteFile(pid, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			log.Error("pid file", "err", err)
			return 1
		}
		defer os.Remove(pid)
	}

	if path := os.Getenv("KEEPVS_CPUPROFILE"); path != "" {
		// For profiling the daemon under load (docs/benchmarks.md).
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	notes := newNotifier(cfg, log)
	defer notes.close()
	receive, err := tcp.ParseReceiveMode(opts.get("syn-receive", ""))
	if err != nil {
		log.Error("--syn-receive " + err.Error())
		return 2
	}
	bopt := openTCPCheck(ctx, tcpMode, receive, log)
	if bopt.ClientCert, err = build.LoadSSL(cfg.SSL); err != nil {
		// As a failed check: SSL_GETs then present no certificate, and
		// the real servers that require one fail their checks.
		log.Error("SSL block not loaded; SSL_GET presents no client certificate", "err", err)
	}
	eng := engine.New(dp, log, engine.Options{Checks: true, Notify: notes.handle, Build: bopt})
	pxDone := make(chan error, 1)
	go func() { pxDone <- rdp.run(ctx) }()
	go eng.Run(ctx)
	local := &localAddrs{eng: eng, log: log}
	local.follow(ctx, cfg)
	if err := eng.Load(ctx, cfg); err != nil {
		log.Error("cannot install the configuration", "err", err)
		cancel()
		<-pxDone
		dp.Close()
		l.Close()
		os.Remove(sock)
		return 1
	}
	rdp.loaded(ctx)
	syncd := newSyncDaemons(dp, log, !(opts.has("check") && !opts.has("vrrp")), !(opts.has("vrrp") && !opts.has("check")))
	syncd.start(ctx, cfg)
	apiDone := make(chan error, 1)
	srv := api.NewServer(eng, log)
	srv.Status = func() any { return eng.Status() }
	if _, ok := eng.CheckStats(); ok {
		srv.Checks = func() api.CheckStats {
			st, _ := eng.CheckStats()
			return api.CheckStats{Probes: st.Probes, Late: st.Late, MaxLateMS: float64(st.MaxLate) / float64(time.Millisecond)}
		}
	}
	if sd, ok := dp.(ipvsadm.SyncDaemons); ok {
		srv.SyncDaemons = sd
	}
	vr := startVRRP(ctx, cfg, opts, log, stderr, srv, syncd.transition)
	defer vr.stop()
	srv.RealServers = eng
	go func() { apiDone <- srv.Serve(ctx, l) }()
	log.Info("keepvs running", "version", version, "config", path, "dataplane", dp.Name(), "control_socket", sock)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			if cfg := reload(ctx, eng, path, src, copt, only, log); cfg != nil {
				vr.reload(cfg)
				syncd.reload(ctx, cfg)
				local.follow(ctx, cfg)
			}
			continue
		case err := <-pxDone:
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Error("data plane stopped", "err", err)
				cancel()
				<-apiDone
				return 1
			}
		case <-ctx.Done():
		}
		break
	}
	log.Info("stopping: removing the virtual services keepvs installed")
	syncd.stop(context.Background())
	eng.Shutdown()
	cancel()
	<-apiDone
	rdp.stop(context.Background())
	dp.Close()
	os.Remove(sock)
	return 0
}

// reload re-reads the configuration and applies what changed. A
// configuration with errors is refused whole, each error logged with its
// file:line, and the running one stays; the one accepted is returned.
func reload(ctx context.Context, eng *engine.Engine, path string, src []byte, copt conf.Options, only func(*model.Config), log *slog.Logger) *model.Config {
	log.Info("SIGHUP: reloading", "config", path)
	cfg, diags := loadConfig(path, src, copt)
	only(cfg)
	for _, d := range diags {
		if d.Severity == conf.Error {
			log.Error(d.String())
		} else {
			log.Warn(d.String())
		}
	}
	if diags.HasErrors() {
		log.Error("reload refused: the configuration has errors; the running configuration is unchanged", "config", path, "errors", len(diags.Errors()))
		return nil
	}
	if err := eng.Reload(ctx, cfg); err != nil {
		log.Error("reload applied with errors", "err", err)
		return cfg
	}
	log.Info("reload done", "config", path)
	return cfg
}

// subsystems applies keepalived's -P (VRRP only) and -C (health checks and
// LVS only) to a loaded configuration: the other half is dropped, so it is
// neither run nor reloaded.
func subsystems(opts parsed) func(*model.Config) {
	vrrpOnly, checkOnly := opts.has("vrrp"), opts.has("check")
	return func(c *model.Config) {
		if c == nil || vrrpOnly == checkOnly {
			return
		}
		if vrrpOnly {
			c.LVS = model.LVS{}
		} else {
			c.VRRP = model.VRRP{}
		}
	}
}
