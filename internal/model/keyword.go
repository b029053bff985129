package model

import (
	"sort"
	"strings"

	"github.com/keepvs/keepvs/internal/conf"
)

// kw describes one keyword of a block whose model type is T.
type kw[T any] struct {
	// fn applies the statement to t. It reports problems through b.
	fn func(b *builder, t *T, n *conf.Node)
	// block is true when the keyword needs a { } block, false when it must
	// not have one.
	block bool
	// optBlock allows a block but does not require it.
	optBlock bool
	// deprecated, when set, is the warning given for an old spelling, e.g.
	// "use lvs_sched" for lb_algo.
	deprecated string
}

// table is the set of keywords a block accepts.
type table[T any] map[string]kw[T]

// alias returns kw registered under another name, with a deprecation
// warning when msg is not empty.
func (t table[T]) alias(name, of, msg string) {
	k := t[of]
	k.deprecated = msg
	t[name] = k
}

// walk applies every statement of a block to t: unknown keywords are errors
// with a suggestion, keywords with a missing or unexpected block are errors,
// deprecated spellings are warnings.
func walk[T any](b *builder, t *T, tab table[T], where string, nodes []*conf.Node) {
	for _, n := range nodes {
		walkOne(b, t, tab, where, n)
	}
}

// walkOne applies one statement, as walk does each.
func walkOne[T any](b *builder, t *T, tab table[T], where string, n *conf.Node) {
	k, ok := tab[n.Keyword()]
	if !ok {
		b.unknown(n, where, keys(tab))
		return
	}
	if k.deprecated != "" {
		b.warnf(n.Pos(), n.Keyword(), "deprecated: %s", k.deprecated)
	}
	switch {
	case k.block && !n.HasBlock:
		b.errorf(n.Pos(), n.Keyword(), "needs a { ... } block")
		return
	case !k.block && !k.optBlock && n.HasBlock:
		b.errorf(n.Open, n.Keyword(), "takes no { ... } block")
		return
	}
	k.fn(b, t, n)
}

func keys[T any](tab table[T]) []string {
	out := make([]string, 0, len(tab))
	for k := range tab {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// unknown reports a keyword the block does not have, with the nearest
// keyword when one is close: a known keyword glued to its argument
// ("lb_algowlc", "weight1", "vrrp_instance_VI_1") or a misspelling.
func (b *builder) unknown(n *conf.Node, where string, known []string) {
	word := n.Keyword()
	msg := "unknown keyword in " + where
	if s := suggest(word, known); s != "" {
		msg += "; did you mean " + s + "?"
	}
	var others []string
	for _, o := range b.elsewhere[word] {
		if o != where {
			others = append(others, o)
		}
	}
	if len(others) > 0 {
		msg += " (it is a keyword of " + strings.Join(others, ", ") + ")"
	}
	b.errorf(n.Pos(), word, "%s", msg)
}

// suggest finds what the operator probably meant by word.
func suggest(word string, known []string) string {
	// A keyword glued to its first argument: the longest known prefix.
	best := ""
	for _, k := range known {
		if len(k) < len(word) && strings.HasPrefix(word, k) && len(k) > len(best) && len(k) >= 4 {
			best = k
		}
	}
	if best != "" {
		rest := strings.TrimLeft(word[len(best):], "_")
		if rest != "" {
			return "`" + best + " " + rest + "`"
		}
	}
	// A misspelling: the smallest edit distance within a third of the word.
	limit := len(word)/3 + 1
	if limit > 3 {
		limit = 3
	}
	bestD := limit + 1
	for _, k := range known {
		if d := editDistance(word, k, bestD); d < bestD {
			best, bestD = k, d
		}
	}
	if bestD <= limit {
		return "`" + best + "`"
	}
	return ""
}

// editDistance is the Levenshtein distance of a and b, or a value > max
// once it is certain to exceed max.
func editDistance(a, b string, max int) int {
	if d := len(a) - len(b); d > max || -d > max {
		return max + 1
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > max {
			return max + 1
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
