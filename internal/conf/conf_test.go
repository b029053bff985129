package conf

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"testing"
)

// mapFS is an in-memory FileSystem keyed by absolute path.
type mapFS map[string]string

func (m mapFS) ReadFile(name string) ([]byte, error) {
	s, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("no such file or directory")
	}
	return []byte(s), nil
}

func (m mapFS) Glob(pattern string) ([]string, error) {
	var out []string
	for name := range m {
		ok, err := path.Match(pattern, name)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

func testOpts(fs mapFS) Options {
	return Options{ConfigID: "lb1", FS: fs,
		Getenv: func(k string) (string, bool) {
			if k == "HOME" {
				return "/root", true
			}
			return "", false
		},
		Random: func(lo, hi int) int { return hi },
	}
}

// render prints a tree compactly: "kw arg {child; child}" per top node.
func render(nodes []*Node) string {
	var parts []string
	for _, n := range nodes {
		var words []string
		for _, w := range n.Words {
			words = append(words, w.Text)
		}
		s := strings.Join(words, " ")
		if n.HasBlock {
			s += " {" + render(n.Block) + "}"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func diagStrings(ds Diagnostics) string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return strings.Join(out, "\n")
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		want  string
		diags string
	}{
		{"comments", "# top\n! bang\nrouter_id x # trailing\nkw a!b\n", "router_id x; kw a", ""},
		{"braces glued", "TCP_CHECK{\nconnect_port 80\n}\n", "TCP_CHECK {connect_port 80}", ""},
		{"one line block", "real_server 10.0.0.1 80 { weight 1 }\n", "real_server 10.0.0.1 80 {weight 1}", ""},
		{"nested one line", "a { b { c 1 } d }\n", "a {b {c 1}; d}", ""},
		{"brace on next line", "virtual_server 10.0.0.1 80\n{\n  lb_algo rr\n}\n", "virtual_server 10.0.0.1 80 {lb_algo rr}", ""},
		{"quotes", `script "/bin/check a b"` + "\n", "script /bin/check a b", ""},
		{"mid-word quotes", `x abcd" efg h jkl "mnop` + "\n", "x abcd efg h jkl mnop", ""},
		{"single quotes", `x 'a "b" c'` + "\n", `x a "b" c`, ""},
		{"escapes", `x "a\"b\\c\tX\x41\101\cA"` + "\n", "x a\"b\\c\tXAA\x01", ""},
		{"hash in quotes", `auth_pass "ab#c!d"` + "\n", "auth_pass ab#c!d", ""},
		{"unterminated quote", "x \"abc\n", "x abc", "t.conf:1:3: unterminated quoted string"},
		{"unclosed block", "a {\n b 1\n", "a {b 1}", "t.conf:1:1: a: block opened here at t.conf:1:3 is not closed"},
		{"unclosed inner", "vs {\n rs {\n w 1\n}\n", "vs {rs {w 1}}", "t.conf:1:1: vs: block opened here at t.conf:1:4 is not closed"},
		{"stray close", "a 1\n}\nb 2\n", "a 1; b 2", "t.conf:2:1: '}' without a block to close"},
		{"lone open", "{\n a\n}\nb 1\n", "b 1", "t.conf:1:1: '{' without a keyword before it"},
		{"conditional match", "@lb1 router_id main\n@lb2 router_id other\n", "router_id main", ""},
		{"conditional negated", "@^lb1 x 1\n@^lb2 y 2\n", "y 2", ""},
		{"parameter", "$P=100\npriority $P\n", "priority 100", ""},
		{"braced parameter", "$NET=10.0\naddr ${NET}.0.1/24\n", "addr 10.0.0.1/24", ""},
		{"unbraced needs blank", "$N=1\nx $N.5\n", "x $N.5", ""},
		{"recursive at use time", "$A=10.2.${B}\n$B=0\nx ${A}.100\n$B=10\nx ${A}.100\n", "x 10.2.0.100; x 10.2.10.100", ""},
		{"conditional from parameter", "$IF_MAIN=@lb1\n$IF_MAIN priority 240\n", "priority 240", ""},
		{"undefined left", "x ${NOPE} $ALSO\n", "x ${NOPE} $ALSO", "t.conf:1:3: warning: parameter ${NOPE} is not defined; left as written"},
		{"self reference", "$A=x ${A}\ny $A\n", "", "t.conf:2:3: parameter $A expands without end (does it refer to itself?)"},
		{"multiline", "$I= \\\nvrrp_instance V${N} { \\\n priority 1 \\\n}\n$N=7\n$I\n", "vrrp_instance V7 {priority 1}", ""},
		{"multiline nested", "$RS= \\\nrs 10.0.${V}.${R} 80 { \\\n}\n$VS= \\\nvs 10.0.${V}.4 80 { \\\n$R=1 \\\n$RS \\\n$R=2 \\\n$RS \\\n}\n$V=9\n$VS\n",
			"vs 10.0.9.4 80 {rs 10.0.9.1 80 {}; rs 10.0.9.2 80 {}}", ""},
		{"continuation", "kw a \\\n  b\n", "kw a b", ""},
		{"builtins", "a ${_INSTANCE} ${_HASH}${_BANG} ${_RANDOM 1 9} ${_ENV HOME}\n", "a lb1 #! 9 /root", ""},
		{"pwd", "p ${_PWD}\n", "p .", ""},
		{"seq", "~SEQ(N, 0, 3) ip 10.0.${N}.1\n", "ip 10.0.0.1; ip 10.0.1.1; ip 10.0.2.1; ip 10.0.3.1", ""},
		{"seq end only", "~SEQ(N, 3) n $N\n", "n 1; n 2; n 3", ""},
		{"seq down", "~SEQ(N, 3, 1) n $N\n", "n 3; n 2; n 1", ""},
		{"seqx", "~SEQx(S, 0x90, 0x10, 0xc0) ip fe80::20:${S}:1\n", "ip fe80::20:90:1; ip fe80::20:a0:1; ip fe80::20:b0:1; ip fe80::20:c0:1", ""},
		{"seq nested", "~SEQ(A, 1, 2) ~SEQ(B, 1, 2) x ${A}.${B}\n", "x 1.1; x 1.2; x 2.1; x 2.2", ""},
		{"lst", "~LST(IP, 1, 2, 3) ip 10.0.0.$IP\n", "ip 10.0.0.1; ip 10.0.0.2; ip 10.0.0.3", ""},
		{"lst groups", "~LST({IP, IP1}, {10,1},{20,4}) 192.168.${IP}.${IP1}\n", "192.168.10.1; 192.168.20.4", ""},
		{"lst with seq", "~LST({A,B}, {1,2}) ~SEQ(C,1,2) x ${C}.${A}.${B}\n", "x 1.1.2; x 2.1.2", ""},
		{"seq bad", "~SEQ(N, a) x\n", "", "t.conf:1:1: ~SEQ: \"a\" is not an integer"},
		{"seq zero step", "~SEQ(N, 1, 0, 5) x\n", "", "t.conf:1:1: ~SEQ: step must not be 0"},
		{"lst mismatch", "~LST({A,B}, {1}) x\n", "", "t.conf:1:1: ~LST: {1} has 1 values for 2 names"},
		{"seq var scoped", "~SEQ(N, 1) a $N\nb $N\n", "a 1; b $N", ""},
		{"nbsp", "priority\u00a0\u00a090\n", "priority 90", "t.conf:1:9: non-breaking space (U+00A0) where a plain space belongs; keepalived reads it as part of the word\nt.conf:1:11: non-breaking space (U+00A0) where a plain space belongs; keepalived reads it as part of the word"},
		{"crlf", "a 1\r\nb {\r\n c 2\r\n}\r\n", "a 1; b {c 2}", ""},
		{"unresolved braces stay a word", "x a${NOPE}b\n", "x a${NOPE}b", "t.conf:1:4: warning: parameter ${NOPE} is not defined; left as written"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, diags := Parse("t.conf", []byte(tt.src), testOpts(nil))
			if got := render(f.Nodes); got != tt.want {
				t.Errorf("tree:\n got %q\nwant %q", got, tt.want)
			}
			if got := diagStrings(diags); got != tt.diags {
				t.Errorf("diagnostics:\n got %q\nwant %q", got, tt.diags)
			}
		})
	}
}

func TestPositions(t *testing.T) {
	src := "global_defs {\n    router_id  LVS_1\n}\n$V=10.0.0.9\nvs ${V} 80{\n}\n"
	f, diags := Parse("k.conf", []byte(src), testOpts(nil))
	if len(diags) != 0 {
		t.Fatalf("diags: %v", diags)
	}
	rid := f.Nodes[0].Block[0]
	if got := rid.Pos().String(); got != "k.conf:2:5" {
		t.Errorf("router_id at %s, want k.conf:2:5", got)
	}
	if got := rid.Args()[0].Pos.String(); got != "k.conf:2:16" {
		t.Errorf("LVS_1 at %s, want k.conf:2:16", got)
	}
	vs := f.Nodes[1]
	if got := vs.Args()[0].Pos.String(); got != "k.conf:5:4" {
		t.Errorf("substituted ${V} at %s, want the '$' at k.conf:5:4", got)
	}
	if got := vs.Args()[1].Pos.String(); got != "k.conf:5:9" {
		t.Errorf("80 at %s, want k.conf:5:9 (after the substitution, in source columns)", got)
	}
	if got := vs.Open.String(); got != "k.conf:5:11" {
		t.Errorf("'{' at %s, want k.conf:5:11", got)
	}
}

func TestInclude(t *testing.T) {
	fs := mapFS{
		"/etc/k/keepalived.conf":  "global_defs { router_id a }\ninclude conf.d/*.conf\ninclude /etc/k/{vs,rs}/x.conf\nincludea missing/*.conf\ninclude none/*.conf\n",
		"/etc/k/conf.d/10-a.conf": "a 1\ninclude ../sub/b.conf\n",
		"/etc/k/conf.d/20-b.conf": "b ${_PWD}\n",
		"/etc/k/sub/b.conf":       "nested 1\n",
		"/etc/k/vs/x.conf":        "vs 1\n",
		"/etc/k/rs/x.conf":        "rs 1\n",
	}
	f, diags := ParseFile("/etc/k/keepalived.conf", testOpts(fs))
	want := "global_defs {router_id a}; a 1; nested 1; b /etc/k/conf.d; vs 1; rs 1"
	if got := render(f.Nodes); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	wantDiags := "/etc/k/keepalived.conf:4:10: includea: \"missing/*.conf\" matches no file\n" +
		"/etc/k/keepalived.conf:5:9: include: warning: \"none/*.conf\" matches no file"
	if got := diagStrings(diags); got != wantDiags {
		t.Errorf("diags:\n got %q\nwant %q", got, wantDiags)
	}
	if len(f.Files) != 6 {
		t.Errorf("files read: %v", f.Files)
	}
}

func TestIncludeErrors(t *testing.T) {
	tests := []struct {
		name string
		fs   mapFS
		want string
	}{
		{"cycle", mapFS{"/a.conf": "x 1\ninclude b.conf\n", "/b.conf": "include a.conf\n"},
			"/b.conf:1:9: include: include cycle: /a.conf includes itself (through /a.conf -> /b.conf)"},
		{"self", mapFS{"/a.conf": "include /a.conf\n"},
			"/a.conf:1:9: include: include cycle: /a.conf includes itself (through /a.conf)"},
		{"missing literal", mapFS{"/a.conf": "include nope.conf\n"},
			"/a.conf:1:9: include: cannot read /nope.conf: no such file or directory"},
		{"arguments", mapFS{"/a.conf": "include a b\n"},
			"/a.conf:1:1: include: takes exactly one file name or pattern"},
		{"main missing", mapFS{}, "/a.conf:0:0: cannot read configuration: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := ParseFile("/a.conf", testOpts(tt.fs))
			if got := diagStrings(diags); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestIncludeDepth(t *testing.T) {
	fs := mapFS{}
	for i := 0; i < 40; i++ {
		fs[fmt.Sprintf("/f%d.conf", i)] = fmt.Sprintf("include f%d.conf\n", i+1)
	}
	fs["/f40.conf"] = "end 1\n"
	_, diags := ParseFile("/f0.conf", testOpts(fs))
	if !strings.Contains(diagStrings(diags), "includes nested deeper than 32") {
		t.Errorf("want a depth error, got %v", diags)
	}
}

func TestLimits(t *testing.T) {
	opt := testOpts(nil)
	opt.MaxLines = 100
	_, diags := Parse("t.conf", []byte("~SEQ(A, 50) ~SEQ(B, 50) x $A $B\n"), opt)
	if !strings.Contains(diagStrings(diags), "expands past 100 lines") {
		t.Errorf("want the line limit, got %v", diags)
	}
	opt = testOpts(nil)
	opt.MaxBlockDepth = 3
	_, diags = Parse("t.conf", []byte("a { b { c { d { e 1 } } } }\nf 1\n"), opt)
	if !strings.Contains(diagStrings(diags), "blocks nested deeper than 3") {
		t.Errorf("want the depth limit, got %v", diags)
	}
}

func TestExpandBraces(t *testing.T) {
	got, err := expandBraces("{foo/{,cat,dog},bar}", 100)
	if err != nil {
		t.Fatal(err)
	}
	want := "foo/ foo/cat foo/dog bar"
	if strings.Join(got, " ") != want {
		t.Errorf("got %q want %q", got, want)
	}
	if _, err := expandBraces("{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}", 256); err == nil {
		t.Error("want an error past the limit")
	}
	if got, _ := expandBraces("x{y}z", 10); strings.Join(got, " ") != "x{y}z" {
		t.Errorf("a group without a comma is literal, got %q", got)
	}
}

func TestDiagnosticString(t *testing.T) {
	d := Diagnostic{Pos: Pos{File: "k.conf", Line: 3, Col: 5}, Keyword: "priority", Message: "300 is out of range 1-255"}
	if got := d.String(); got != "k.conf:3:5: priority: 300 is out of range 1-255" {
		t.Errorf("got %q", got)
	}
	d.Severity = Warning
	if got := d.String(); got != "k.conf:3:5: priority: warning: 300 is out of range 1-255" {
		t.Errorf("got %q", got)
	}
}
