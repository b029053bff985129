package ipvs

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"

	"github.com/keepvs/keepvs/internal/ipvsadm"
	"github.com/keepvs/keepvs/internal/lvs"
)

// The IPVS generic netlink family (include/uapi/linux/ip_vs.h).
const (
	genlName    = "IPVS"
	genlVersion = 1

	// netlinkGeneric is NETLINK_GENERIC (include/uapi/linux/netlink.h).
	netlinkGeneric = 16

	cmdNewService = 1
	cmdSetService = 2
	cmdDelService = 3
	cmdGetService = 4
	cmdNewDest    = 5
	cmdSetDest    = 6
	cmdDelDest    = 7
	cmdGetDest    = 8
	cmdNewDaemon  = 9
	cmdDelDaemon  = 10
	cmdGetDaemon  = 11
	cmdSetConfig  = 12
	cmdGetConfig  = 13
	cmdGetInfo    = 15
	cmdZero       = 16
	cmdFlush      = 17

	cmdAttrService    = 1
	cmdAttrDest       = 2
	cmdAttrDaemon     = 3
	cmdAttrTimeoutTCP = 4
	cmdAttrTimeoutFin = 5
	cmdAttrTimeoutUDP = 6

	svcAttrAF        = 1
	svcAttrProtocol  = 2
	svcAttrAddr      = 3
	svcAttrPort      = 4
	svcAttrFWMark    = 5
	svcAttrSchedName = 6
	svcAttrFlags     = 7
	svcAttrTimeout   = 8
	svcAttrNetmask   = 9
	svcAttrStats     = 10
	svcAttrPEName    = 11
	svcAttrStats64   = 12

	daemonAttrState       = 1
	daemonAttrMcastIfn    = 2
	daemonAttrSyncID      = 3
	daemonAttrSyncMaxLen  = 4
	daemonAttrMcastGroup  = 5
	daemonAttrMcastGroup6 = 6
	daemonAttrMcastPort   = 7
	daemonAttrMcastTTL    = 8

	stateMaster = 1
	stateBackup = 2

	afInet  = 2
	afInet6 = 10
)

func (d *Dataplane) execute(cmd uint8, data []byte, flags netlink.HeaderFlags) ([]genetlink.Message, error) {
	return d.genl.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: genlVersion},
		Data:   data,
	}, d.family, flags)
}

// Flush removes every service (IPVS_CMD_FLUSH).
func (d *Dataplane) Flush(context.Context) error {
	d.ops.add(&d.ops.Flush)
	_, err := d.execute(cmdFlush, nil, netlink.Request|netlink.Acknowledge)
	return kernelErr("flush", err, nil)
}

// Zero clears the counters of one service, or of every one when k is nil.
func (d *Dataplane) Zero(_ context.Context, k *lvs.ServiceKey) error {
	d.ops.add(&d.ops.Zero)
	var data []byte
	if k != nil {
		ae := netlink.NewAttributeEncoder()
		ae.Nested(cmdAttrService, func(ae *netlink.AttributeEncoder) error {
			packKey(ae, *k)
			return nil
		})
		var err error
		if data, err = ae.Encode(); err != nil {
			return err
		}
	}
	_, err := d.execute(cmdZero, data, netlink.Request|netlink.Acknowledge)
	return kernelErr("zero", err, delServiceErrs)
}

// packKey is a service's identity: family, then fwmark or protocol,
// address and port.
func packKey(ae *netlink.AttributeEncoder, k lvs.ServiceKey) {
	af := uint16(afInet)
	if k.Is6() {
		af = afInet6
	}
	ae.Uint16(svcAttrAF, af)
	if k.FWMark != 0 {
		ae.Uint32(svcAttrFWMark, k.FWMark)
		return
	}
	ae.Uint16(svcAttrProtocol, uint16(k.Proto))
	// libipvs sends the whole union nf_inet_addr.
	a := [16]byte{}
	if k.Addr.Is4() {
		b := k.Addr.As4()
		copy(a[:], b[:])
	} else if k.Addr.IsValid() {
		a = k.Addr.As16()
	}
	ae.Bytes(svcAttrAddr, a[:])
	ae.Bytes(svcAttrPort, binary.BigEndian.AppendUint16(nil, k.Port))
}

// setServicePE adds or edits a service with a persistence engine, which
// cloudflare/ipvs cannot name.
func (d *Dataplane) setServicePE(cmd uint8, s lvs.Service) error {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(cmdAttrService, func(ae *netlink.AttributeEncoder) error {
		packService(ae, s)
		return nil
	})
	data, err := ae.Encode()
	if err != nil {
		return err
	}
	_, err = d.execute(cmd, data, netlink.Request|netlink.Acknowledge)
	return err
}

// peNames dumps the services and keeps the persistence engine of those
// that have one.
func (d *Dataplane) peNames() (map[lvs.ServiceKey]string, error) {
	d.ops.add(&d.ops.Other)
	msgs, err := d.execute(cmdGetService, nil, netlink.Request|netlink.Dump)
	if err != nil {
		return nil, kernelErr("list services", err, nil)
	}
	out := map[lvs.ServiceKey]string{}
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return nil, err
		}
		for ad.Next() {
			if ad.Type() != cmdAttrService {
				continue
			}
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				k, pe := decodeKeyPE(nad)
				if pe != "" {
					out[k] = pe
				}
				return nil
			})
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("ipvs: list services: %w", err)
		}
	}
	return out, nil
}

func decodeKeyPE(ad *netlink.AttributeDecoder) (lvs.ServiceKey, string) {
	var k lvs.ServiceKey
	var af uint16
	var addr []byte
	var pe string
	for ad.Next() {
		switch ad.Type() {
		case svcAttrAF:
			af = ad.Uint16()
		case svcAttrProtocol:
			k.Proto = lvs.Protocol(ad.Uint16())
		case svcAttrAddr:
			addr = ad.Bytes()
		case svcAttrPort:
			if b := ad.Bytes(); len(b) == 2 {
				k.Port = binary.BigEndian.Uint16(b)
			}
		case svcAttrFWMark:
			k.FWMark = ad.Uint32()
		case svcAttrPEName:
			pe = ad.String()
		}
	}
	if k.FWMark != 0 {
		k.Proto, k.Port = 0, 0
		k.IPv6 = af == afInet6
		return k, pe
	}
	switch {
	case af == afInet && len(addr) >= 4:
		k.Addr = netip.AddrFrom4([4]byte(addr[:4]))
	case af == afInet6 && len(addr) >= 16:
		k.Addr = netip.AddrFrom16([16]byte(addr[:16]))
	}
	return k, pe
}

// StartDaemon starts a connection synchronisation daemon.
func (d *Dataplane) StartDaemon(_ context.Context, sd ipvsadm.SyncDaemon) error {
	d.ops.add(&d.ops.Daemon)
	ae := netlink.NewAttributeEncoder()
	ae.Nested(cmdAttrDaemon, func(ae *netlink.AttributeEncoder) error {
		state := uint32(stateMaster)
		if sd.Backup {
			state = stateBackup
		}
		ae.Uint32(daemonAttrState, state)
		ae.String(daemonAttrMcastIfn, sd.Interface)
		ae.Uint32(daemonAttrSyncID, uint32(sd.SyncID))
		if sd.MaxLen != 0 {
			ae.Uint16(daemonAttrSyncMaxLen, sd.MaxLen)
		}
		if sd.Port != 0 {
			ae.Uint16(daemonAttrMcastPort, sd.Port)
		}
		if sd.TTL != 0 {
			ae.Uint8(daemonAttrMcastTTL, sd.TTL)
		}
		switch {
		case sd.Group.Is4():
			b := sd.Group.As4()
			ae.Bytes(daemonAttrMcastGroup, b[:])
		case sd.Group.Is6():
			b := sd.Group.As16()
			ae.Bytes(daemonAttrMcastGroup6, b[:])
		}
		return nil
	})
	data, err := ae.Encode()
	if err != nil {
		return err
	}
	_, err = d.execute(cmdNewDaemon, data, netlink.Request|netlink.Acknowledge)
	return kernelErr("start daemon", err, daemonErrs)
}

// StopDaemon stops the master or the backup daemon.
func (d *Dataplane) StopDaemon(_ context.Context, backup bool) error {
	d.ops.add(&d.ops.Daemon)
	ae := netlink.NewAttributeEncoder()
	ae.Nested(cmdAttrDaemon, func(ae *netlink.AttributeEncoder) error {
		state := uint32(stateMaster)
		if backup {
			state = stateBackup
		}
		ae.Uint32(daemonAttrState, state)
		return nil
	})
	data, err := ae.Encode()
	if err != nil {
		return err
	}
	_, err = d.execute(cmdDelDaemon, data, netlink.Request|netlink.Acknowledge)
	return kernelErr("stop daemon", err, daemonErrs)
}

// Daemons lists the running sync daemons, master first, as the kernel
// reports them.
func (d *Dataplane) Daemons(context.Context) ([]ipvsadm.SyncDaemon, error) {
	d.ops.add(&d.ops.Other)
	msgs, err := d.execute(cmdGetDaemon, nil, netlink.Request|netlink.Dump)
	if err != nil {
		return nil, kernelErr("list daemons", err, nil)
	}
	var out []ipvsadm.SyncDaemon
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return nil, err
		}
		for ad.Next() {
			if ad.Type() != cmdAttrDaemon {
				continue
			}
			var sd ipvsadm.SyncDaemon
			var state uint32
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					switch nad.Type() {
					case daemonAttrState:
						state = nad.Uint32()
					case daemonAttrMcastIfn:
						sd.Interface = nad.String()
					case daemonAttrSyncID:
						sd.SyncID = uint8(nad.Uint32())
					case daemonAttrSyncMaxLen:
						sd.MaxLen = nad.Uint16()
					case daemonAttrMcastPort:
						sd.Port = nad.Uint16()
					case daemonAttrMcastTTL:
						sd.TTL = nad.Uint8()
					case daemonAttrMcastGroup:
						if b := nad.Bytes(); len(b) == 4 {
							sd.Group = netip.AddrFrom4([4]byte(b))
						}
					case daemonAttrMcastGroup6:
						if b := nad.Bytes(); len(b) == 16 {
							sd.Group = netip.AddrFrom16([16]byte(b))
						}
					}
				}
				return nil
			})
			switch {
			case state&stateMaster != 0:
			case state&stateBackup != 0:
				sd.Backup = true
			default:
				continue
			}
			out = append(out, sd)
		}
		if err := ad.Err(); err != nil {
			return nil, fmt.Errorf("ipvs: list daemons: %w", err)
		}
	}
	return out, nil
}
