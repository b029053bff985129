// Package vrrp is the VRRP instance state machine (RFC 3768 for VRRPv2,
// RFC 5798 for VRRPv3) with keepalived's behaviour where keepalived and the
// RFCs part ways, and keepalived's vrrp_sync_group.
//
// An Instance is a pure step function: Handle(now, event) returns the
// actions the event calls for (send an advert, arm or stop a timer, add or
// remove the VIPs, send gratuitous ARPs, report a transition). It opens no
// socket, starts no goroutine and never reads the clock: the caller passes
// the time in, and runs the actions. Timers binds the timer actions to a
// clock.Clock, so tests drive an instance with clocktest.Fake and the
// engine drives it with the real clock, through the same code.
//
// Adverts reach Handle only after packet.ValidateInto accepted them against
// the instance's Expect (with SkipAddrCheck from Instance.SkipAddrCheck):
// what the wire can get wrong is the packet package's business, what the
// protocol does with a good advert is this package's.
package vrrp
