package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/keepvs/keepvs/internal/check/tcp"
	"github.com/keepvs/keepvs/internal/conf"
	"github.com/keepvs/keepvs/internal/model"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

//go:embed default.conf
var defaultConf []byte

const defaultConfPath = "/etc/keepalived/keepalived.conf"

// daemonOptions are keepalived's command-line options plus keepvs's own.
var daemonOptions = []option{
	{'f', "use-file", requiredArg, "use the specified configuration file (default " + defaultConfPath + ", else the embedded default)"},
	{'t', "config-test", optionalArg, "check the configuration, print every error and warning, exit non-zero on errors"},
	{0, "dump", noArg, "with -t: print the normalized configuration as JSON"},
	{0, "print-default", noArg, "print the embedded default configuration"},
	{'i', "config-id", requiredArg, "config id for @ID / @^ID lines (default: the short host name)"},
	{'P', "vrrp", noArg, "only run the VRRP subsystem"},
	{'C', "check", noArg, "only run the health-checker subsystem"},
	{'l', "log-console", noArg, "log to the console (stderr)"},
	{'D', "log-detail", noArg, "detailed log messages"},
	{'S', "log-facility", requiredArg, "syslog facility: 0-7, local0-7, user or daemon"},
	{'G', "no-syslog", noArg, "don't log via syslog"},
	{'n', "dont-fork", noArg, "don't fork (keepvs never forks; accepted for keepalived's command lines)"},
	{'d', "dump-conf", noArg, "log the configuration as the daemon runs it (JSON)"},
	{'p', "pid", requiredArg, "pid file"},
	{'r', "vrrp_pid", requiredArg, "pid file of the VRRP process"},
	{'c', "checkers_pid", requiredArg, "accepted for keepalived's command lines (the checkers run in the main process)"},
	{0, "signum", requiredArg, "print the signal number for STOP, RELOAD, DATA, STATS, STATS_CLEAR or JSON"},
	{0, "dataplane", requiredArg, "proxy, ipvs, xdp or auto (default auto: what this host supports, else proxy)"},
	{0, "tcp-check", requiredArg, "how TCP_CHECK probes: connect (default: a whole connection, as keepalived) or syn (half-open: a raw SYN, up on SYN-ACK, down on RST or silence; needs CAP_NET_RAW, else connect)"},
	{0, "syn-receive", requiredArg, "with --tcp-check=syn, how answers are read: auto (default: ebpf where it loads, else ring), ebpf (a program on every interface's ingress takes them and sends the RSTs; CAP_BPF, kernel 6.6+), ring (a packet ring; the kernel sends the RSTs) or raw (raw sockets)"},
	{0, "control-socket", requiredArg, "the control socket (default $KEEPVS_SOCKET, else /run/keepvs/keepvs.sock as root)"},
	{'v', "version", noArg, "display the version"},
	{'h', "help", noArg, "display this help"},
}

// exitConfigTest is keepalived's KEEPALIVED_EXIT_CONFIG_TEST: -t found errors.
const exitConfigTest = 5

func runDaemon(ctx context.Context, prog string, argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts, err := parseOptions(daemonOptions, argv)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\nTry '%s --help' for more information.\n", prog, err, prog)
		return 2
	}
	if len(opts.rest) > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", prog, opts.rest[0])
		return 2
	}
	switch {
	case opts.has("help"):
		fmt.Fprint(stdout, usage(prog, daemonOptions))
		return 0
	case opts.has("version"):
		fmt.Fprintf(stdout, "keepvs %s\n", version)
		return 0
	case opts.has("print-default"):
		stdout.Write(defaultConf)
		return 0
	case opts.has("signum"):
		return printSignum(opts.get("signum", ""), stdout, stderr)
	}
	if _, err := tcpCheckMode(opts.get("tcp-check", "")); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 2
	}
	if _, err := tcp.ParseReceiveMode(opts.get("syn-receive", "")); err != nil {
		fmt.Fprintf(stderr, "%s: --syn-receive %v\n", prog, err)
		return 2
	}
	copt := confOptions(opts.get("config-id", ""))
	path, src, err := configSource(opts.get("use-file", ""))
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 4
	}
	if src != nil {
		fmt.Fprintf(stderr, "%s: %s not found; using the embedded default configuration (see --print-default)\n", prog, defaultConfPath)
	}
	if opts.has("config-test") || opts.has("dump") {
		return configTest(path, src, copt, opts, stdout, stderr)
	}
	return serve(ctx, prog, path, src, copt, opts, stderr)
}

// confOptions are how the daemon reads configurations.
func confOptions(configID string) conf.Options { return conf.Options{ConfigID: configID} }

// configSource picks the configuration: -f, else keepalived's default path,
// else the embedded default (returned as src).
func configSource(flagPath string) (string, []byte, error) {
	if flagPath != "" {
		return flagPath, nil, nil
	}
	if _, err := os.Stat(defaultConfPath); err == nil {
		return defaultConfPath, nil, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", nil, err
	}
	return "<embedded default>", defaultConf, nil
}

// loadConfig reads and builds the configuration.
func loadConfig(path string, src []byte, copt conf.Options) (*model.Config, conf.Diagnostics) {
	if src != nil {
		f, diags := conf.Parse(path, src, copt)
		c, more := model.Build(f)
		return c, append(diags, more...)
	}
	return model.Load(path, copt)
}

// configTest is keepalived -t: every diagnostic on stderr (or the -t log
// file), a summary, and exit status 5 when the configuration has errors.
func configTest(path string, src []byte, copt conf.Options, opts parsed, stdout, stderr io.Writer) int {
	c, diags := loadConfig(path, src, copt)
	out := stderr
	if logFile := opts.get("config-test", ""); logFile != "" {
		f, err := os.Create(logFile)
		if err != nil {
			fmt.Fprintf(stderr, "keepvs: %v\n", err)
			return 4
		}
		defer f.Close()
		out = f
	}
	nerr, nwarn := 0, 0
	for _, d := range diags {
		fmt.Fprintln(out, d.String())
		if d.Severity == conf.Error {
			nerr++
		} else {
			nwarn++
		}
	}
	if opts.has("dump") {
		js, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "keepvs: %v\n", err)
			return 1
		}
		stdout.Write(append(js, '\n'))
	}
	if nerr > 0 {
		fmt.Fprintf(out, "%s: %s, %s: configuration rejected\n", path, count(nerr, "error"), count(nwarn, "warning"))
		return exitConfigTest
	}
	if opts.has("config-test") {
		fmt.Fprintf(out, "%s: configuration OK (%s)\n", path, count(nwarn, "warning"))
	}
	return 0
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// printSignum answers --signum as keepalived does, for scripts that ask
// which signal means what.
func printSignum(name string, stdout, stderr io.Writer) int {
	nums := map[string]int{"STOP": 15, "RELOAD": 1, "DATA": 10, "STATS": 12, "STATS_CLEAR": 63, "JSON": 36}
	n, ok := nums[name]
	if !ok {
		fmt.Fprintf(stderr, "Unknown sigfunc %s\n", name)
		return 1
	}
	fmt.Fprintln(stdout, n)
	return 0
}
