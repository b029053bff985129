// Package proxy is the userspace data plane: it serves LVS virtual services
// as a TCP and UDP proxy, without root and without the kernel's IPVS. The
// lvs.Table schedules every new connection exactly as IPVS would
// (persistence, weights, thresholds) and keeps the connection table and
// counters; this package moves the bytes.
//
// Design. A few event loops (one per CPU by default), each an epoll
// instance driven by one goroutine, serve every socket; a connection has no
// goroutine and no buffer of its own. A few bytes move with read(2) and
// send(2) through the worker's buffer; more move with splice(2) through a
// pipe taken from the worker's pool only while they are in flight (as
// HAProxy's splice-auto does), so an idle connection costs two sockets and
// about two hundred bytes of Go memory. (Go's own io.Copy between TCPConns
// also splices, but it needs two goroutines per connection and holds a pipe
// per direction for as long as the connection lives, idle or not: four
// extra descriptors each.) Every read or splice from a socket is one
// "packet" for the counters (Session.In/Out). The sockets are served with
// raw system calls (sys.go), which keep the Go scheduler out of the way.
//
// TCP: a listener per service sits in every worker's epoll with
// EPOLLEXCLUSIVE; the worker that accepts a connection asks the Table for a
// real server, connects without blocking and then copies both ways
// edge-triggered. A FIN from one side is passed on with shutdown(SHUT_WR)
// while the other direction goes on (FIN_WAIT or CLOSE_WAIT in the table);
// both FINs make TIME_WAIT; an error or RST resets both peers (CLOSE).
// Connections idle longer than the table's tcp (or tcpfin, once half
// closed) timeout are closed.
//
// UDP: one socket per service and a session per client address, each with
// a connected socket to its real server; replies leave from the service
// socket. Sessions end after the table's udp timeout without traffic.
//
// Every forwarding method (NAT, DR, TUN) is served as a full proxy; the
// table keeps the configured one for listing. Fwmark services and port-less
// persistent services cannot be proxied: they are accepted into the table
// and carry no traffic here.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepvs/keepvs/internal/dataplane"
	"github.com/keepvs/keepvs/internal/lvs"
)

// Options tune the proxy; the zero value is usable.
type Options struct {
	// ConnectTimeout bounds the connect to a real server (default 5s).
	ConnectTimeout time.Duration
	// ConnTimeout bounds a whole TCP connection; 0 is no limit.
	ConnTimeout time.Duration
	// Workers is the number of event loops (default GOMAXPROCS).
	Workers int
}

// ErrClosed is returned by a closed proxy.
var ErrClosed = errors.New("proxy closed")

// Proxy is the userspace data plane over an lvs.Table.
type Proxy struct {
	table *lvs.Table
	log   *slog.Logger
	opts  Options

	mu        sync.Mutex
	workers   []*worker
	frontends map[lvs.ServiceKey]frontend
	warned    map[warning]bool
	nextID    uint32
	nextUDP   int
	closed    bool
	running   bool
	stopRun   context.CancelFunc
	runDone   chan struct{}
	acceptErr atomic.Int64 // monotime of the last accept error logged

	lnMu      sync.RWMutex
	listeners map[uint32]*tcpListener
}

// frontend is what serves one service: a TCP listener or a UDP service
// with the worker that owns it.
type frontend struct {
	tcp *tcpListener
	udp *udpService
	w   *worker
}

type warning struct {
	key  lvs.ServiceKey
	what string
}

var _ dataplane.Dataplane = (*Proxy)(nil)

// New returns a proxy serving the services of table. It starts nothing:
// Run serves.
func New(table *lvs.Table, log *slog.Logger, opts Options) *Proxy {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Proxy{
		table:     table,
		log:       log,
		opts:      opts,
		frontends: map[lvs.ServiceKey]frontend{},
		warned:    map[warning]bool{},
		listeners: map[uint32]*tcpListener{},
	}
}

// Name is "proxy".
func (p *Proxy) Name() string { return "proxy" }

// Run serves traffic (and runs the table's expiry and rate estimator)
// until ctx ends or the proxy is closed.
func (p *Proxy) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if p.running {
		p.mu.Unlock()
		return errors.New("proxy already running")
	}
	if err := p.initWorkersLocked(); err != nil {
		p.mu.Unlock()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.running, p.stopRun, p.runDone = true, cancel, make(chan struct{})
	workers := p.workers
	p.mu.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() { p.table.Run(ctx) })
	for _, w := range workers {
		wg.Go(w.loop)
	}
	<-ctx.Done()
	for _, w := range workers {
		w.stop.Store(true)
		w.wake()
	}
	wg.Wait()

	p.mu.Lock()
	p.running = false
	close(p.runDone)
	p.mu.Unlock()
	return nil
}

// Close stops Run, closes the listeners and every proxied connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	if p.running {
		stop, done := p.stopRun, p.runDone
		p.mu.Unlock()
		stop()
		<-done
		p.mu.Lock()
	}
	defer p.mu.Unlock()
	for k := range p.frontends {
		p.closeFrontendLocked(k)
	}
	for _, w := range p.workers {
		w.do(w.shutAll)
		w.close()
	}
	p.workers = nil
	return nil
}

func (p *Proxy) initWorkersLocked() error {
	if p.workers != nil {
		return nil
	}
	for range p.opts.Workers {
		w, err := newWorker(p)
		if err != nil {
			for _, w := range p.workers {
				w.close()
			}
			p.workers = nil
			return err
		}
		p.workers = append(p.workers, w)
	}
	return nil
}

func (p *Proxy) listener(id uint32) *tcpListener {
	p.lnMu.RLock()
	defer p.lnMu.RUnlock()
	return p.listeners[id]
}

// timeouts are the table's timeouts and the proxy's own, for a sweep.
func (p *Proxy) timeouts() timeouts {
	t := p.table.Timeouts()
	return timeouts{tcp: int64(t.TCP), tcpFin: int64(t.TCPFin), udp: int64(t.UDP),
		connect: int64(p.opts.ConnectTimeout), conn: int64(p.opts.ConnTimeout)}
}

// sweepInterval is a quarter of the shortest timeout, between 10ms and 1s.
func (p *Proxy) sweepInterval(t *timeouts) int64 {
	d := min(t.tcp, t.tcpFin, t.udp, t.connect)
	if t.conn > 0 {
		d = min(d, t.conn)
	}
	return min(max(d/4, int64(10*time.Millisecond)), int64(time.Second))
}

func (p *Proxy) acceptError(l *tcpListener, err error) {
	now, last := monotime(), p.acceptErr.Load()
	if now-last >= int64(time.Second) && p.acceptErr.CompareAndSwap(last, now) {
		p.log.Error("accept", "vs", l.key.String(), "err", err)
	}
}

// warnOnce logs msg once per service.
func (p *Proxy) warnOnceLocked(k lvs.ServiceKey, what, msg string) {
	w := warning{k, what}
	if p.warned[w] {
		return
	}
	p.warned[w] = true
	p.log.Warn(msg, "vs", k.String())
}

func normalize(k lvs.ServiceKey) lvs.ServiceKey {
	if k.FWMark != 0 {
		return lvs.ServiceKey{FWMark: k.FWMark, IPv6: k.IPv6}
	}
	k.Addr = k.Addr.Unmap()
	k.IPv6 = false
	return k
}

// openFrontendLocked starts serving s: a listener for TCP, a socket for UDP.
func (p *Proxy) openFrontendLocked(s lvs.Service) error {
	k := normalize(s.ServiceKey)
	switch {
	case k.FWMark != 0:
		p.warnOnceLocked(k, "fwmark", "fwmark service carries no traffic on the proxy data plane")
		return nil
	case k.Port == 0:
		p.warnOnceLocked(k, "port0", "port-less persistent service carries no traffic on the proxy data plane")
		return nil
	case k.Proto != lvs.TCP && k.Proto != lvs.UDP:
		p.warnOnceLocked(k, "proto", "protocol not served by the proxy data plane")
		return nil
	}
	if err := p.initWorkersLocked(); err != nil {
		return err
	}
	ap := netip.AddrPortFrom(k.Addr, k.Port)
	if k.Proto == lvs.TCP {
		fd, err := listenSocket(unix.SOCK_STREAM, ap)
		if err != nil {
			return err
		}
		p.nextID++
		l := &tcpListener{id: p.nextID, key: k, virtual: ap, fd: fd}
		p.lnMu.Lock()
		p.listeners[l.id] = l
		p.lnMu.Unlock()
		for _, w := range p.workers {
			if err := l.watch(w); err != nil {
				p.closeTCPLocked(l)
				return fmt.Errorf("epoll_ctl listener: %w", err)
			}
		}
		p.frontends[k] = frontend{tcp: l}
		return nil
	}
	fd, err := listenSocket(unix.SOCK_DGRAM, ap)
	if err != nil {
		return err
	}
	u := &udpService{key: k, virtual: ap, fd: fd, sessions: map[netip.AddrPort]*udpSession{}}
	w := p.workers[p.nextUDP%len(p.workers)]
	p.nextUDP++
	w.do(func() { err = w.addUDPService(u) })
	if err != nil {
		unix.Close(fd)
		return err
	}
	p.frontends[k] = frontend{udp: u, w: w}
	return nil
}

func (p *Proxy) closeTCPLocked(l *tcpListener) {
	p.lnMu.Lock()
	delete(p.listeners, l.id)
	p.lnMu.Unlock()
	for _, w := range p.workers {
		unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, l.fd, nil)
	}
	l.close()
}

// closeFrontendLocked stops serving k. Connections already proxied go on,
// as IPVS keeps a deleted service's connections.
func (p *Proxy) closeFrontendLocked(k lvs.ServiceKey) {
	k = normalize(k)
	f, ok := p.frontends[k]
	if !ok {
		return
	}
	delete(p.frontends, k)
	if f.tcp != nil {
		p.closeTCPLocked(f.tcp)
	}
	if f.udp != nil {
		f.w.do(func() { f.udp.close(f.w) })
	}
}

// Info is the table's identity.
func (p *Proxy) Info(ctx context.Context) (lvs.Info, error) { return p.table.Info(), nil }

// Services lists the services with their counters.
func (p *Proxy) Services(ctx context.Context) ([]lvs.ServiceStatus, error) {
	return p.table.Services(), nil
}

// AddService adds s to the table and starts serving it.
func (p *Proxy) AddService(ctx context.Context, s lvs.Service) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if err := p.table.AddService(s); err != nil {
		return err
	}
	if err := p.openFrontendLocked(s); err != nil {
		p.table.DelService(s.ServiceKey)
		return fmt.Errorf("serve %s: %w", s.ServiceKey, err)
	}
	return nil
}

// EditService changes a service; its listener stays.
func (p *Proxy) EditService(ctx context.Context, s lvs.Service) error {
	return p.table.EditService(s)
}

// DelService stops serving k and removes it from the table.
func (p *Proxy) DelService(ctx context.Context, k lvs.ServiceKey) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.table.DelService(k); err != nil {
		return err
	}
	p.closeFrontendLocked(k)
	return nil
}

// Flush removes every service.
func (p *Proxy) Flush(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.table.Flush()
	for k := range p.frontends {
		p.closeFrontendLocked(k)
	}
	return nil
}

// AddDest adds a real server to a service.
func (p *Proxy) AddDest(ctx context.Context, k lvs.ServiceKey, d lvs.Destination) error {
	if err := p.table.AddDest(k, d); err != nil {
		return err
	}
	p.noteForward(k, d)
	return nil
}

// EditDest changes a real server.
func (p *Proxy) EditDest(ctx context.Context, k lvs.ServiceKey, d lvs.Destination) error {
	if err := p.table.EditDest(k, d); err != nil {
		return err
	}
	p.noteForward(k, d)
	return nil
}

func (p *Proxy) noteForward(k lvs.ServiceKey, d lvs.Destination) {
	if d.Forward != lvs.Route && d.Forward != lvs.Tunnel {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.warnOnceLocked(normalize(k), "forward", "the proxy data plane proxies every forwarding method (DR and TUN as NAT)")
}

// DelDest removes a real server; its connections go on until they end.
func (p *Proxy) DelDest(ctx context.Context, k lvs.ServiceKey, d netip.AddrPort) error {
	return p.table.DelDest(k, d)
}

// Conns lists the connection table.
func (p *Proxy) Conns(ctx context.Context) ([]lvs.Conn, error) { return p.table.Conns(), nil }

// Zero clears counters.
func (p *Proxy) Zero(ctx context.Context, k *lvs.ServiceKey) error { return p.table.Zero(k) }

// Timeouts returns the table's timeouts, which the proxy also applies to
// idle connections.
func (p *Proxy) Timeouts(ctx context.Context) (lvs.Timeouts, error) { return p.table.Timeouts(), nil }

// SetTimeouts changes the timeouts (ipvsadm --set).
func (p *Proxy) SetTimeouts(ctx context.Context, t lvs.Timeouts) error {
	err := p.table.SetTimeouts(t)
	if err == nil {
		// Let the workers re-plan their sweeps for a shorter timeout.
		p.mu.Lock()
		for _, w := range p.workers {
			w.do(func() { w.nextSweep = 0 })
		}
		p.mu.Unlock()
	}
	return err
}
