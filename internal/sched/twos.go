package sched

import "math/rand/v2"

// twoChoices is ip_vs_twos.c, power of two choices: two destinations drawn
// at random, each with probability proportional to its weight, and the one
// with the smaller connOverhead/weight taken (the first drawn on a tie).
type twoChoices struct {
	dests []*Dest
	rand  func(n uint32) uint32
}

func newTwoChoices(cfg Config) Scheduler {
	r := cfg.Rand
	if r == nil {
		r = rand.Uint32N
	}
	return &twoChoices{rand: r}
}

func (s *twoChoices) Name() string { return "twos" }

func (s *twoChoices) Update(dests []*Dest) { s.dests = keepList(dests) }

func (s *twoChoices) Schedule(Flow) *Dest {
	var choice1, choice2 *Dest
	total := 0
	for _, d := range s.dests {
		if !d.Overloaded && d.Weight > 0 {
			total += d.Weight
			choice1 = d // the last usable one, if the draw runs past the end
		}
	}
	if choice1 == nil {
		return nil
	}
	// The kernel draws in [0, total], random % (total + 1), and takes the
	// first destination at which the running sum of weights reaches the
	// draw; so the first one is drawn with weight+1 chances in total+1.
	r1 := int(s.rand(uint32(total + 1)))
	r2 := int(s.rand(uint32(total + 1)))

	weight1, weight2 := int64(-1), int64(-1)
	var overhead1, overhead2 int64
	for _, d := range s.dests {
		if d.Overloaded || d.Weight <= 0 {
			continue
		}
		r1 -= d.Weight
		r2 -= d.Weight
		if r1 <= 0 && weight1 == -1 {
			choice1, weight1, overhead1 = d, int64(d.Weight), connOverhead(d)
		}
		if r2 <= 0 && weight2 == -1 {
			choice2, weight2, overhead2 = d, int64(d.Weight), connOverhead(d)
		}
		if weight1 != -1 && weight2 != -1 {
			break
		}
	}
	if choice2 != nil && weight2*overhead1 > weight1*overhead2 {
		choice1 = choice2
	}
	return choice1
}
