package conf

import "strings"

type tokKind uint8

const (
	tokWord tokKind = iota
	tokOpen
	tokClose
	tokEOL
)

type token struct {
	kind tokKind
	word Word
}

// tokenize splits a logical line into words and braces, appending to toks. '{' and '}' are
// tokens of their own even without blanks around them (TCP_CHECK{), except
// in quotes and in an unresolved ${NAME}. Quotes (" or ') may start or end
// inside a word and are removed; in double quotes the shell-like escapes of
// keepalived.conf(5) apply.
func tokenize(l line, diags *Diagnostics, toks []token) []token {
	s := l.text
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case isBlank(c):
			i++
		case isNBSP(s, i):
			// Pasted from a web page: keepalived would read "priority\u00a090"
			// as one unknown keyword. Say what it is, and read on as if it
			// were a space so one paste gives one error.
			diags.Errorf(l.posAt(i), "", "non-breaking space (U+00A0) where a plain space belongs; keepalived reads it as part of the word")
			i += 2
		case c == '{':
			toks = append(toks, token{kind: tokOpen, word: Word{Text: "{", Pos: l.posAt(i)}})
			i++
		case c == '}':
			toks = append(toks, token{kind: tokClose, word: Word{Text: "}", Pos: l.posAt(i)}})
			i++
		default:
			w, n := lexWord(&l, i, diags)
			toks = append(toks, token{kind: tokWord, word: w})
			i = n
		}
	}
	return toks
}

func lexWord(l *line, start int, diags *Diagnostics) (Word, int) {
	s := l.text
	w := Word{Pos: l.posAt(start)}
	i := start
	// Nearly every word has no quote and no ${NAME}: it is a piece of the
	// line's text as it is, with nothing to copy.
	for i < len(s) {
		c := s[i]
		if isBlank(c) || c == '{' || c == '}' || c == '"' || c == '\'' || c == '$' || (c == 0xc2 && isNBSP(s, i)) {
			break
		}
		i++
	}
	if i == len(s) || (s[i] != '"' && s[i] != '\'' && s[i] != '$') {
		w.Text = s[start:i]
		return w, i
	}
	var b strings.Builder
	b.WriteString(s[start:i])
	for i < len(s) {
		c := s[i]
		if isBlank(c) || c == '{' || c == '}' || isNBSP(s, i) {
			break
		}
		switch c {
		case '"', '\'':
			w.Quoted = true
			qpos := l.posAt(i)
			i++
			closed := false
			for i < len(s) {
				d := s[i]
				if d == c {
					closed = true
					i++
					break
				}
				if d == '\\' && c == '"' && i+1 < len(s) {
					i = unescape(s, i+1, &b)
					continue
				}
				b.WriteByte(d)
				i++
			}
			if !closed {
				diags.Errorf(qpos, "", "unterminated quoted string")
			}
		case '$':
			// An unresolved ${NAME} stays one word, braces included.
			if i+1 < len(s) && s[i+1] == '{' {
				if j := strings.IndexByte(s[i:], '}'); j > 0 {
					b.WriteString(s[i : i+j+1])
					i += j + 1
					continue
				}
			}
			b.WriteByte(c)
			i++
		default:
			b.WriteByte(c)
			i++
		}
	}
	w.Text = b.String()
	return w, i
}

// unescape decodes the escape whose first character (after the backslash)
// is at s[i], writes it to b and returns the index after it.
func unescape(s string, i int, b *strings.Builder) int {
	c := s[i]
	if k := strings.IndexByte("abEfnrtv", c); k >= 0 {
		b.WriteByte("\a\b\x1b\f\n\r\t\v"[k])
		return i + 1
	}
	switch {
	case c >= '0' && c <= '7':
		v, j := 0, i
		for j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7' {
			v = v*8 + int(s[j]-'0')
			j++
		}
		b.WriteByte(byte(v))
		return j
	case c == 'x':
		v, j := 0, i+1
		for j < len(s) && j < i+3 && isHex(s[j]) {
			v = v*16 + hexVal(s[j])
			j++
		}
		if j == i+1 {
			b.WriteByte('x')
			return j
		}
		b.WriteByte(byte(v))
		return j
	case c == 'c' && i+1 < len(s):
		b.WriteByte(s[i+1] & 0x1f)
		return i + 2
	}
	b.WriteByte(c)
	return i + 1
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}

// isNBSP reports whether s[i:] starts with U+00A0 in UTF-8.
func isNBSP(s string, i int) bool { return i+1 < len(s) && s[i] == 0xc2 && s[i+1] == 0xa0 }
