package ipvsadm

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/keepvs/keepvs/internal/lvs"
)

// connProtoName is the kernel's ip_vs_proto_name, which names the
// protocol in /proc/net/ip_vs_conn where ipvsadm -c reads it.
func connProtoName(p lvs.Protocol) string {
	switch p {
	case 0:
		return "IP"
	case lvs.TCP:
		return "TCP"
	case lvs.UDP:
		return "UDP"
	case lvs.SCTP:
		return "SCTP"
	case 1:
		return "ICMP"
	case 58:
		return "ICMPv6"
	}
	return fmt.Sprintf("IP_%d", uint16(p))
}

// listConns is list_conn and print_conn.
func (c *Cmd) listConns(ctx context.Context, f format) error {
	conns, err := c.DP.Conns(ctx)
	if err != nil {
		return c.fatal("cannot open file /proc/net/ip_vs_conn")
	}
	c.printf("IPVS connection entries\n")
	if f&fmtPersistentConn != 0 {
		c.printf("pro expire %-11s %-18s %-18s %-18s %-16s %s\n",
			"state", "source", "virtual", "destination", "pe name", "pe_data")
	} else {
		c.printf("pro expire %-11s %-18s %-18s %s\n",
			"state", "source", "virtual", "destination")
	}
	for i := range conns {
		cn := &conns[i]
		// ipvsadm looks names up only for the protocols it knows.
		proto := cn.Proto
		switch proto {
		case lvs.TCP, lvs.UDP, lvs.SCTP:
		default:
			proto = 0
		}
		virtual := cn.Virtual
		if cn.Template && cn.FWMark != 0 {
			// A fwmark template carries the mark where the virtual
			// address would be.
			m := cn.FWMark
			b := [16]byte{0: byte(m >> 24), 1: byte(m >> 16), 2: byte(m >> 8), 3: byte(m)}
			a := netip.AddrFrom4([4]byte(b[:4]))
			if cn.Client.Addr().Is6() {
				a = netip.AddrFrom16(b)
			}
			virtual = netip.AddrPortFrom(a, 0)
		}
		cname := c.addrPort(ctx, cn.Client.Addr(), cn.Client.Port(), proto, f)
		vname := c.addrPort(ctx, virtual.Addr(), virtual.Port(), proto, f)
		dname := c.addrPort(ctx, cn.Dest.Addr(), cn.Dest.Port(), proto, f)
		expires := int64(cn.Expires.Seconds())
		if expires < 0 {
			expires = 0
		}
		expire := fmt.Sprintf("%02d:%02d", uint32(expires)/60, uint32(expires)%60)
		c.printf("%-3s %-6s %-11s %-18s %-18s %s\n",
			connProtoName(cn.Proto), expire, cn.State, cname, vname, dname)
	}
	return nil
}
