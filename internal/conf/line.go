package conf

import "strings"

// span maps the bytes of a logical line from offset start onward back to
// the file. A fixed span (text that came from a $PARAMETER) maps every byte
// to the same place: the '$' that produced it.
type span struct {
	start int
	pos   Pos
	fixed bool
}

// line is one logical line of configuration: text plus the map from its
// bytes back to where they were written. Most lines are one piece of one
// file line, mapped by first alone: they cost no allocation.
type line struct {
	text  string
	first span   // first.start == 0
	more  []span // the spans after first, sorted by start; usually nil
	pwd   string // directory of the file the line came from, for ${_PWD}
}

func newLine(text string, pos Pos, pwd string) line {
	return line{text: text, first: span{pos: pos}, pwd: pwd}
}

// fixedLine is text that maps entirely to at: a parameter's value.
func fixedLine(text string, at Pos, pwd string) line {
	return line{text: text, first: span{pos: at, fixed: true}, pwd: pwd}
}

// spanAt is the span that maps byte i.
func (l *line) spanAt(i int) span {
	s := l.first
	for _, sp := range l.more {
		if sp.start > i {
			break
		}
		s = sp
	}
	return s
}

// posAt is the source position of byte i of the line.
func (l *line) posAt(i int) Pos {
	s := l.first
	if len(l.more) > 0 {
		s = l.spanAt(i)
	}
	if s.fixed {
		return s.pos
	}
	p := s.pos
	p.Col += i - s.start
	return p
}

// slice returns the part of the line between byte offsets i and j.
func (l line) slice(i, j int) line {
	s := l.spanAt(i)
	out := line{text: l.text[i:j], pwd: l.pwd, first: span{pos: l.posAt(i), fixed: s.fixed}}
	for _, sp := range l.more {
		if sp.start > i && sp.start < j {
			sp.start -= i
			out.more = append(out.more, sp)
		}
	}
	return out
}

// concat joins lines, separated by sep (which maps to the end of the left
// part).
func concat(parts []line, sep string) line {
	if len(parts) == 1 {
		return parts[0]
	}
	var b strings.Builder
	out := line{pwd: parts[0].pwd, first: parts[0].first}
	for k, p := range parts {
		if k > 0 && sep != "" {
			b.WriteString(sep)
		}
		off := b.Len()
		if k > 0 {
			sp := p.first
			sp.start += off
			out.more = append(out.more, sp)
		}
		for _, sp := range p.more {
			sp.start += off
			out.more = append(out.more, sp)
		}
		b.WriteString(p.text)
	}
	out.text = b.String()
	return out
}

// replace returns the line with bytes [i,j) replaced by text that maps to
// position at (fixed).
func (l line) replace(i, j int, text string, at Pos) line {
	parts := []line{l.slice(0, i), fixedLine(text, at, l.pwd), l.slice(j, len(l.text))}
	return concat(parts, "")
}

// trim removes leading and trailing blanks.
func (l line) trim() line {
	i, j := trimBlanks(l.text)
	if i == 0 && j == len(l.text) {
		return l
	}
	return l.slice(i, j)
}

// trimBlanks returns the bounds of s without its leading and trailing
// blanks.
func trimBlanks(s string) (int, int) {
	i, j := 0, len(s)
	for i < j && isBlank(s[i]) {
		i++
	}
	for j > i && isBlank(s[j-1]) {
		j--
	}
	return i, j
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

// decomment cuts a comment ('#' or '!' outside quotes, anywhere on the line)
// and reports whether the line ends in a continuation backslash, which it
// also removes.
func decomment(s string) (text string, cont bool) {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' && i+1 < len(s) {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' || c == '!':
			s = s[:i]
		}
	}
	for len(s) > 0 && isBlank(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	if strings.HasSuffix(s, "\\") && !strings.HasSuffix(s, "\\\\") {
		s = s[:len(s)-1]
		for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
			s = s[:len(s)-1]
		}
		return s, true
	}
	return s, false
}
