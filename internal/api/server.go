// Package api is keepvs's control socket: HTTP with JSON bodies over a unix
// socket (mode 0600). Everything that changes the virtual service table at
// run time comes through it, `keepvs adm` included; Client is the other
// end and is itself a dataplane.Dataplane.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/keepvs/keepvs/internal/dataplane"
	"github.com/keepvs/keepvs/internal/ipvsadm"
	"github.com/keepvs/keepvs/internal/lvs"
)

// DestRequest names a destination of a service.
type DestRequest struct {
	Service lvs.ServiceKey  `json:"service"`
	Dest    lvs.Destination `json:"dest"`
}

// DelDestRequest names a destination to remove.
type DelDestRequest struct {
	Service lvs.ServiceKey `json:"service"`
	Dest    netip.AddrPort `json:"dest"`
}

// ZeroRequest zeroes one service's counters, or all with Service nil.
type ZeroRequest struct {
	Service *lvs.ServiceKey `json:"service,omitempty"`
}

// Server serves the API for a data plane (in the daemon, the engine).
type Server struct {
	dp  dataplane.Dataplane
	log *slog.Logger
	mux *http.ServeMux
	// Status, when set, answers GET /v1/status (each real server's check
	// state).
	Status func() any
	// Checks, when set, answers GET /v1/checks: the probes started and
	// how late.
	Checks func() CheckStats
	// RealServers, when set, serves run-time real server changes.
	RealServers RealServers
	// SyncDaemons, when set, are the kernel's IPVS sync daemons, for
	// ipvsadm's --start-daemon, --stop-daemon and --list --daemon.
	// Without it there are none to list and none can start.
	SyncDaemons ipvsadm.SyncDaemons
}

// CheckStats is GET /v1/checks: the probes the checks started since the
// daemon started, those that started 100 ms or more after their due time,
// and the latest start.
type CheckStats struct {
	Probes    uint64  `json:"probes"`
	Late      uint64  `json:"late"`
	MaxLateMS float64 `json:"max_late_ms"`
}

// StopDaemonRequest is the body of DELETE /v1/syncdaemons.
type StopDaemonRequest struct {
	Backup bool `json:"backup"`
}

// RealServers changes real servers of configured virtual servers at run
// time, with their health checks (the engine).
type RealServers interface {
	AddRealServer(ctx context.Context, vs, block string) error
	RemoveRealServer(ctx context.Context, vs string, rs netip.AddrPort) error
	SetRealServerWeight(ctx context.Context, vs string, rs netip.AddrPort, weight int) error
}

// RealServerRequest names a real server of a virtual server ("TCP
// 10.0.0.1:80"); Block is a keepalived real_server block (add), Weight the
// new weight (edit).
type RealServerRequest struct {
	VirtualServer string         `json:"virtual_server"`
	Block         string         `json:"block,omitempty"`
	Addr          netip.AddrPort `json:"addr,omitzero"`
	Weight        int            `json:"weight,omitempty"`
}

// NewServer builds the handlers; Serve listens.
func NewServer(dp dataplane.Dataplane, log *slog.Logger) *Server {
	s := &Server{dp: dp, log: log, mux: http.NewServeMux()}
	s.routes()
	return s
}

// Handler is the API as an http.Handler (tests serve it on anything).
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) routes() {
	get := func(path string, f func(ctx context.Context) (any, error)) {
		s.mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			v, err := f(r.Context())
			reply(w, v, err)
		})
	}
	call := func(method, path string, body func() any, f func(ctx context.Context, req any) error) {
		s.mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) {
			req := body()
			if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(req); err != nil && !errors.Is(err, io.EOF) {
				reply(w, nil, fmt.Errorf("%w: request body: %v", lvs.ErrInvalid, err))
				return
			}
			err := f(r.Context(), req)
			if err != nil {
				s.log.Info("api call refused", "call", method+" "+path, "err", err)
			}
			reply(w, struct{}{}, err)
		})
	}
	get("/v1/info", func(ctx context.Context) (any, error) {
		info, err := s.dp.Info(ctx)
		return struct {
			lvs.Info
			Dataplane string `json:"dataplane"`
		}{info, s.dp.Name()}, err
	})
	get("/v1/status", func(ctx context.Context) (any, error) {
		if s.Status == nil {
			return nil, fmt.Errorf("%w: no status here", dataplane.ErrNotSupported)
		}
		return s.Status(), nil
	})
	get("/v1/checks", func(ctx context.Context) (any, error) {
		if s.Checks == nil {
			return nil, fmt.Errorf("%w: no checks here", dataplane.ErrNotSupported)
		}
		return s.Checks(), nil
	})
	rs := func(f func(RealServers, context.Context, *RealServerRequest) error) func(context.Context, any) error {
		return func(ctx context.Context, r any) error {
			if s.RealServers == nil {
				return fmt.Errorf("%w: no run-time real servers here", dataplane.ErrNotSupported)
			}
			return f(s.RealServers, ctx, r.(*RealServerRequest))
		}
	}
	newRS := func() any { return &RealServerRequest{} }
	call("POST", "/v1/realservers", newRS, rs(func(e RealServers, ctx context.Context, r *RealServerRequest) error {
		return e.AddRealServer(ctx, r.VirtualServer, r.Block)
	}))
	call("DELETE", "/v1/realservers", newRS, rs(func(e RealServers, ctx context.Context, r *RealServerRequest) error {
		return e.RemoveRealServer(ctx, r.VirtualServer, r.Addr)
	}))
	call("PUT", "/v1/realservers", newRS, rs(func(e RealServers, ctx context.Context, r *RealServerRequest) error {
		return e.SetRealServerWeight(ctx, r.VirtualServer, r.Addr, r.Weight)
	}))
	get("/v1/syncdaemons", func(ctx context.Context) (any, error) {
		if s.SyncDaemons == nil {
			return []ipvsadm.SyncDaemon{}, nil
		}
		return s.SyncDaemons.Daemons(ctx)
	})
	sd := func(f func(ipvsadm.SyncDaemons, context.Context, any) error) func(context.Context, any) error {
		return func(ctx context.Context, r any) error {
			if s.SyncDaemons == nil {
				return fmt.Errorf("%w: the %s data plane has no sync daemons", dataplane.ErrNotSupported, s.dp.Name())
			}
			return f(s.SyncDaemons, ctx, r)
		}
	}
	call("POST", "/v1/syncdaemons", func() any { return &ipvsadm.SyncDaemon{} }, sd(func(d ipvsadm.SyncDaemons, ctx context.Context, r any) error {
		return d.StartDaemon(ctx, *r.(*ipvsadm.SyncDaemon))
	}))
	call("DELETE", "/v1/syncdaemons", func() any { return &StopDaemonRequest{} }, sd(func(d ipvsadm.SyncDaemons, ctx context.Context, r any) error {
		return d.StopDaemon(ctx, r.(*StopDaemonRequest).Backup)
	}))
	get("/v1/services", func(ctx context.Context) (any, error) { return s.dp.Services(ctx) })
	get("/v1/conns", func(ctx context.Context) (any, error) { return s.dp.Conns(ctx) })
	get("/v1/timeouts", func(ctx context.Context) (any, error) { return s.dp.Timeouts(ctx) })
	newSvc := func() any { return &lvs.Service{} }
	call("POST", "/v1/services", newSvc, func(ctx context.Context, r any) error { return s.dp.AddService(ctx, *r.(*lvs.Service)) })
	call("PUT", "/v1/services", newSvc, func(ctx context.Context, r any) error { return s.dp.EditService(ctx, *r.(*lvs.Service)) })
	call("DELETE", "/v1/services", func() any { return &lvs.ServiceKey{} }, func(ctx context.Context, r any) error {
		return s.dp.DelService(ctx, *r.(*lvs.ServiceKey))
	})
	call("POST", "/v1/flush", func() any { return &struct{}{} }, func(ctx context.Context, _ any) error { return s.dp.Flush(ctx) })
	newDest := func() any { return &DestRequest{} }
	call("POST", "/v1/dests", newDest, func(ctx context.Context, r any) error {
		d := r.(*DestRequest)
		return s.dp.AddDest(ctx, d.Service, d.Dest)
	})
	call("PUT", "/v1/dests", newDest, func(ctx context.Context, r any) error {
		d := r.(*DestRequest)
		return s.dp.EditDest(ctx, d.Service, d.Dest)
	})
	call("DELETE", "/v1/dests", func() any { return &DelDestRequest{} }, func(ctx context.Context, r any) error {
		d := r.(*DelDestRequest)
		return s.dp.DelDest(ctx, d.Service, d.Dest)
	})
	call("POST", "/v1/zero", func() any { return &ZeroRequest{} }, func(ctx context.Context, r any) error {
		return s.dp.Zero(ctx, r.(*ZeroRequest).Service)
	})
	call("PUT", "/v1/timeouts", func() any { return &lvs.Timeouts{} }, func(ctx context.Context, r any) error {
		return s.dp.SetTimeouts(ctx, *r.(*lvs.Timeouts))
	})
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		status, body := encodeError(err)
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
		return
	}
	json.NewEncoder(w).Encode(v)
}

// Listen creates the unix socket at path with mode 0600, replacing a stale
// socket file a crashed daemon left behind, but refusing to take over one
// a live daemon still answers on.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another keepvs is running there", path)
	}
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return l, nil
}

// Serve answers API calls on l until ctx ends, then removes the socket.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
		<-done
		return nil
	case err := <-done:
		return err
	}
}

// DefaultSocket is where the daemon listens and `keepvs adm` looks:
// $KEEPVS_SOCKET, else /run/keepvs/keepvs.sock for root, else a per-user
// path (so the daemon runs without root).
func DefaultSocket() string {
	if p := os.Getenv("KEEPVS_SOCKET"); p != "" {
		return p
	}
	if os.Geteuid() == 0 {
		return "/run/keepvs/keepvs.sock"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "keepvs", "keepvs.sock")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("keepvs-%d", os.Geteuid()), "keepvs.sock")
}
