package conf

// buildTree turns the token stream into statements and blocks. A statement
// ends at the end of a line, at '{' (which opens its block) or at '}'. A '{'
// at the start of a line opens the block of the statement just before it, as
//
//	virtual_server 10.0.0.1 80
//	{
//
// is written in some old configurations.
func buildTree(toks []token, maxDepth int, diags *Diagnostics) []*Node {
	b := treeBuilder{toks: toks, maxDepth: maxDepth, diags: diags}
	nodes, _ := b.block(nil, 0)
	return nodes
}

type treeBuilder struct {
	toks     []token
	i        int
	maxDepth int
	diags    *Diagnostics
}

// block reads statements until the '}' that closes opener (nil at top
// level). It reports whether that '}' was found.
func (b *treeBuilder) block(opener *Node, depth int) ([]*Node, bool) {
	var nodes []*Node
	var words []Word
	var prev *Node // the statement just ended by a newline, if still open to a '{'
	flush := func() *Node {
		if len(words) == 0 {
			return nil
		}
		n := &Node{Words: words}
		words = nil
		nodes = append(nodes, n)
		return n
	}
	for b.i < len(b.toks) {
		t := b.toks[b.i]
		b.i++
		switch t.kind {
		case tokWord:
			words = append(words, t.word)
			prev = nil
		case tokEOL:
			if n := flush(); n != nil {
				prev = n
			}
		case tokOpen:
			n := flush()
			if n == nil {
				n = prev
			}
			prev = nil
			if n == nil {
				b.diags.Errorf(t.word.Pos, "", "'{' without a keyword before it")
				n = &Node{Words: []Word{{Text: "{", Pos: t.word.Pos}}}
			} else if n.HasBlock {
				b.diags.Errorf(t.word.Pos, n.Keyword(), "a second block for the same statement")
			}
			n.HasBlock = true
			n.Open = t.word.Pos
			if depth+1 > b.maxDepth {
				b.diags.Errorf(t.word.Pos, n.Keyword(), "blocks nested deeper than %d", b.maxDepth)
				b.skipBlock()
				continue
			}
			var closed bool
			n.Block, closed = b.block(n, depth+1)
			if !closed {
				b.diags.Errorf(n.Pos(), n.Keyword(), "block opened here at %s is not closed", n.Open)
				return nodes, false
			}
		case tokClose:
			flush()
			if opener == nil {
				b.diags.Errorf(t.word.Pos, "", "'}' without a block to close")
				continue
			}
			opener.Close = t.word.Pos
			return nodes, true
		}
	}
	flush()
	return nodes, false
}

// skipBlock consumes tokens through the '}' matching an already-read '{'.
func (b *treeBuilder) skipBlock() {
	depth := 1
	for b.i < len(b.toks) && depth > 0 {
		switch b.toks[b.i].kind {
		case tokOpen:
			depth++
		case tokClose:
			depth--
		}
		b.i++
	}
}
