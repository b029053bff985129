package conf

// treeBuilder assembles statements and blocks as tokens arrive, so a large
// configuration never exists as one long token list. A statement ends at
// the end of a line, at '{' (which opens its block) or at '}'. A '{' at the
// start of a line opens the block of the statement just before it, as
//
//	virtual_server 10.0.0.1 80
//	{
//
// is written in some old configurations.
type treeBuilder struct {
	maxDepth int
	diags    *Diagnostics
	stack    []frame // stack[0] is the top level
	skip     int     // depth of blocks being skipped past the depth limit
}

type frame struct {
	opener *Node // nil at top level
	nodes  []*Node
	words  []Word
	prev   *Node // the statement just ended by a newline, still open to a '{'
}

func newTreeBuilder(maxDepth int, diags *Diagnostics) *treeBuilder {
	return &treeBuilder{maxDepth: maxDepth, diags: diags, stack: []frame{{}}}
}

func (b *treeBuilder) top() *frame { return &b.stack[len(b.stack)-1] }

func (b *treeBuilder) flush() *Node {
	f := b.top()
	if len(f.words) == 0 {
		return nil
	}
	n := &Node{Words: f.words}
	f.words = nil
	f.nodes = append(f.nodes, n)
	return n
}

func (b *treeBuilder) add(t token) {
	if b.skip > 0 {
		switch t.kind {
		case tokOpen:
			b.skip++
		case tokClose:
			b.skip--
		}
		return
	}
	f := b.top()
	switch t.kind {
	case tokWord:
		f.words = append(f.words, t.word)
		f.prev = nil
	case tokEOL:
		if n := b.flush(); n != nil {
			b.top().prev = n
		}
	case tokOpen:
		n := b.flush()
		f = b.top()
		if n == nil {
			n = f.prev
		}
		f.prev = nil
		if n == nil {
			b.diags.Errorf(t.word.Pos, "", "'{' without a keyword before it")
			b.skip = 1
			return
		} else if n.HasBlock {
			b.diags.Errorf(t.word.Pos, n.Keyword(), "a second block for the same statement")
		}
		n.HasBlock = true
		n.Open = t.word.Pos
		if len(b.stack) > b.maxDepth {
			b.diags.Errorf(t.word.Pos, n.Keyword(), "blocks nested deeper than %d", b.maxDepth)
			b.skip = 1
			return
		}
		b.stack = append(b.stack, frame{opener: n})
	case tokClose:
		b.flush()
		if len(b.stack) == 1 {
			b.diags.Errorf(t.word.Pos, "", "'}' without a block to close")
			return
		}
		done := b.stack[len(b.stack)-1]
		b.stack = b.stack[:len(b.stack)-1]
		done.opener.Block = done.nodes
		done.opener.Close = t.word.Pos
	}
}

// finish closes what is still open, reporting every unclosed block at the
// statement that opened it, and returns the top-level statements.
func (b *treeBuilder) finish() []*Node {
	b.flush()
	for len(b.stack) > 1 {
		done := b.stack[len(b.stack)-1]
		b.stack = b.stack[:len(b.stack)-1]
		n := done.opener
		n.Block = done.nodes
		b.diags.Errorf(n.Pos(), n.Keyword(), "block opened here at %s is not closed", n.Open)
		b.flush()
	}
	return b.stack[0].nodes
}
