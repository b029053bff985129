package conf

import (
	"strconv"
	"strings"
)

// maxSubstitutions and maxLineBytes bound the replacements made in one line,
// so a parameter defined in terms of itself stops with an error instead of
// growing forever.
const (
	maxSubstitutions = 1000
	maxLineBytes     = 64 << 10
)

// substitute replaces $NAME (followed by a blank or the end of the line) and
// ${NAME} with their values, rescanning what it inserted, so values may use
// other parameters. A multiline parameter splits the line: the lines are
// returned for the caller to process one by one. Undefined parameters are
// left as written, as keepalived does.
func (p *preprocessor) substitute(l line, depth int) ([]line, bool) {
	changed := false
	count := 0
	for i := 0; i < len(l.text); {
		if l.text[i] != '$' {
			i++
			continue
		}
		name, args, end, braced := parameterAt(l.text, i)
		if name == "" {
			i++
			continue
		}
		at := l.posAt(i)
		if v, ok := p.builtin(name, args, l, at); ok {
			l = l.replace(i, end, v, at)
			changed = true
		} else if val, ok := p.vars[name]; ok && args == "" {
			changed = true
			if len(val) == 1 {
				l = l.replace(i, end, val[0].text, at)
			} else {
				return p.splitMultiline(l, i, end, val), true
			}
		} else {
			if braced && !ok {
				p.diags.Warnf(at, "", "parameter %s is not defined; left as written", l.text[i:end])
			}
			i = end
			continue
		}
		count++
		p.substBytes += len(l.text)
		if count > maxSubstitutions || len(l.text) > maxLineBytes {
			p.diags.Errorf(at, "", "parameter $%s expands without end (does it refer to itself?)", name)
			return nil, true
		}
		if p.substBytes > 4*p.opt.MaxBytes {
			p.diags.Errorf(at, "", "parameter substitution produced more than %d bytes; stopped reading here", 4*p.opt.MaxBytes)
			p.stopped = true
			return nil, true
		}
		// Rescan from i: the inserted value may itself hold parameters.
	}
	return []line{l}, changed
}

// splitMultiline replaces l[i:end] by the lines of a multiline value.
func (p *preprocessor) splitMultiline(l line, i, end int, val []line) []line {
	if len(val) == 0 {
		return []line{concat([]line{l.slice(0, i), l.slice(end, len(l.text))}, "")}
	}
	out := make([]line, 0, len(val))
	for k, v := range val {
		if k == 0 && i > 0 {
			v = concat([]line{l.slice(0, i), v}, "")
		}
		if k == len(val)-1 && end < len(l.text) {
			v = concat([]line{v, l.slice(end, len(l.text))}, "")
		}
		v.pwd = l.pwd
		out = append(out, v)
	}
	return out
}

// parameterAt reads the parameter reference starting with the '$' at s[i]:
// its name, any arguments (built-ins take some: ${_RANDOM 1 9}) and the
// index after it. A name of "" means s[i] does not start a reference.
func parameterAt(s string, i int) (name, args string, end int, braced bool) {
	if i+1 < len(s) && s[i+1] == '{' {
		j := strings.IndexByte(s[i+2:], '}')
		if j < 0 {
			return "", "", 0, false
		}
		inner := strings.TrimSpace(s[i+2 : i+2+j])
		name, args, _ = strings.Cut(inner, " ")
		if name == "" || nameLen(name) != len(name) {
			return "", "", 0, false
		}
		return name, strings.TrimSpace(args), i + 3 + j, true
	}
	n := nameLen(s[i+1:])
	if n == 0 {
		return "", "", 0, false
	}
	end = i + 1 + n
	if end < len(s) && !isBlank(s[end]) {
		// $NAME must be followed by a blank; "$NAME." is literal text.
		return "", "", 0, false
	}
	return s[i+1 : end], "", end, false
}

// builtin resolves the predefined parameters of keepalived.conf(5) and our
// ${_ENV NAME}.
func (p *preprocessor) builtin(name, args string, l line, at Pos) (string, bool) {
	switch name {
	case "_PWD":
		return l.pwd, true
	case "_INSTANCE":
		return p.opt.Instance, true
	case "_HASH":
		return "#", true
	case "_BANG":
		return "!", true
	case "_RANDOM":
		lo, hi := 0, 32767
		f := strings.Fields(args)
		if len(f) > 2 {
			p.diags.Errorf(at, "", "${_RANDOM [MIN [MAX]]} takes at most two numbers")
			return "0", true
		}
		vals := []*int{&lo, &hi}
		for k, s := range f {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				p.diags.Errorf(at, "", "${_RANDOM}: %q is not a non-negative integer", s)
				return "0", true
			}
			*vals[k] = n
		}
		if hi < lo {
			p.diags.Errorf(at, "", "${_RANDOM %d %d}: MAX is below MIN", lo, hi)
			return strconv.Itoa(lo), true
		}
		return strconv.Itoa(p.opt.Random(lo, hi)), true
	case "_ENV":
		if args == "" {
			p.diags.Errorf(at, "", "${_ENV NAME} needs the variable's name")
			return "", true
		}
		v, ok := p.opt.Getenv(args)
		if !ok {
			p.diags.Warnf(at, "", "environment variable %s is not set; using the empty string", args)
		}
		return v, true
	}
	return "", false
}
