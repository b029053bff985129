package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/keepvs/keepvs/internal/dataplane"
	"github.com/keepvs/keepvs/internal/ipvsadm"
	"github.com/keepvs/keepvs/internal/lvs"
)

// ErrNoDaemon means nothing answers on the control socket.
var ErrNoDaemon = errors.New("no keepvs daemon on the control socket")

// Client calls a keepvs daemon; it is a dataplane.Dataplane, so ipvsadm
// drives a daemon exactly as it drives the kernel.
type Client struct {
	path string
	http *http.Client
	name string
}

var (
	_ dataplane.Dataplane = (*Client)(nil)
	_ ipvsadm.SyncDaemons = (*Client)(nil)
)

// Dial connects to the daemon's socket and asks which data plane it runs.
func Dial(ctx context.Context, path string) (*Client, error) {
	c := &Client{path: path, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}, Timeout: 30 * time.Second}}
	var info struct {
		Dataplane string `json:"dataplane"`
	}
	if err := c.do(ctx, "GET", "/v1/info", nil, &info); err != nil {
		var re *remoteError
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, fmt.Errorf("%w %s: %v", ErrNoDaemon, path, err)
	}
	c.name = info.Dataplane
	return c, nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://keepvs"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
			return fmt.Errorf("daemon answered %s", resp.Status)
		}
		return decodeError(eb)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Status decodes GET /v1/status into v.
func (c *Client) Status(ctx context.Context, v any) error {
	return c.do(ctx, "GET", "/v1/status", nil, v)
}

// Checks is GET /v1/checks.
func (c *Client) Checks(ctx context.Context) (CheckStats, error) {
	var v CheckStats
	return v, c.do(ctx, "GET", "/v1/checks", nil, &v)
}

// AddRealServer adds a real server (a keepalived real_server block) to a
// configured virtual server, with its checks.
func (c *Client) AddRealServer(ctx context.Context, vs, block string) error {
	return c.do(ctx, "POST", "/v1/realservers", RealServerRequest{VirtualServer: vs, Block: block}, nil)
}

// RemoveRealServer removes a real server from a virtual server.
func (c *Client) RemoveRealServer(ctx context.Context, vs string, rs netip.AddrPort) error {
	return c.do(ctx, "DELETE", "/v1/realservers", RealServerRequest{VirtualServer: vs, Addr: rs}, nil)
}

// SetRealServerWeight changes a real server's weight.
func (c *Client) SetRealServerWeight(ctx context.Context, vs string, rs netip.AddrPort, w int) error {
	return c.do(ctx, "PUT", "/v1/realservers", RealServerRequest{VirtualServer: vs, Addr: rs, Weight: w}, nil)
}

// Name is the daemon's data plane.
func (c *Client) Name() string { return c.name }

func (c *Client) Info(ctx context.Context) (lvs.Info, error) {
	var v lvs.Info
	return v, c.do(ctx, "GET", "/v1/info", nil, &v)
}

func (c *Client) Services(ctx context.Context) ([]lvs.ServiceStatus, error) {
	var v []lvs.ServiceStatus
	return v, c.do(ctx, "GET", "/v1/services", nil, &v)
}

func (c *Client) AddService(ctx context.Context, s lvs.Service) error {
	return c.do(ctx, "POST", "/v1/services", s, nil)
}

func (c *Client) EditService(ctx context.Context, s lvs.Service) error {
	return c.do(ctx, "PUT", "/v1/services", s, nil)
}

func (c *Client) DelService(ctx context.Context, k lvs.ServiceKey) error {
	return c.do(ctx, "DELETE", "/v1/services", k, nil)
}

func (c *Client) Flush(ctx context.Context) error {
	return c.do(ctx, "POST", "/v1/flush", struct{}{}, nil)
}

func (c *Client) AddDest(ctx context.Context, k lvs.ServiceKey, d lvs.Destination) error {
	return c.do(ctx, "POST", "/v1/dests", DestRequest{k, d}, nil)
}

func (c *Client) EditDest(ctx context.Context, k lvs.ServiceKey, d lvs.Destination) error {
	return c.do(ctx, "PUT", "/v1/dests", DestRequest{k, d}, nil)
}

func (c *Client) DelDest(ctx context.Context, k lvs.ServiceKey, d netip.AddrPort) error {
	return c.do(ctx, "DELETE", "/v1/dests", DelDestRequest{k, d}, nil)
}

func (c *Client) Conns(ctx context.Context) ([]lvs.Conn, error) {
	var v []lvs.Conn
	return v, c.do(ctx, "GET", "/v1/conns", nil, &v)
}

func (c *Client) Zero(ctx context.Context, k *lvs.ServiceKey) error {
	return c.do(ctx, "POST", "/v1/zero", ZeroRequest{k}, nil)
}

func (c *Client) Timeouts(ctx context.Context) (lvs.Timeouts, error) {
	var v lvs.Timeouts
	return v, c.do(ctx, "GET", "/v1/timeouts", nil, &v)
}

func (c *Client) SetTimeouts(ctx context.Context, t lvs.Timeouts) error {
	return c.do(ctx, "PUT", "/v1/timeouts", t, nil)
}

func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// StartDaemon starts one of the kernel's sync daemons through the daemon.
func (c *Client) StartDaemon(ctx context.Context, d ipvsadm.SyncDaemon) error {
	return c.do(ctx, "POST", "/v1/syncdaemons", d, nil)
}

// StopDaemon stops the master (or backup) sync daemon.
func (c *Client) StopDaemon(ctx context.Context, backup bool) error {
	return c.do(ctx, "DELETE", "/v1/syncdaemons", StopDaemonRequest{Backup: backup}, nil)
}

// Daemons lists the sync daemons running.
func (c *Client) Daemons(ctx context.Context) ([]ipvsadm.SyncDaemon, error) {
	var ds []ipvsadm.SyncDaemon
	err := c.do(ctx, "GET", "/v1/syncdaemons", nil, &ds)
	return ds, err
}
