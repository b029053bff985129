package conf

import (
	"testing"
)

// FuzzParse feeds arbitrary text to the whole pipeline, with a main file and
// an includable second file. Whatever comes in, parsing must end, stay within
// its limits and not panic. `go test` runs the seeds in testdata/fuzz.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"global_defs {\n router_id x\n}\n",
		"vrrp_instance VI_1 {\n state MASTER\n virtual_ipaddress {\n 10.0.0.1/24 dev eth0\n }\n}\n",
		"virtual_server 10.0.0.1 80 {\n lb_algo rr\n real_server 10.0.0.2 80 { weight 1 TCP_CHECK{ connect_timeout 3 } }\n}\n",
		"$A=${A}${A}\nx $A\n",
		"$M= \\\n a ${N} { \\\n}\n~SEQ(N, 1, 3) $M\n",
		"~LST({A,B}, {1,2},{3,4}) ~SEQx(C, 0x10) x ${A}${B}${C}\n",
		"include other.conf\ninclude {a,b}*\n@lb1 x\n@^lb1 y\n",
		"x \"a\\x41\\101\\cA\n'q\n}}}{{{",
		"${_RANDOM 5 1} ${_ENV} ${_RANDOM a}",
	}
	for _, s := range seeds {
		f.Add(s, "include main.conf\n$Z=1\n")
	}
	f.Fuzz(func(t *testing.T, main, other string) {
		fs := mapFS{"/main.conf": main, "/other.conf": other, "/a1": other, "/b2": main}
		opt := testOpts(fs)
		opt.MaxLines = 2000
		opt.MaxBytes = 1 << 20
		opt.MaxIncludeDepth = 8
		opt.MaxBlockDepth = 64
		file, _ := ParseFile("/main.conf", opt)
		var walk func([]*Node, int)
		walk = func(ns []*Node, depth int) {
			if depth > opt.MaxBlockDepth+1 {
				t.Fatalf("tree deeper than the block limit")
			}
			for _, n := range ns {
				if len(n.Words) == 0 {
					t.Fatalf("node without words")
				}
				walk(n.Block, depth+1)
			}
		}
		walk(file.Nodes, 0)
	})
}
