package model

import (
	"encoding/hex"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/keepvs/keepvs/internal/conf"
)

// CheckTypes are the health checkers, as their blocks are named.
var CheckTypes = []string{"TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", "SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK", "FILE_CHECK", "BFD_CHECK"}

// Check is one health checker of a real server. Its timing is resolved:
// what the checker block says, else the real server's, else the virtual
// server's, else keepalived's default for the checker type.
type Check struct {
	Pos  conf.Pos `json:"-"`
	Type string   `json:"type"`

	ConnectIP   netip.Addr `json:"connect_ip,omitzero"`
	ConnectPort uint16     `json:"connect_port,omitempty"`
	BindTo      netip.Addr `json:"bindto,omitzero"`
	BindIf      string     `json:"bind_if,omitempty"`
	BindPort    uint16     `json:"bind_port,omitempty"`
	FWMark      uint32     `json:"fwmark,omitempty"`

	ConnectTimeout   Duration `json:"connect_timeout"`
	Retry            int      `json:"retry"`
	DelayBeforeRetry Duration `json:"delay_before_retry"`
	Warmup           Duration `json:"warmup"`
	DelayLoop        Duration `json:"delay_loop"`
	Alpha            bool     `json:"alpha,omitempty"`
	LogAllFailures   bool     `json:"log_all_failures,omitempty"`

	HTTP *HTTPCheck `json:"http,omitempty"` // HTTP_GET and SSL_GET
	SMTP *SMTPCheck `json:"smtp,omitempty"`
	DNS  *DNSCheck  `json:"dns,omitempty"`
	Misc *MiscCheck `json:"misc,omitempty"`
	UDP  *UDPCheck  `json:"udp,omitempty"`
	File *FileCheck `json:"file,omitempty"`

	timing Timing // as written in the block, before resolution
}

// HTTPCheck is what HTTP_GET and SSL_GET add.
type HTTPCheck struct {
	Protocol     string `json:"http_protocol"` // 1.0, 1.0C, 1.1
	FastRecovery bool   `json:"fast_recovery,omitempty"`
	EnableSNI    bool   `json:"enable_sni,omitempty"`
	Virtualhost  string `json:"virtualhost,omitempty"`
	URLs         []*URL `json:"urls"`
}

// URL is one url block of an HTTP check.
type URL struct {
	Pos            conf.Pos    `json:"-"`
	Path           string      `json:"path"`
	Digest         string      `json:"digest,omitempty"` // MD5 of the body, lowercase hex
	StatusCodes    []CodeRange `json:"status_code"`
	Virtualhost    string      `json:"virtualhost,omitempty"`
	Regex          string      `json:"regex,omitempty"`
	RegexNoMatch   bool        `json:"regex_no_match,omitempty"`
	RegexOptions   []string    `json:"regex_options,omitempty"`
	RegexMinOffset int         `json:"regex_min_offset,omitempty"`
	RegexMaxOffset int         `json:"regex_max_offset,omitempty"`
}

// CodeRange is an inclusive range of HTTP status codes.
type CodeRange struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// SMTPCheck is what SMTP_CHECK adds.
type SMTPCheck struct {
	HeloName string `json:"helo_name,omitempty"`
}

// DNSCheck is what DNS_CHECK adds.
type DNSCheck struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// MiscCheck is what MISC_CHECK adds.
type MiscCheck struct {
	Path    Script   `json:"misc_path"`
	Timeout Duration `json:"misc_timeout"`
	Dynamic bool     `json:"misc_dynamic,omitempty"`
}

// UDPCheck is what UDP_CHECK adds.
type UDPCheck struct {
	Payload        []byte `json:"payload,omitempty"`
	RequireReply   bool   `json:"require_reply,omitempty"`
	Reply          []byte `json:"reply,omitempty"`      // bytes the reply must start with
	ReplyMask      []byte `json:"reply_mask,omitempty"` // 0 bits are "don't care" (X in the hex string)
	MinReplyLength int    `json:"min_reply_length"`
	MaxReplyLength int    `json:"max_reply_length"`
}

// FileCheck is what FILE_CHECK adds.
type FileCheck struct {
	TrackFile string `json:"track_file"`
	Dynamic   bool   `json:"dynamic,omitempty"`
	Weight    int    `json:"weight"`
	Reverse   bool   `json:"reverse,omitempty"`
}

// checkKeywords adds the checker blocks to the real_server table.
func checkKeywords(t table[RealServer]) {
	for _, typ := range CheckTypes {
		t[typ] = kw[RealServer]{block: true, fn: func(b *builder, rs *RealServer, n *conf.Node) {
			for _, c := range b.check(n) {
				rs.Checks = append(rs.Checks, c)
			}
		}}
	}
}

func checkBlocks(m map[string][]string) {
	for _, typ := range CheckTypes {
		m[typ] = keys(checkTable(typ))
	}
	m["url"] = keys(urlTable())
}

// check reads one checker block. An old SMTP_CHECK with host { } blocks
// yields one checker per host.
func (b *builder) check(n *conf.Node) []*Check {
	if !b.flag(n) {
		return nil
	}
	c := b.checks.new() // zero, as &Check{} would be
	c.Pos, c.Type = n.Pos(), n.Keyword()
	switch c.Type {
	case "HTTP_GET", "SSL_GET":
		c.HTTP = &HTTPCheck{Protocol: "1.0"}
	case "SMTP_CHECK":
		c.SMTP = &SMTPCheck{}
	case "DNS_CHECK":
		c.DNS = &DNSCheck{Type: "SOA", Name: "."}
	case "MISC_CHECK":
		c.Misc = &MiscCheck{}
	case "UDP_CHECK":
		c.UDP = &UDPCheck{MaxReplyLength: 255}
	case "FILE_CHECK":
		c.File = &FileCheck{}
	case "BFD_CHECK":
		b.errorf(n.Pos(), c.Type, "not supported by keepvs (no BFD); the real server could not be checked as written")
		return nil
	}
	var hosts []*conf.Node
	if c.Type == "SMTP_CHECK" {
		var rest []*conf.Node
		for _, s := range n.Block {
			if s.Keyword() == "host" {
				hosts = append(hosts, s)
			} else {
				rest = append(rest, s)
			}
		}
		walk(b, c, b.checkTable(c.Type), c.Type, rest)
	} else {
		walk(b, c, b.checkTable(c.Type), c.Type, n.Block)
	}
	switch {
	case c.Type == "MISC_CHECK" && len(c.Misc.Path.Argv) == 0:
		b.errorf(n.Pos(), c.Type, "needs misc_path")
		return nil
	case c.Type == "FILE_CHECK" && c.File.TrackFile == "":
		b.errorf(n.Pos(), c.Type, "needs track_file")
		return nil
	case c.HTTP != nil && len(c.HTTP.URLs) == 0:
		b.errorf(n.Pos(), c.Type, "needs at least one url { path ... } block")
		return nil
	}
	if len(hosts) == 0 {
		return []*Check{c}
	}
	out := make([]*Check, 0, len(hosts))
	for _, h := range hosts {
		b.warnf(h.Pos(), "host", "deprecated: write one SMTP_CHECK per host, with connect_ip in it")
		if !h.HasBlock {
			b.errorf(h.Pos(), "host", "needs a { ... } block")
			continue
		}
		hc := *c
		hc.SMTP = &SMTPCheck{HeloName: c.SMTP.HeloName}
		walk(b, &hc, cached(b, "host", connTable), "host", h.Block)
		out = append(out, &hc)
	}
	return out
}

// checkTable returns the table of checker type typ, built once per build.
func (b *builder) checkTable(typ string) table[Check] {
	t, ok := b.checkTables[typ]
	if !ok {
		t = checkTable(typ)
		b.checkTables[typ] = t
	}
	return t
}

// connTable holds the connection options every network checker has.
func connTable() table[Check] {
	return table[Check]{
		"connect_ip": {fn: func(b *builder, c *Check, n *conf.Node) {
			if w, ok := b.arg(n); ok {
				if a, ok := b.addr(n, w); ok {
					c.ConnectIP = a
				}
			}
		}},
		"connect_port": {fn: func(b *builder, c *Check, n *conf.Node) {
			if w, ok := b.arg(n); ok {
				if p, ok := b.port(n, w, 1); ok {
					c.ConnectPort = p
				}
			}
		}},
		"bindto": {fn: func(b *builder, c *Check, n *conf.Node) {
			if w, ok := b.arg(n); ok {
				if a, ok := b.addr(n, w); ok {
					c.BindTo = a
				}
			}
		}},
		"bind_if": {fn: func(b *builder, c *Check, n *conf.Node) {
			if s, ok := b.str(n); ok {
				c.BindIf = s
			}
		}},
		"bind_port": {fn: func(b *builder, c *Check, n *conf.Node) {
			if w, ok := b.arg(n); ok {
				if p, ok := b.port(n, w, 1); ok {
					c.BindPort = p
				}
			}
		}},
		"fwmark": {fn: func(b *builder, c *Check, n *conf.Node) {
			if v, ok := b.intArg(n, 1, 1<<32-1); ok {
				c.FWMark = uint32(v)
			}
		}},
	}
}

func checkTable(typ string) table[Check] {
	t := table[Check]{}
	if typ != "FILE_CHECK" {
		if typ != "MISC_CHECK" {
			t = connTable()
		}
		timingKeywords(t, func(c *Check) *Timing { return &c.timing })
		t["alpha"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
			if v, ok := b.boolArg(n); ok {
				c.timing.Alpha = &v
			}
		}}
		t["log_all_failures"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
			if v, ok := b.boolArg(n); ok {
				c.LogAllFailures = v
			}
		}}
	}
	switch typ {
	case "HTTP_GET", "SSL_GET":
		t["http_protocol"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
			if w, ok := b.arg(n); ok {
				if p, ok := b.choice(n, w, "1.0", "1.0C", "1.1"); ok {
					c.HTTP.Protocol = p
				}
			}
		}}
		t["fast_recovery"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
			if v, ok := b.boolArg(n); ok {
				c.HTTP.FastRecovery = v
			}
		}}
		t["virtualhost"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
			if s, ok := b.str(n); ok {
				c.HTTP.Virtualhost = s
			}
		}}
		t["url"] = kw[Check]{block: true, fn: func(b *builder, c *Check, n *conf.Node) {
			if !b.flag(n) {
				return
			}
			u := &URL{Pos: n.Pos()}
			walk(b, u, cached(b, "url", urlTable), "url", n.Block)
			if u.Path == "" {
				b.errorf(n.Pos(), "url", "needs a path")
				return
			}
			if len(u.StatusCodes) == 0 {
				u.StatusCodes = []CodeRange{{200, 299}}
			}
			c.HTTP.URLs = append(c.HTTP.URLs, u)
		}}
		if typ == "SSL_GET" {
			t["enable_sni"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
				if v, ok := b.boolArg(n); ok {
					c.HTTP.EnableSNI = v
				}
			}}
		}
	case "SMTP_CHECK":
		t["helo_name"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
			if s, ok := b.str(n); ok {
				c.SMTP.HeloName = s
			}
		}}
	case "DNS_CHECK":
		t["type"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
			if w, ok := b.arg(n); ok {
				if s, ok := b.choice(n, conf.Word{Text: strings.ToUpper(w.Text), Pos: w.Pos}, "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"); ok {
					c.DNS.Type = s
				}
			}
		}}
		t["name"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
			if s, ok := b.str(n); ok {
				c.DNS.Name = s
			}
		}}
	case "MISC_CHECK":
		t["misc_path"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
			if s, ok := b.script(n, false); ok {
				c.Misc.Path.Cmd, c.Misc.Path.Argv = s.Cmd, s.Argv
			}
		}}
		t["misc_timeout"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
			if v, ok := b.intArg(n, 1, 1<<31-1); ok {
				c.Misc.Timeout = Duration(time.Duration(v) * time.Second)
			}
		}}
		t["misc_dynamic"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) { c.Misc.Dynamic = b.flag(n) }}
		t["user"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
			if b.nargs(n, 1, 2) {
				c.Misc.Path.User = n.Args()[0].Text
				if len(n.Args()) == 2 {
					c.Misc.Path.Group = n.Args()[1].Text
				}
			}
		}}
	case "UDP_CHECK":
		t["payload"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
			if data, _, ok := b.hexString(n, false); ok {
				c.UDP.Payload = data
			}
		}}
		t["require_reply"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
			c.UDP.RequireReply = true
			if len(n.Args()) > 0 {
				if data, mask, ok := b.hexString(n, true); ok {
					c.UDP.Reply, c.UDP.ReplyMask = data, mask
				}
			}
		}}
		t["min_reply_length"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
			if v, ok := b.intArg(n, 0, 65535); ok {
				c.UDP.MinReplyLength = int(v)
			}
		}}
		t["max_reply_length"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
			if v, ok := b.intArg(n, 0, 65535); ok {
				c.UDP.MaxReplyLength = int(v)
			}
		}}
	case "FILE_CHECK":
		t["track_file"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
			if s, ok := b.str(n); ok {
				c.File.TrackFile = s
			}
		}}
		t["dynamic"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) { c.File.Dynamic = b.flag(n) }}
		t["weight"] = kw[Check]{fn: func(b *builder, c *Check, n *conf.Node) {
			if !b.nargs(n, 1, 2) {
				return
			}
			if v, ok := b.integer(n, n.Args()[0], -2147483647, 2147483647); ok {
				c.File.Weight = int(v)
			}
			if len(n.Args()) == 2 {
				if _, ok := b.choice(n, n.Args()[1], "reverse"); ok {
					c.File.Reverse = true
				}
			}
		}}
	}
	return t
}

func urlTable() table[URL] {
	return table[URL]{
		"path": {fn: func(b *builder, u *URL, n *conf.Node) {
			if s, ok := b.str(n); ok {
				u.Path = s
			}
		}},
		"digest": {fn: func(b *builder, u *URL, n *conf.Node) {
			if w, ok := b.arg(n); ok {
				if d, err := hex.DecodeString(w.Text); err != nil || len(d) != 16 {
					b.errorf(w.Pos, n.Keyword(), "%q is not an MD5 digest (32 hex digits, as genhash prints)", w.Text)
					return
				}
				u.Digest = strings.ToLower(w.Text)
			}
		}},
		"status_code": {fn: func(b *builder, u *URL, n *conf.Node) {
			if !b.nargs(n, 1, -1) {
				return
			}
			u.StatusCodes = u.StatusCodes[:0]
			for _, w := range n.Args() {
				from, to, isRange := strings.Cut(w.Text, "-")
				if !isRange {
					to = from
				}
				f, err1 := strconv.Atoi(from)
				t, err2 := strconv.Atoi(to)
				if err1 != nil || err2 != nil || f < 100 || t > 999 || f > t {
					b.errorf(w.Pos, n.Keyword(), "%q is not a status code or range of codes (100-999, e.g. 200-299)", w.Text)
					continue
				}
				u.StatusCodes = append(u.StatusCodes, CodeRange{f, t})
			}
		}},
		"virtualhost": {fn: func(b *builder, u *URL, n *conf.Node) {
			if s, ok := b.str(n); ok {
				u.Virtualhost = s
			}
		}},
		"regex": {fn: func(b *builder, u *URL, n *conf.Node) {
			if w, ok := b.arg(n); ok {
				if _, err := regexp.Compile(w.Text); err != nil {
					b.errorf(w.Pos, n.Keyword(), "%q is not a regular expression keepvs can run: %v", w.Text, err)
					return
				}
				u.Regex = w.Text
			}
		}},
		"regex_no_match": {fn: func(b *builder, u *URL, n *conf.Node) { u.RegexNoMatch = b.flag(n) }},
		"regex_options": {fn: func(b *builder, u *URL, n *conf.Node) {
			if !b.nargs(n, 1, -1) {
				return
			}
			for _, w := range n.Args() {
				if o, ok := b.choice(n, w, "caseless", "multiline", "dotall", "ungreedy",
					"allow_empty_class", "alt_bsux", "auto_callout", "dollar_endonly", "dupnames", "extended", "firstline",
					"match_unset_backref", "never_ucp", "never_utf", "no_auto_capture", "no_auto_possess",
					"no_dotstar_anchor", "no_start_optimize", "ucp", "utf", "never_backslash_c", "alt_circumflex",
					"alt_verbnames", "use_offset_limit"); ok {
					u.RegexOptions = append(u.RegexOptions, o)
				}
			}
		}},
		"regex_stack": {fn: func(b *builder, u *URL, n *conf.Node) {
			if b.nargs(n, 2, 2) {
				b.warnf(n.Pos(), n.Keyword(), "accepted; keepvs's regular expressions need no JIT stack; ignored")
			}
		}},
		"regex_min_offset": {fn: func(b *builder, u *URL, n *conf.Node) {
			if v, ok := b.intArg(n, 0, 1<<31-1); ok {
				u.RegexMinOffset = int(v)
			}
		}},
		"regex_max_offset": {fn: func(b *builder, u *URL, n *conf.Node) {
			if v, ok := b.intArg(n, 0, 1<<31-1); ok {
				u.RegexMaxOffset = int(v)
			}
		}},
	}
}

// hexString reads keepalived's free-form HEX_STR from the arguments of n:
// blank-separated groups of hex digits read in pairs from the left, an odd
// last digit making a byte of its own ("Ab12f 3" is AB 12 0F 03). With wildcards,
// X or x means "any value" for those four bits (returned as 0 bits in the
// mask).
func (b *builder) hexString(n *conf.Node, wildcards bool) ([]byte, []byte, bool) {
	if !b.nargs(n, 1, -1) {
		return nil, nil, false
	}
	var data, mask []byte
	for _, w := range n.Args() {
		digits := w.Text
		for i := 0; i < len(digits); i += 2 {
			var v, m byte
			for _, c := range []byte(digits[i:min(i+2, len(digits))]) {
				v, m = v<<4, m<<4
				switch {
				case isHexDigit(c):
					v |= byte(hexDigit(c))
					m |= 0xf
				case wildcards && (c == 'x' || c == 'X'):
				default:
					b.errorf(w.Pos, n.Keyword(), "%q is not a hex string", w.Text)
					return nil, nil, false
				}
			}
			data, mask = append(data, v), append(mask, m)
		}
	}
	return data, mask, true
}

func isHexDigit(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}
