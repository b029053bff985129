package ipvsadm

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Names is the C library's name service as ipvsadm uses it: gethostbyname
// for addresses given as names, gethostbyaddr and getservbyport for output
// without -n, getservbyname for ports given as names.
type Names interface {
	// HostAddr is gethostbyname: the first IPv4 address of name.
	HostAddr(ctx context.Context, name string) (netip.Addr, bool)
	// AddrName is gethostbyaddr's h_name.
	AddrName(ctx context.Context, a netip.Addr) (string, bool)
	// ServicePort is getservbyname(name, proto).
	ServicePort(name, proto string) (uint16, bool)
	// PortName is getservbyport(port, proto)'s s_name.
	PortName(port uint16, proto string) (string, bool)
}

// SystemNames answers from /etc/services and net.DefaultResolver (which
// reads /etc/hosts before asking DNS). Each lookup is bounded by Timeout
// so that a listing without -n never hangs on an unreachable DNS server;
// a lookup that times out prints the address, as ipvsadm does when a name
// does not resolve.
type SystemNames struct {
	Timeout time.Duration
	// ServicesFile is /etc/services unless set.
	ServicesFile string

	once     sync.Once
	byName   map[string]uint16 // "name/proto"
	byPort   map[string]string // "port/proto"
	mu       sync.Mutex
	addrName map[netip.Addr]string
}

func (s *SystemNames) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return time.Second
}

func (s *SystemNames) HostAddr(ctx context.Context, name string) (netip.Addr, bool) {
	if name == "" {
		return netip.Addr{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", name)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, false
	}
	return addrs[0].Unmap(), true
}

func (s *SystemNames) AddrName(ctx context.Context, a netip.Addr) (string, bool) {
	s.mu.Lock()
	if name, ok := s.addrName[a]; ok {
		s.mu.Unlock()
		return name, name != ""
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	name := ""
	if names, err := net.DefaultResolver.LookupAddr(ctx, a.String()); err == nil && len(names) > 0 {
		name = strings.TrimSuffix(names[0], ".")
	}
	s.mu.Lock()
	if s.addrName == nil {
		s.addrName = make(map[netip.Addr]string)
	}
	s.addrName[a] = name
	s.mu.Unlock()
	return name, name != ""
}

func (s *SystemNames) ServicePort(name, proto string) (uint16, bool) {
	s.once.Do(s.load)
	p, ok := s.byName[name+"/"+proto]
	return p, ok
}

func (s *SystemNames) PortName(port uint16, proto string) (string, bool) {
	s.once.Do(s.load)
	n, ok := s.byPort[strconv.Itoa(int(port))+"/"+proto]
	return n, ok
}

// load reads the services file; the first entry for a port wins, as with
// getservbyport on "files".
func (s *SystemNames) load() {
	s.byName = make(map[string]uint16)
	s.byPort = make(map[string]string)
	path := s.ServicesFile
	if path == "" {
		path = "/etc/services"
	}
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	parseServices(f, s.byName, s.byPort)
}

func parseServices(f *os.File, byName map[string]uint16, byPort map[string]string) {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		portProto := strings.SplitN(fields[1], "/", 2)
		if len(portProto) != 2 {
			continue
		}
		port, err := strconv.ParseUint(portProto[0], 10, 16)
		if err != nil {
			continue
		}
		proto := portProto[1]
		key := strconv.Itoa(int(port)) + "/" + proto
		if _, ok := byPort[key]; !ok {
			byPort[key] = fields[0]
		}
		for _, n := range append([]string{fields[0]}, fields[2:]...) {
			if _, ok := byName[n+"/"+proto]; !ok {
				byName[n+"/"+proto] = uint16(port)
			}
		}
	}
}
