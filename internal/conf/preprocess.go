package conf

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"
)

// FileSystem is what the parser reads: the OS by default, a map in tests and
// in the fuzzer.
type FileSystem interface {
	ReadFile(name string) ([]byte, error)
	// Glob returns the names matching pattern (filepath.Match syntax, no
	// braces: the parser expands those), sorted.
	Glob(pattern string) ([]string, error)
}

// OSFS reads the real filesystem.
type OSFS struct{}

func (OSFS) ReadFile(name string) ([]byte, error)  { return os.ReadFile(name) }
func (OSFS) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }

// Options control how a configuration is read.
type Options struct {
	// ConfigID is compared with @ID and @^ID lines (keepalived -i); the
	// default is the short host name.
	ConfigID string
	// Instance is ${_INSTANCE}; default ConfigID.
	Instance string
	FS       FileSystem
	// Getenv backs ${_ENV NAME}; default os.LookupEnv.
	Getenv func(string) (string, bool)
	// Random backs ${_RANDOM MIN MAX}; default math/rand.
	Random func(min, max int) int
	// Limits that keep a hostile or mistaken file from running away.
	MaxIncludeDepth int // default 32
	MaxLines        int // logical lines after expansion; default 4,000,000
	MaxBytes        int // bytes after expansion; default 256 MiB
	MaxBlockDepth   int // default 64
}

func (o *Options) defaults() {
	if o.ConfigID == "" {
		h, _ := os.Hostname()
		o.ConfigID, _, _ = strings.Cut(h, ".")
	}
	if o.Instance == "" {
		o.Instance = o.ConfigID
	}
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	if o.Random == nil {
		o.Random = func(min, max int) int { return min + rand.IntN(max-min+1) }
	}
	if o.MaxIncludeDepth == 0 {
		o.MaxIncludeDepth = 32
	}
	if o.MaxLines == 0 {
		o.MaxLines = 4_000_000
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 256 << 20
	}
	if o.MaxBlockDepth == 0 {
		o.MaxBlockDepth = 64
	}
}

// maxDepth bounds recursion through parameters, sequences and re-fed lines.
const maxDepth = 64

type preprocessor struct {
	opt      Options
	diags    Diagnostics
	vars     map[string][]line // a parameter's value: one line, or several (multiline)
	includes []string          // the include stack, for cycle detection
	files    []string
	tree     *treeBuilder
	tokBuf   []token // reused for each line
	lines    int
	bytes    int
	stopped  bool // a limit was hit; stop producing
	// substBytes counts the text rewritten by substitution, to bound the
	// work a self-multiplying parameter can cause.
	substBytes int
}

// ParseFile reads the configuration at path, following includes.
func ParseFile(path string, opt Options) (*File, Diagnostics) {
	opt.defaults()
	p := newPreprocessor(opt)
	p.include(path, Pos{}, "include", false)
	return p.finish()
}

// ParseFileEach reads the configuration at path as ParseFile does, but
// hands each top-level statement, complete with its blocks, to each as
// soon as the statements after it can no longer change it, in file order,
// and keeps none: the whole file's tree never exists at once. The
// statement is each's only during the call: its memory is reused for the
// next one, so each must keep nothing of it but copies (Text strings and
// Pos values may be kept). It returns the files that were read and the
// diagnostics of reading them (what each finds is each's to report).
func ParseFileEach(path string, opt Options, each func(*Node)) ([]string, Diagnostics) {
	opt.defaults()
	p := newPreprocessor(opt)
	p.tree.each = each
	p.include(path, Pos{}, "include", false)
	f, diags := p.finish()
	return f.Files, diags
}

// Parse reads a configuration from src; includes are resolved relative to
// the directory of name through opt.FS.
func Parse(name string, src []byte, opt Options) (*File, Diagnostics) {
	opt.defaults()
	p := newPreprocessor(opt)
	p.includes = append(p.includes, name)
	p.files = append(p.files, name)
	p.source(name, string(src)) // a copy: the caller may reuse src
	return p.finish()
}

func newPreprocessor(opt Options) *preprocessor {
	p := &preprocessor{opt: opt, vars: map[string][]line{}}
	p.tree = newTreeBuilder(opt.MaxBlockDepth, &p.diags)
	return p
}

func (p *preprocessor) finish() (*File, Diagnostics) {
	f := &File{Files: p.files}
	f.Nodes = p.tree.finish()
	// A re-processed line can report the same problem twice.
	seen := make(map[Diagnostic]bool, len(p.diags))
	out := p.diags[:0]
	for _, d := range p.diags {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return f, out
}

// source splits one file into logical lines: comments removed, backslash
// continuations gathered (kept apart, as a multiline parameter needs them).
func (p *preprocessor) source(name string, text string) {
	pwd := filepath.Dir(name)
	var pieces []line // reused: logical keeps none of them
	for n := 1; len(text) > 0 && !p.stopped; n++ {
		raw := text
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			raw, text = text[:i], text[i+1:]
		} else {
			text = ""
		}
		body, cont := decomment(raw)
		if cont && len(text) > 0 {
			pieces = append(pieces, newLine(body, Pos{File: name, Line: n, Col: 1}, pwd))
			continue
		}
		if len(pieces) > 0 {
			p.logical(append(pieces, newLine(body, Pos{File: name, Line: n, Col: 1}, pwd)))
			pieces = pieces[:0]
			continue
		}
		// One physical line, as nearly all are.
		i, j := trimBlanks(body)
		if i == j {
			continue
		}
		at := Pos{File: name, Line: n, Col: 1 + i}
		if plain(body[i:j]) {
			p.emitPlain(body[i:j], at)
			continue
		}
		p.process(newLine(body[i:j], at, pwd), 0)
	}
	if len(pieces) > 0 {
		p.logical(pieces)
	}
}

// logical handles one logical line made of continued physical pieces.
func (p *preprocessor) logical(pieces []line) {
	first := pieces[0].trim()
	if first.text == "" && len(pieces) == 1 {
		return
	}
	if name, value, ok := definition(first); ok && len(pieces) > 1 {
		// Multiline definition: each continued piece is one line of the value.
		var val []line
		if value.text != "" {
			val = append(val, value)
		}
		for _, pc := range pieces[1:] {
			if pc = pc.trim(); pc.text != "" {
				val = append(val, pc)
			}
		}
		p.vars[name] = val
		return
	}
	trimmed := make([]line, 0, len(pieces))
	for _, pc := range pieces {
		if pc = pc.trim(); pc.text != "" {
			trimmed = append(trimmed, pc)
		}
	}
	if len(trimmed) == 0 {
		return
	}
	p.process(concat(trimmed, " "), 0)
}

// definition recognises "$NAME=VALUE" (no blank before '=').
func definition(l line) (string, line, bool) {
	s := l.text
	if len(s) < 3 || s[0] != '$' {
		return "", line{}, false
	}
	n := nameLen(s[1:])
	if n == 0 || 1+n >= len(s) || s[1+n] != '=' {
		return "", line{}, false
	}
	return s[1 : 1+n], l.slice(2+n, len(s)).trim(), true
}

// nameLen is the length of the parameter name at the start of s: letters,
// digits and '_', not starting with a digit.
func nameLen(s string) int {
	i := 0
	for i < len(s) {
		c := s[i]
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			i++
			continue
		}
		break
	}
	return i
}

// process runs one logical line through the pipeline: conditional,
// definition, sequence, substitution, then include or tokens.
func (p *preprocessor) process(l line, depth int) {
	if p.stopped {
		return
	}
	if depth > maxDepth {
		p.diags.Errorf(l.posAt(0), "", "parameter or sequence expansion nested deeper than %d (a parameter that refers to itself?)", maxDepth)
		return
	}
	l = l.trim()
	if l.text == "" {
		return
	}
	if l.text[0] == '@' {
		var keep bool
		if l, keep = p.conditional(l); !keep || l.text == "" {
			return
		}
	}
	if name, value, ok := definition(l); ok {
		p.vars[name] = []line{value}
		return
	}
	if strings.HasPrefix(l.text, "~SEQ") || strings.HasPrefix(l.text, "~LST") {
		p.sequence(l, depth)
		return
	}
	if strings.IndexByte(l.text, '$') >= 0 {
		out, changed := p.substitute(l, depth)
		if changed {
			for _, o := range out {
				p.process(o, depth+1)
			}
			return
		}
	}
	p.emit(l)
}

// conditional applies "@ID rest" and "@^ID rest".
func (p *preprocessor) conditional(l line) (line, bool) {
	s := l.text
	end := blankIndex(s)
	id, neg := s[1:end], false
	if strings.HasPrefix(id, "^") {
		id, neg = id[1:], true
	}
	if (id == p.opt.ConfigID) == neg {
		return line{}, false
	}
	return l.slice(end, len(s)).trim(), true
}

// emit tokenizes a finished line; an include line reads its files instead.
func (p *preprocessor) emit(l line) {
	p.lines++
	p.bytes += len(l.text)
	if p.lines > p.opt.MaxLines || p.bytes > p.opt.MaxBytes {
		p.diags.Errorf(l.posAt(0), "", "configuration expands past %d lines or %d bytes; stopped reading here", p.opt.MaxLines, p.opt.MaxBytes)
		p.stopped = true
		return
	}
	if kw, arg, ok := includeLine(l); ok {
		// Braces belong to the pattern here ({a,b} alternatives): an
		// unquoted argument is taken as written.
		w := Word{Text: arg.text, Pos: arg.posAt(0)}
		if strings.HasPrefix(arg.text, "\"") || strings.HasPrefix(arg.text, "'") {
			words := tokenize(arg, &p.diags, nil)
			if len(words) != 1 || words[0].kind != tokWord {
				p.diags.Errorf(l.posAt(0), kw, "takes exactly one file name or pattern")
				return
			}
			w = words[0].word
		} else if arg.text == "" || strings.ContainsAny(arg.text, " \t") {
			p.diags.Errorf(l.posAt(0), kw, "takes exactly one file name or pattern")
			return
		}
		p.includePattern(w, kw, l.pwd)
		return
	}
	p.tokBuf = tokenize(l, &p.diags, p.tokBuf[:0])
	for _, t := range p.tokBuf {
		p.tree.add(t)
	}
	p.tree.add(token{kind: tokEOL})
}

// plain reports whether a trimmed line needs none of the preprocessor's
// features (no conditional, definition, generator, parameter, include,
// quote or non-breaking space): process would only emit it, and its words
// are its runs of other bytes, each a piece of the text as it is.
func plain(s string) bool {
	if s[0] == '@' || s[0] == '~' || strings.HasPrefix(s, "include") {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '$', '"', '\'', 0xc2:
			return false
		}
	}
	return true
}

// emitPlain is emit for a plain line of one piece, whose byte i is at
// column at.Col+i.
func (p *preprocessor) emitPlain(s string, at Pos) {
	p.lines++
	p.bytes += len(s)
	if p.lines > p.opt.MaxLines || p.bytes > p.opt.MaxBytes {
		p.diags.Errorf(at, "", "configuration expands past %d lines or %d bytes; stopped reading here", p.opt.MaxLines, p.opt.MaxBytes)
		p.stopped = true
		return
	}
	col := at.Col
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isBlank(c):
			i++
			continue
		case c == '{':
			at.Col = col + i
			p.tree.open(at)
			i++
			continue
		case c == '}':
			at.Col = col + i
			p.tree.close(at)
			i++
			continue
		}
		j := i + 1
		for j < len(s) && !isBlank(s[j]) && s[j] != '{' && s[j] != '}' {
			j++
		}
		at.Col = col + i
		p.tree.word(Word{Text: s[i:j], Pos: at})
		i = j
	}
	p.tree.eol()
}

// includePattern expands braces and globs relative to the including file's
// directory and reads every match in order.
func (p *preprocessor) includePattern(w Word, kw, pwd string) {
	pattern := w.Text
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(pwd, pattern)
	}
	alts, err := expandBraces(pattern, 256)
	if err != nil {
		p.diags.Errorf(w.Pos, kw, "%v", err)
		return
	}
	var matched int
	for _, alt := range alts {
		if !hasGlobMeta(alt) {
			matched++
			p.include(alt, w.Pos, kw, true)
			continue
		}
		names, err := p.opt.FS.Glob(alt)
		if err != nil {
			p.diags.Errorf(w.Pos, kw, "bad pattern %q: %v", w.Text, err)
			continue
		}
		matched += len(names)
		for _, n := range names {
			p.include(n, w.Pos, kw, true)
		}
	}
	if matched == 0 {
		if kw == "include" || kw == "includer" {
			p.diags.Warnf(w.Pos, kw, "%q matches no file", w.Text)
		} else {
			p.diags.Errorf(w.Pos, kw, "%q matches no file", w.Text)
		}
	}
}

// includeLine recognises "include PATTERN" and its variants, returning the
// keyword and the rest of the line.
func includeLine(l line) (string, line, bool) {
	if !strings.HasPrefix(l.text, "include") {
		return "", line{}, false
	}
	end := blankIndex(l.text)
	switch kw := l.text[:end]; kw {
	case "include", "includer", "includem", "includew", "includeb", "includea":
		return kw, l.slice(end, len(l.text)).trim(), true
	}
	return "", line{}, false
}

// blankIndex is the index of the first space or tab in s, or len(s).
func blankIndex(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == '\t' {
			return i
		}
	}
	return len(s)
}

func hasGlobMeta(s string) bool { return strings.ContainsAny(s, "*?[") }

// include reads one file, guarding against cycles and depth.
func (p *preprocessor) include(name string, from Pos, kw string, nested bool) {
	if p.stopped {
		return
	}
	name = filepath.Clean(name)
	for _, open := range p.includes {
		if open == name {
			p.diags.Errorf(from, kw, "include cycle: %s includes itself (through %s)", name, strings.Join(p.includes, " -> "))
			return
		}
	}
	if len(p.includes) >= p.opt.MaxIncludeDepth {
		p.diags.Errorf(from, kw, "includes nested deeper than %d", p.opt.MaxIncludeDepth)
		return
	}
	src, err := p.opt.FS.ReadFile(name)
	if err != nil {
		if nested {
			p.diags.Errorf(from, kw, "cannot read %s: %v", name, unwrapPathError(err))
		} else {
			p.diags.Errorf(Pos{File: name}, "", "cannot read configuration: %v", unwrapPathError(err))
		}
		return
	}
	p.includes = append(p.includes, name)
	p.files = append(p.files, name)
	var text string
	if _, ok := p.opt.FS.(OSFS); ok {
		// os.ReadFile's buffer is ours alone and never written again:
		// it need not be copied to be the text the words are pieces of.
		text = unsafe.String(unsafe.SliceData(src), len(src))
	} else {
		text = string(src)
	}
	p.source(name, text)
	p.includes = p.includes[:len(p.includes)-1]
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// expandBraces expands csh-style {a,b} alternatives, nested, into at most
// limit strings.
func expandBraces(s string, limit int) ([]string, error) {
	open := -1
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			if depth == 0 {
				open = i
			}
			depth++
		case '}':
			if depth == 0 {
				continue
			}
			depth--
			if depth > 0 {
				continue
			}
			// s[open:i+1] is a top-level group: split on top-level commas.
			var alts []string
			d, last := 0, open+1
			for j := open + 1; j < i; j++ {
				switch s[j] {
				case '{':
					d++
				case '}':
					d--
				case ',':
					if d == 0 {
						alts = append(alts, s[last:j])
						last = j + 1
					}
				}
			}
			alts = append(alts, s[last:i])
			if len(alts) == 1 {
				// "{x}" with no comma is literal, as in csh.
				continue
			}
			var out []string
			for _, a := range alts {
				rest, err := expandBraces(s[:open]+a+s[i+1:], limit)
				if err != nil {
					return nil, err
				}
				out = append(out, rest...)
				if len(out) > limit {
					return nil, fmt.Errorf("brace expansion gives more than %d names", limit)
				}
			}
			return out, nil
		}
	}
	return []string{s}, nil
}

// sequence expands "~SEQ(var, start, step, end) rest", "~SEQx(...)" and
// "~LST(var, v1, v2...)" / "~LST({a,b}, {1,2}, ...)" lines.
func (p *preprocessor) sequence(l line, depth int) {
	s := l.text
	kind := "~LST"
	switch {
	case strings.HasPrefix(s, "~SEQx("):
		kind = "~SEQx"
	case strings.HasPrefix(s, "~SEQ("):
		kind = "~SEQ"
	case strings.HasPrefix(s, "~LST("):
	default:
		p.diags.Errorf(l.posAt(0), "", "unknown generator %q (want ~SEQ(...), ~SEQx(...) or ~LST(...))", firstWord(s))
		return
	}
	open := len(kind)
	closeAt := matchParen(s, open)
	if closeAt < 0 {
		p.diags.Errorf(l.posAt(0), kind, "missing ')'")
		return
	}
	specLine := l.slice(open+1, closeAt)
	if strings.IndexByte(specLine.text, '$') >= 0 {
		out, _ := p.substitute(specLine, depth)
		if len(out) != 1 {
			p.diags.Errorf(l.posAt(0), kind, "a multiline parameter cannot be used inside %s(...)", kind)
			return
		}
		specLine = out[0]
	}
	rest := l.slice(closeAt+1, len(s))
	pos := l.posAt(0)
	var names []string
	var rows [][]string
	if kind == "~LST" {
		var err error
		names, rows, err = parseList(specLine.text)
		if err != nil {
			p.diags.Errorf(pos, kind, "%v", err)
			return
		}
	} else {
		name, vals, err := parseSeq(specLine.text, kind == "~SEQx", p.opt.MaxLines)
		if err != nil {
			p.diags.Errorf(pos, kind, "%v", err)
			return
		}
		names = []string{name}
		for _, v := range vals {
			rows = append(rows, []string{v})
		}
	}
	saved := make([][]line, len(names))
	for i, n := range names {
		saved[i] = p.vars[n]
	}
	for _, row := range rows {
		if p.stopped {
			break
		}
		for i, n := range names {
			p.vars[n] = []line{fixedLine(row[i], pos, "")}
		}
		p.process(rest, depth+1)
	}
	for i, n := range names {
		if saved[i] == nil {
			delete(p.vars, n)
		} else {
			p.vars[n] = saved[i]
		}
	}
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t("); i >= 0 {
		return s[:i]
	}
	return s
}

func matchParen(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func splitTrim(s string) []string {
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// parseSeq reads "var, [start, [step,]] end".
func parseSeq(spec string, hex bool, limit int) (string, []string, error) {
	parts := splitTrim(spec)
	if len(parts) < 2 || len(parts) > 4 {
		return "", nil, fmt.Errorf("want (var, [start, [step,]] end), got (%s)", spec)
	}
	name := parts[0]
	if nameLen(name) != len(name) || name == "" {
		return "", nil, fmt.Errorf("%q is not a parameter name", name)
	}
	nums := make([]int64, 0, 3)
	for _, t := range parts[1:] {
		n, err := strconv.ParseInt(t, 0, 64)
		if err != nil {
			return "", nil, fmt.Errorf("%q is not an integer", t)
		}
		nums = append(nums, n)
	}
	var start, step, end int64
	switch len(nums) {
	case 1:
		end = nums[0]
		start = 1
		if end < 0 {
			start = -1
		}
	case 2:
		start, end = nums[0], nums[1]
	case 3:
		start, step, end = nums[0], nums[1], nums[2]
	}
	if step == 0 {
		if len(nums) == 3 {
			return "", nil, fmt.Errorf("step must not be 0")
		}
		step = 1
		if end < start {
			step = -1
		}
	}
	var vals []string
	for v := start; (step > 0 && v <= end) || (step < 0 && v >= end); v += step {
		if len(vals) >= limit {
			return "", nil, fmt.Errorf("sequence longer than %d values", limit)
		}
		if hex {
			if v < 0 {
				vals = append(vals, "-"+strconv.FormatInt(-v, 16))
			} else {
				vals = append(vals, strconv.FormatInt(v, 16))
			}
		} else {
			vals = append(vals, strconv.FormatInt(v, 10))
		}
	}
	return name, vals, nil
}

// parseList reads "var, v1, v2" or "{a, b}, {1, 2}, {3, 4}".
func parseList(spec string) ([]string, [][]string, error) {
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "{") {
		groups, err := braceGroups(spec)
		if err != nil {
			return nil, nil, err
		}
		if len(groups) < 2 {
			return nil, nil, fmt.Errorf("want ({names}, {values}...)")
		}
		names := groups[0]
		for _, n := range names {
			if n == "" || nameLen(n) != len(n) {
				return nil, nil, fmt.Errorf("%q is not a parameter name", n)
			}
		}
		for _, g := range groups[1:] {
			if len(g) != len(names) {
				return nil, nil, fmt.Errorf("{%s} has %d values for %d names", strings.Join(g, ","), len(g), len(names))
			}
		}
		return names, groups[1:], nil
	}
	parts := splitTrim(spec)
	if len(parts) < 2 {
		return nil, nil, fmt.Errorf("want (var, value...)")
	}
	if parts[0] == "" || nameLen(parts[0]) != len(parts[0]) {
		return nil, nil, fmt.Errorf("%q is not a parameter name", parts[0])
	}
	var rows [][]string
	for _, v := range parts[1:] {
		rows = append(rows, []string{v})
	}
	return parts[:1], rows, nil
}

func braceGroups(s string) ([][]string, error) {
	var groups [][]string
	for {
		s = strings.TrimSpace(s)
		if s == "" {
			return groups, nil
		}
		if s[0] != '{' {
			return nil, fmt.Errorf("expected '{' at %q", s)
		}
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return nil, fmt.Errorf("missing '}'")
		}
		groups = append(groups, splitTrim(s[1:end]))
		s = strings.TrimSpace(s[end+1:])
		if s != "" {
			if s[0] != ',' {
				return nil, fmt.Errorf("expected ',' at %q", s)
			}
			s = s[1:]
		}
	}
}
