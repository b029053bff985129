package ipvs

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/keepvs/keepvs/internal/lvs"
)

// Conns reads the connection table of this network namespace from
// /proc/net/ip_vs_conn, which is where ipvsadm -c reads it too.
func (d *Dataplane) Conns(ctx context.Context) ([]lvs.Conn, error) {
	f, err := os.Open(d.procDir + "/net/ip_vs_conn")
	if err != nil {
		return nil, fmt.Errorf("ipvs: %w", err)
	}
	defer f.Close()
	return ParseConns(f)
}

// ParseConns reads /proc/net/ip_vs_conn: a title line, then one line per
// entry as ip_vs_conn_seq_show prints it:
//
//	TCP 0A000001 9C40 0A000064 0050 0A0A0001 0050 ESTABLISHED     899
//
// Addresses are 8 hex digits (IPv4, host order) or IPv6 in full (%pI6),
// each on its own: an IPv6 service may have an IPv4 destination. A
// persistence template has client port 0; a fwmark service's template has
// protocol IP and the mark where the virtual address would be.
func ParseConns(r io.Reader) ([]lvs.Conn, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var out []lvs.Conn
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 && strings.HasPrefix(text, "Pro ") {
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		c, err := parseConn(text)
		if err != nil {
			return nil, fmt.Errorf("ip_vs_conn line %d: %w", line, err)
		}
		out = append(out, c)
	}
	return out, sc.Err()
}

func parseConn(text string) (lvs.Conn, error) {
	f := strings.Fields(text)
	if len(f) < 9 {
		return lvs.Conn{}, fmt.Errorf("%d fields, want at least 9", len(f))
	}
	var c lvs.Conn
	var err error
	if c.Proto, err = parseProto(f[0]); err != nil {
		return c, err
	}
	var addrs [3]netip.Addr
	var ports [3]uint16
	for i := range 3 {
		if addrs[i], err = parseProcAddr(f[1+2*i]); err != nil {
			return c, err
		}
		p, err := strconv.ParseUint(f[2+2*i], 16, 16)
		if err != nil {
			return c, fmt.Errorf("port %q", f[2+2*i])
		}
		ports[i] = uint16(p)
	}
	c.Client = netip.AddrPortFrom(addrs[0], ports[0])
	c.Virtual = netip.AddrPortFrom(addrs[1], ports[1])
	c.Dest = netip.AddrPortFrom(addrs[2], ports[2])
	c.State = f[7]
	exp, err := strconv.ParseUint(f[8], 10, 32)
	if err != nil {
		return c, fmt.Errorf("expires %q", f[8])
	}
	c.Expires = time.Duration(exp) * time.Second
	c.Template = ports[0] == 0
	if c.Template && c.Proto == 0 {
		// ip_vs_sched_persist: a fwmark template's vaddr is
		// htonl(mark) in its first four bytes.
		b := addrs[1].AsSlice()
		c.FWMark = binary.BigEndian.Uint32(b[:4])
		var zero netip.Addr
		if addrs[1].Is4() {
			zero = netip.IPv4Unspecified()
		} else {
			zero = netip.IPv6Unspecified()
		}
		c.Virtual = netip.AddrPortFrom(zero, 0)
	}
	return c, nil
}

// parseProto reads ip_vs_proto_name's names.
func parseProto(s string) (lvs.Protocol, error) {
	switch s {
	case "IP":
		return 0, nil
	case "TCP":
		return lvs.TCP, nil
	case "UDP":
		return lvs.UDP, nil
	case "SCTP":
		return lvs.SCTP, nil
	case "ICMP":
		return 1, nil
	case "ICMPv6":
		return 58, nil
	}
	if n, ok := strings.CutPrefix(s, "IP_"); ok {
		p, err := strconv.ParseUint(n, 10, 8)
		if err == nil {
			return lvs.Protocol(p), nil
		}
	}
	return 0, fmt.Errorf("protocol %q", s)
}

func parseProcAddr(s string) (netip.Addr, error) {
	if strings.Contains(s, ":") {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() {
			return netip.Addr{}, fmt.Errorf("address %q", s)
		}
		return a, nil
	}
	if len(s) != 8 {
		return netip.Addr{}, fmt.Errorf("address %q", s)
	}
	var b [4]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return netip.Addr{}, fmt.Errorf("address %q", s)
	}
	return netip.AddrFrom4(b), nil
}
