package check

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
)

// Target is where a network checker connects, and from where:
// connect_ip/connect_port, bindto, bind_port, bind_if and fwmark.
type Target struct {
	Addr     netip.AddrPort
	BindTo   netip.Addr
	BindPort uint16
	BindIf   string
	FWMark   uint32 // set with SO_MARK when running as root; ignored otherwise
}

// Dial connects to the target over network ("tcp" or "udp"), binding and
// marking the socket as the target says.
func (t Target) Dial(ctx context.Context, network string) (net.Conn, error) {
	d := net.Dialer{}
	if t.BindTo.IsValid() || t.BindPort != 0 {
		ip := t.BindTo
		if !ip.IsValid() {
			ip = netip.IPv4Unspecified()
			if t.Addr.Addr().Is6() {
				ip = netip.IPv6Unspecified()
			}
		}
		local := netip.AddrPortFrom(ip, t.BindPort)
		switch network {
		case "udp", "udp4", "udp6":
			d.LocalAddr = net.UDPAddrFromAddrPort(local)
		default:
			d.LocalAddr = net.TCPAddrFromAddrPort(local)
		}
	}
	mark := t.FWMark != 0 && os.Geteuid() == 0
	if mark || t.BindIf != "" {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				if mark {
					if e := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, int(t.FWMark)); e != nil {
						serr = fmt.Errorf("set fwmark %d: %w", t.FWMark, e)
						return
					}
				}
				if t.BindIf != "" {
					if e := syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, t.BindIf); e != nil {
						serr = fmt.Errorf("bind to device %s: %w", t.BindIf, e)
					}
				}
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	return d.DialContext(ctx, network, t.Addr.String())
}
