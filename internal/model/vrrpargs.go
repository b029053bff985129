package model

import (
	"strconv"

	"github.com/keepvs/keepvs/internal/conf"
)

// notifyScript reads "CMD [USER [GROUP]]" as keepalived's
// notify_script_init does: the first argument alone is the command (quote
// it to pass arguments; keepalived splits it again), the next two name the
// user and group to run it as.
func (b *builder) notifyScript(n *conf.Node) (*Script, bool) {
	if !b.nargs(n, 1, 3) {
		return nil, false
	}
	return b.scriptWords(n, n.Args())
}

// scriptWords builds a Script from words[0] (the command) and the
// optional user and group after it.
func (b *builder) scriptWords(n *conf.Node, words []conf.Word) (*Script, bool) {
	w := words[0]
	argv, err := SplitArgv(w.Text)
	if err != nil {
		b.errorf(w.Pos, n.Keyword(), "%v", err)
		return nil, false
	}
	if len(argv) == 0 {
		b.errorf(w.Pos, n.Keyword(), "empty command")
		return nil, false
	}
	s := &Script{Cmd: w.Text, Argv: argv}
	if len(words) > 1 {
		s.User = words[1].Text
	}
	if len(words) > 2 {
		s.Group = words[2].Text
	}
	return s, true
}

// ignored accepts a keyword keepvs will never act on, with a warning so
// the operator knows it has no effect.
func ignored[T any]() kw[T] {
	return kw[T]{optBlock: true, fn: func(b *builder, _ *T, n *conf.Node) {
		b.warnf(n.Pos(), n.Keyword(), "accepted but not implemented by keepvs; ignored")
	}}
}

// addIgnored registers names as ignored keywords of t.
func addIgnored[T any](t table[T], names ...string) {
	for _, n := range names {
		t[n] = ignored[T]()
	}
}

// Weight is a tracking weight: positive adds when up, negative subtracts
// when down; Reverse turns the direction round.
type Weight struct {
	Value   int64 `json:"value"`
	Reverse bool  `json:"reverse,omitempty"`
	// Set is false when no weight was written, so the tracked object's
	// own default applies.
	Set bool `json:"set,omitempty"`
}

// weightWords reads "weight N [reverse|noreverse|no_reverse]" from words
// (words[0] is "weight"). noRev allows the spellings that turn reverse off.
func (b *builder) weightWords(n *conf.Node, words []conf.Word, lo, hi int64, noRev bool) (Weight, bool) {
	if len(words) < 2 {
		b.errorf(words[0].Pos, n.Keyword(), "weight needs a value")
		return Weight{}, false
	}
	v, ok := b.weightValue(n, words[1], lo, hi)
	if !ok {
		return Weight{}, false
	}
	w := Weight{Value: v, Set: true}
	rest := words[2:]
	if len(rest) > 0 {
		switch {
		case rest[0].Text == "reverse":
			w.Reverse = true
		case noRev && (rest[0].Text == "noreverse" || rest[0].Text == "no_reverse"):
		default:
			allowed := "reverse"
			if noRev {
				allowed = "reverse, noreverse"
			}
			b.errorf(rest[0].Pos, n.Keyword(), "unexpected %q after weight; expected %s", rest[0].Text, allowed)
			return Weight{}, false
		}
		rest = rest[1:]
	}
	if len(rest) > 0 {
		b.errorf(rest[0].Pos, n.Keyword(), "unexpected %q after weight", rest[0].Text)
		return Weight{}, false
	}
	return w, true
}

// weightValue is integer() with a message that names the weight.
func (b *builder) weightValue(n *conf.Node, w conf.Word, lo, hi int64) (int64, bool) {
	v, err := strconv.ParseInt(w.Text, 10, 64)
	if err != nil {
		b.errorf(w.Pos, n.Keyword(), "weight %q is not an integer", w.Text)
		return 0, false
	}
	if v < lo || v > hi {
		b.errorf(w.Pos, n.Keyword(), "weight %d is out of range %d-%d", v, lo, hi)
		return 0, false
	}
	return v, true
}

// Ref is a reference by name to something defined elsewhere (a
// vrrp_script, a track_file, a vrrp_instance), kept with its position so
// finishVRRP can say where an undefined name was used.
type Ref struct {
	Name   string   `json:"name"`
	Weight Weight   `json:"weight,omitzero"`
	Pos    conf.Pos `json:"-"`
}

// nameList reads a block of bare names ("group { VI_1 VI_2 }"), one per
// line, each without arguments.
func (b *builder) nameList(n *conf.Node) []Ref {
	var out []Ref
	seen := map[string]bool{}
	for _, m := range n.Block {
		if m.HasBlock {
			b.errorf(m.Open, m.Keyword(), "takes no { ... } block")
			continue
		}
		if !b.nargs(m, 0, 0) {
			continue
		}
		if seen[m.Keyword()] {
			b.errorf(m.Pos(), m.Keyword(), "listed twice in %s", n.Keyword())
			continue
		}
		seen[m.Keyword()] = true
		out = append(out, Ref{Name: m.Keyword(), Pos: m.Pos()})
	}
	return out
}

// trackList reads a block of "NAME [weight N [reverse]]" lines, as in
// track_script { chk_http weight -20 }.
func (b *builder) trackList(n *conf.Node, lo, hi int64, noRev bool) []Ref {
	var out []Ref
	seen := map[string]bool{}
	for _, m := range n.Block {
		if m.HasBlock {
			b.errorf(m.Open, m.Keyword(), "takes no { ... } block")
			continue
		}
		r := Ref{Name: m.Keyword(), Pos: m.Pos()}
		if args := m.Args(); len(args) > 0 {
			if args[0].Text != "weight" {
				b.errorf(args[0].Pos, m.Keyword(), "unexpected %q; expected weight N", args[0].Text)
				continue
			}
			w, ok := b.weightWords(m, args, lo, hi, noRev)
			if !ok {
				continue
			}
			r.Weight = w
		}
		if seen[r.Name] {
			b.errorf(m.Pos(), m.Keyword(), "listed twice in %s", n.Keyword())
			continue
		}
		seen[r.Name] = true
		out = append(out, r)
	}
	return out
}

// suggestName finds a defined name close to an undefined one. Unlike
// suggest, it does not split a name at a known prefix: "VI_2x" is a typo
// of "VI_2", not "VI_2 x".
func suggestName(name string, defined []string) string {
	limit := min(len(name)/3+1, 3)
	best, bestD := "", limit+1
	for _, d := range defined {
		if dist := editDistance(name, d, bestD); dist < bestD {
			best, bestD = d, dist
		}
	}
	if best == "" {
		return ""
	}
	return "`" + best + "`"
}
