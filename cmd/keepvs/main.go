// Command keepvs is LVS + keepalived in one program. Called as keepvs or
// keepalived it takes keepalived's options; called as ipvsadm (or as
// "keepvs adm") it is ipvsadm.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var code int
	if os.Getenv(vrrpChildFDEnv) != "" {
		code = vrrpChildMain(ctx, os.Stderr) // the daemon's VRRP process (vrrpchild.go)
	} else {
		code = run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	}
	stop()
	os.Exit(code)
}

// run dispatches on the program name and the first argument.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	prog := filepath.Base(args[0])
	switch {
	case prog == "ipvsadm":
		return runAdm(ctx, "ipvsadm", args[1:], stdin, stdout, stderr)
	case len(args) > 1 && args[1] == "adm":
		return runAdm(ctx, "keepvs adm", args[2:], stdin, stdout, stderr)
	case len(args) > 1 && args[1] == "status":
		return runStatus(ctx, args[2:], stdout, stderr)
	case len(args) > 1 && args[1] == "rs":
		return runRS(ctx, args[2:], stdout, stderr)
	}
	return runDaemon(ctx, prog, args[1:], stdin, stdout, stderr)
}
