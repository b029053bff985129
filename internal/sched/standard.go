package sched

// Standard returns a registry of every scheduler the Linux kernel's IPVS
// has, by the kernel's names. Each call builds a new registry; main owns it.
func Standard() Registry {
	return Registry{
		"rr":    newRoundRobin,
		"wrr":   newWeightedRoundRobin,
		"lc":    newLeastConn,
		"wlc":   newWeightedLeastConn,
		"sed":   newShortestExpectedDelay,
		"nq":    newNeverQueue,
		"lblc":  newLocalityLeastConn,
		"lblcr": newLocalityLeastConnRepl,
		"dh":    newDestinationHashing,
		"sh":    newSourceHashing,
		"mh":    newMaglevHashing,
		"fo":    newWeightedFailover,
		"ovf":   newOverflowConn,
		"twos":  newTwoChoices,
	}
}
