package check

// verdict is what keepalived keeps per checker: is_up, has_run and
// retry_it. Its rules are written once here, for every checker type.
type verdict struct {
	up      bool
	hasRun  bool // a verdict has been reached (alpha starts without one)
	retries int  // failures retried since the last verdict
}

// wait is which delay comes before the next probe.
type wait int

const (
	waitLoop  wait = iota // delay_loop
	waitRetry             // delay_before_retry
)

// step applies one probe result, as keepalived's checkers do
// (check_tcp.c tcp_epilog, check_dns.c dns_final, check_misc.c
// misc_check_child_thread, check_http.c epilog):
//
//   - a success makes the checker up at once and resets the retries;
//   - a failure while up, or before any verdict (alpha), is retried up to
//     retry times, delay_before_retry apart; the next failure makes the
//     checker down, so it goes down after 1+retry consecutive failures;
//   - a failure while already down is not retried: the next probe comes
//     after delay_loop.
//
// keepalived's checkers differ in small ways here (TCP_CHECK keeps cycling
// through its retries while down, HTTP_GET rechecks a failed url at
// max(delay_loop, delay_before_retry), DNS_CHECK and UDP_CHECK spend fewer
// retries on an alpha checker's first run); keepvs has the one rule above.
func step(v verdict, ok bool, retry int) (verdict, wait) {
	if ok {
		return verdict{up: true, hasRun: true}, waitLoop
	}
	if (v.up || !v.hasRun) && v.retries < retry {
		v.retries++
		return v, waitRetry
	}
	return verdict{up: false, hasRun: true}, waitLoop
}
