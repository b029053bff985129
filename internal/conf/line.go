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
// bytes back to where they were written.
type line struct {
	text  string
	spans []span // sorted by start; spans[0].start == 0
	pwd   string // directory of the file the line came from, for ${_PWD}
}

func newLine(text string, pos Pos, pwd string) line {
	return line{text: text, spans: []span{{start: 0, pos: pos}}, pwd: pwd}
}

// posAt is the source position of byte i of the line.
func (l line) posAt(i int) Pos {
	s := l.spans[0]
	for _, sp := range l.spans[1:] {
		if sp.start > i {
			break
		}
		s = sp
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
	out := line{text: l.text[i:j], pwd: l.pwd}
	out.spans = append(out.spans, span{start: 0, pos: l.posAt(i), fixed: l.fixedAt(i)})
	for _, sp := range l.spans[1:] {
		if sp.start > i && sp.start < j {
			sp.start -= i
			out.spans = append(out.spans, sp)
		}
	}
	return out
}

func (l line) fixedAt(i int) bool {
	fixed := l.spans[0].fixed
	for _, sp := range l.spans[1:] {
		if sp.start > i {
			break
		}
		fixed = sp.fixed
	}
	return fixed
}

// concat joins lines, separated by sep (which maps to the end of the left
// part).
func concat(parts []line, sep string) line {
	if len(parts) == 1 {
		return parts[0]
	}
	var b strings.Builder
	out := line{pwd: parts[0].pwd}
	for k, p := range parts {
		if k > 0 && sep != "" {
			b.WriteString(sep)
		}
		off := b.Len()
		for _, sp := range p.spans {
			sp.start += off
			out.spans = append(out.spans, sp)
		}
		b.WriteString(p.text)
	}
	out.text = b.String()
	return out
}

// replace returns the line with bytes [i,j) replaced by text that maps to
// position at (fixed).
func (l line) replace(i, j int, text string, at Pos) line {
	parts := []line{l.slice(0, i), {text: text, spans: []span{{pos: at, fixed: true}}, pwd: l.pwd}, l.slice(j, len(l.text))}
	return concat(parts, "")
}

// trim removes leading and trailing blanks.
func (l line) trim() line {
	i, j := 0, len(l.text)
	for i < j && isBlank(l.text[i]) {
		i++
	}
	for j > i && isBlank(l.text[j-1]) {
		j--
	}
	if i == 0 && j == len(l.text) {
		return l
	}
	return l.slice(i, j)
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
	s = strings.TrimRight(s, " \t\r\v\f")
	if strings.HasSuffix(s, "\\") && !strings.HasSuffix(s, "\\\\") {
		return strings.TrimRight(s[:len(s)-1], " \t"), true
	}
	return s, false
}
