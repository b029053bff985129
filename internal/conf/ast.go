// Package conf reads the keepalived.conf language: comments, blocks, quoted
// strings, include with globs, @conditional lines, $VARIABLES and the ~SEQ
// and ~LST line generators. It knows nothing of what keywords mean (that is
// package model); it turns files into a tree of statements in which every
// word carries the file, line and column it came from.
package conf

import (
	"fmt"
	"strings"
)

// Pos is a place in a configuration file. Line and Col count from 1; Col
// counts bytes. The zero Pos means "no position".
type Pos struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

func (p Pos) String() string {
	if p.File == "" && p.Line == 0 {
		return "-"
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// IsValid reports whether p points somewhere.
func (p Pos) IsValid() bool { return p.Line > 0 }

// Word is one token of a statement. Quoted words had their quotes removed
// and escapes resolved; Quoted remembers that they were quoted.
type Word struct {
	Text   string `json:"text"`
	Pos    Pos    `json:"pos"`
	Quoted bool   `json:"quoted,omitempty"`
}

// Node is one statement: a keyword, its arguments and, when the statement
// was followed by '{', the statements of its block.
type Node struct {
	Words    []Word  `json:"words"`
	HasBlock bool    `json:"has_block,omitempty"`
	Block    []*Node `json:"block,omitempty"`
	// Open and Close are the positions of the block's braces.
	Open  Pos `json:"-"`
	Close Pos `json:"-"`
}

// Keyword is the statement's first word.
func (n *Node) Keyword() string { return n.Words[0].Text }

// Pos is the position of the statement's keyword.
func (n *Node) Pos() Pos { return n.Words[0].Pos }

// Args are the words after the keyword.
func (n *Node) Args() []Word { return n.Words[1:] }

// Line renders the statement's words as they would be written, for messages.
func (n *Node) Line() string {
	var b strings.Builder
	for i, w := range n.Words {
		if i > 0 {
			b.WriteByte(' ')
		}
		if w.Quoted {
			b.WriteString(fmt.Sprintf("%q", w.Text))
		} else {
			b.WriteString(w.Text)
		}
	}
	return b.String()
}

// File is a parsed configuration: the top-level statements of the main file
// with every include already spliced in, and the files that were read.
type File struct {
	Nodes []*Node  `json:"nodes"`
	Files []string `json:"files"`
}
