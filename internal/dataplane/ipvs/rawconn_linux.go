package ipvs

import (
	"syscall"

	"github.com/mdlayher/netlink"
)

// dialBatch opens AddBulk's socket; nil (one request at a time) if it
// cannot.
func dialBatch() batchConn {
	c, err := netlink.Dial(netlinkGeneric, nil)
	if err != nil {
		return nil
	}
	_ = c.SetReadBuffer(1 << 20) // room to spare for batchMax acknowledgements
	return rawConn{c}
}

// rawConn sends and reads a *netlink.Conn's datagrams itself: the
// requests are already encoded, and netlink.Conn's Receive would turn an
// error acknowledgement into an error without its sequence number.
type rawConn struct{ *netlink.Conn }

func (c rawConn) Send(b []byte) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		serr = syscall.Sendto(int(fd), b, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK})
		return serr != syscall.EAGAIN
	})
	return firstErr(err, serr)
}

// Recv reads every datagram already queued that fits in b, one
// acknowledgement each: one wait on the poller for a whole batch.
func (c rawConn) Recv(b []byte) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		// Room for the largest acknowledgement: an error echoes its request.
		for len(b)-n >= 8<<10 {
			m, _, err := syscall.Recvfrom(int(fd), b[n:], syscall.MSG_DONTWAIT)
			if err != nil {
				if err != syscall.EAGAIN && err != syscall.EINTR {
					rerr = err
				}
				break
			}
			n += m
		}
		return n > 0 || rerr != nil
	})
	if n > 0 {
		return n, nil
	}
	return n, firstErr(err, rerr)
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
