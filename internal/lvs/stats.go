package lvs

import (
	"sync/atomic"
	"time"
)

// counters are a service's or destination's totals, updated lock-free from
// the data path.
type counters struct {
	conns, inPkts, outPkts, inBytes, outBytes atomic.Uint64
}

// add counts one packet of n bytes on the destination and its service.
func (c *counters) add(svc *counters, in bool, n int) {
	if in {
		c.inPkts.Add(1)
		c.inBytes.Add(uint64(n))
		svc.inPkts.Add(1)
		svc.inBytes.Add(uint64(n))
		return
	}
	c.outPkts.Add(1)
	c.outBytes.Add(uint64(n))
	svc.outPkts.Add(1)
	svc.outBytes.Add(uint64(n))
}

func (c *counters) snapshot() Stats {
	return Stats{Conns: c.conns.Load(), InPkts: c.inPkts.Load(), OutPkts: c.outPkts.Load(), InBytes: c.inBytes.Load(), OutBytes: c.outBytes.Load()}
}

func (c *counters) zero() {
	c.conns.Store(0)
	c.inPkts.Store(0)
	c.outPkts.Store(0)
	c.inBytes.Store(0)
	c.outBytes.Store(0)
}

// estimatorInterval is how often the kernel samples (ip_vs_est.c).
const estimatorInterval = 2 * time.Second

// estimator is the kernel's rate estimator: every 2 s it takes the change
// in each counter and folds it into an exponentially weighted average with
// weight 1/4. Averages are fixed point: connections and packets scaled by
// 2^10, bytes by 2^5; the 2 s interval is folded into the shift (<<9 and
// <<4), as the kernel does.
type estimator struct {
	lastConns, lastInPkts, lastOutPkts, lastInBytes, lastOutBytes uint64
	cps, inpps, outpps, inbps, outbps                             int64
}

func (e *estimator) sample(s Stats) {
	step := func(avg *int64, last *uint64, now uint64, shift uint) {
		rate := int64((now - *last) << shift)
		*last = now
		*avg += (rate - *avg) >> 2
	}
	step(&e.cps, &e.lastConns, s.Conns, 9)
	step(&e.inpps, &e.lastInPkts, s.InPkts, 9)
	step(&e.outpps, &e.lastOutPkts, s.OutPkts, 9)
	step(&e.inbps, &e.lastInBytes, s.InBytes, 4)
	step(&e.outbps, &e.lastOutBytes, s.OutBytes, 4)
}

// rates converts the averages to per-second values, rounding as the
// kernel's ip_vs_read_estimator does.
func (e *estimator) rates() Rates {
	return Rates{
		CPS:    uint64((e.cps + 0x1ff) >> 10),
		InPPS:  uint64((e.inpps + 0x1ff) >> 10),
		OutPPS: uint64((e.outpps + 0x1ff) >> 10),
		InBPS:  uint64((e.inbps + 0xf) >> 5),
		OutBPS: uint64((e.outbps + 0xf) >> 5),
	}
}

// estimateLocked runs every sample that fell due since the last one.
func (t *Table) estimateLocked(now time.Time) {
	for now.Sub(t.lastEst) >= estimatorInterval {
		t.lastEst = t.lastEst.Add(estimatorInterval)
		for _, svc := range t.services {
			svc.est.sample(svc.stats.snapshot())
			for _, d := range svc.dests {
				d.est.sample(d.stats.snapshot())
			}
		}
	}
}
