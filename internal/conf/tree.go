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
//
// Words, statements and blocks come from slabs: a few allocations per
// thousand statements instead of several each. With each set, a top-level
// statement is handed over as soon as nothing can change it any more and
// is not kept (the whole file's tree never exists at once), and the slabs
// are reused for the next one.
type treeBuilder struct {
	maxDepth int
	diags    *Diagnostics
	stack    []frame // stack[0] is the top level
	skip     int     // depth of blocks being skipped past the depth limit
	// words holds, from wordStart on, the words of the statement being
	// read (only the innermost open block ever has one: '{' and '}' end
	// the statement before them), and before that those of the statements
	// read: a statement's words stay where they were read.
	words     []Word
	wordStart int
	// nodes holds the statements of every open block, innermost last;
	// frame.start says where each block's begin.
	nodes []*Node
	each  func(*Node)

	nodeSlab slab[Node]
	ptrSlab  slab[*Node]
}

type frame struct {
	opener *Node // nil at top level
	start  int   // the block's first statement in treeBuilder.nodes
	prev   *Node // the statement just ended by a newline, still open to a '{'
}

// slab hands out slices of a chunk; a full chunk is followed by one twice
// its size.
type slab[T any] struct {
	buf  []T
	used int
}

func (s *slab[T]) take(n int) []T {
	if s.used+n > len(s.buf) {
		s.buf = make([]T, max(256, 2*len(s.buf), n))
		s.used = 0
	}
	out := s.buf[s.used : s.used+n : s.used+n]
	s.used += n
	return out
}

// rewind makes the last chunk free again: only when nothing taken from
// the slab is in use any more.
func (s *slab[T]) rewind() { s.used = 0 }

func newTreeBuilder(maxDepth int, diags *Diagnostics) *treeBuilder {
	return &treeBuilder{maxDepth: maxDepth, diags: diags, stack: []frame{{}}}
}

func (b *treeBuilder) top() *frame { return &b.stack[len(b.stack)-1] }

// pending is the number of words of the statement being read.
func (b *treeBuilder) pending() int { return len(b.words) - b.wordStart }

// word appends a word to the statement being read.
func (b *treeBuilder) word(w Word) {
	if b.skip > 0 {
		return
	}
	if len(b.words) == cap(b.words) {
		// A new chunk, twice the size, with the statement's words so far.
		n := b.pending()
		words := make([]Word, n, max(256, 2*cap(b.words)))
		copy(words, b.words[b.wordStart:])
		b.words, b.wordStart = words, 0
	}
	b.words = append(b.words, w)
	b.top().prev = nil
}

// newNode returns a statement of the pending words.
func (b *treeBuilder) newNode() *Node {
	ws := b.words[b.wordStart:len(b.words):len(b.words)]
	b.wordStart = len(b.words)
	nd := &b.nodeSlab.take(1)[0]
	nd.Words, nd.HasBlock, nd.Block, nd.Open, nd.Close = ws, false, nil, Pos{}, Pos{}
	return nd
}

// block copies statements into a slice of their own, exactly long enough.
func (b *treeBuilder) block(nodes []*Node) []*Node {
	if len(nodes) == 0 {
		return nil
	}
	out := b.ptrSlab.take(len(nodes))
	copy(out, nodes)
	return out
}

func (b *treeBuilder) flush() *Node {
	if b.pending() == 0 {
		return nil
	}
	if b.each != nil && len(b.stack) == 1 {
		// A new top-level statement: the ones before it are final.
		b.deliver()
	}
	n := b.newNode()
	b.nodes = append(b.nodes, n)
	return n
}

// deliver hands the finished top-level statements to each. Nothing built
// so far is in use after that (each keeps no statement, and the frame's
// prev is nil: a word came since), so the slabs start over.
func (b *treeBuilder) deliver() {
	for i, n := range b.nodes {
		b.nodes[i] = nil
		b.each(n)
	}
	b.nodes = b.nodes[:0]
	// The statement being read keeps its words, moved to the start.
	n := copy(b.words, b.words[b.wordStart:])
	b.words, b.wordStart = b.words[:n], 0
	b.nodeSlab.rewind()
	b.ptrSlab.rewind()
}

func (b *treeBuilder) add(t token) {
	switch t.kind {
	case tokWord:
		b.word(t.word)
	case tokEOL:
		b.eol()
	case tokOpen:
		b.open(t.word.Pos)
	case tokClose:
		b.close(t.word.Pos)
	}
}

func (b *treeBuilder) eol() {
	if b.skip > 0 {
		return
	}
	if n := b.flush(); n != nil {
		b.top().prev = n
	}
}

func (b *treeBuilder) open(at Pos) {
	if b.skip > 0 {
		b.skip++
		return
	}
	n := b.flush()
	f := b.top()
	if n == nil {
		n = f.prev
	}
	f.prev = nil
	if n == nil {
		b.diags.Errorf(at, "", "'{' without a keyword before it")
		b.skip = 1
		return
	} else if n.HasBlock {
		b.diags.Errorf(at, n.Keyword(), "a second block for the same statement")
	}
	n.HasBlock = true
	n.Open = at
	if len(b.stack) > b.maxDepth {
		b.diags.Errorf(at, n.Keyword(), "blocks nested deeper than %d", b.maxDepth)
		b.skip = 1
		return
	}
	b.stack = append(b.stack, frame{opener: n, start: len(b.nodes)})
}

func (b *treeBuilder) close(at Pos) {
	if b.skip > 0 {
		b.skip--
		return
	}
	b.flush()
	if len(b.stack) == 1 {
		b.diags.Errorf(at, "", "'}' without a block to close")
		return
	}
	b.pop().Close = at
}

// pop closes the innermost block and returns the statement that opened it.
func (b *treeBuilder) pop() *Node {
	done := b.stack[len(b.stack)-1]
	b.stack = b.stack[:len(b.stack)-1]
	done.opener.Block = b.block(b.nodes[done.start:])
	clear(b.nodes[done.start:])
	b.nodes = b.nodes[:done.start]
	return done.opener
}

// finish closes what is still open, reporting every unclosed block at the
// statement that opened it, and returns the top-level statements (none
// when each took them).
func (b *treeBuilder) finish() []*Node {
	b.flush()
	for len(b.stack) > 1 {
		n := b.pop()
		b.diags.Errorf(n.Pos(), n.Keyword(), "block opened here at %s is not closed", n.Open)
		b.flush()
	}
	if b.each != nil {
		b.deliver()
		return nil
	}
	return b.block(b.nodes)
}
