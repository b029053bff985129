// Package http is HTTP_GET and SSL_GET: each url is fetched in turn on a new
// connection, with the request keepalived sends, and must answer with an
// accepted status code, and the body's MD5 digest and regular expression
// when the url has them.
package http

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/keepvs/keepvs/internal/check"
)

// URL is one url block.
type URL struct {
	Path        string
	Virtualhost string      // overrides the checker's
	Digest      string      // lowercase hex MD5 of the body; "" to skip
	StatusCodes []CodeRange // accepted codes; nil means 200-299
	Regex       *regexp.Regexp
	// RegexNoMatch: the url fails when Regex matches.
	RegexNoMatch bool
	// The regex must match starting in [RegexMinOffset, RegexMaxOffset]
	// of the body; RegexMaxOffset 0 means no limit.
	RegexMinOffset int
	RegexMaxOffset int
}

// CodeRange is an inclusive range of status codes.
type CodeRange struct{ From, To int }

// Checker is one HTTP_GET or SSL_GET checker.
type Checker struct {
	Target      check.Target
	TLS         bool   // SSL_GET
	SNI         bool   // enable_sni: send the virtualhost as server name
	Protocol    string // "1.0" (default), "1.0C" or "1.1"
	Virtualhost string
	URLs        []URL
	// URLTimeout bounds each url's fetch (connect_timeout); 0 leaves only
	// the context's deadline.
	URLTimeout time.Duration
	// RegexWindow is how much of the body a regex sees when the url has no
	// regex_max_offset; 0 means 1 MiB.
	RegexWindow int
	// ClientCert, when set, is presented to SSL_GET's real servers: the
	// certificate and key of the configuration's SSL block.
	ClientCert *tls.Certificate
}

const maxHeader = 64 << 10

// Check fetches the urls in order and fails at the first that fails.
func (c *Checker) Check(ctx context.Context) check.Result {
	start := time.Now()
	for i := range c.URLs {
		if reason := c.fetch(ctx, &c.URLs[i]); reason != "" {
			return check.Result{Reason: reason, Duration: time.Since(start)}
		}
	}
	return check.Result{OK: true, Duration: time.Since(start)}
}

// Request is the GET keepalived sends for path: HTTP/1.0, or HTTP/1.1 for
// "1.1"; "Connection: close" for "1.0C" and "1.1"; Host is the
// virtualhost, else the address and port.
func (c *Checker) Request(u *URL) string {
	minor, conn := 0, ""
	switch c.Protocol {
	case "1.1":
		minor, conn = 1, "Connection: close\r\n"
	case "1.0C":
		conn = "Connection: close\r\n"
	}
	return fmt.Sprintf("GET %s HTTP/1.%d\r\nUser-Agent: KeepAliveClient\r\n%sHost: %s\r\n\r\n", u.Path, minor, conn, c.host(u))
}

func (c *Checker) vhost(u *URL) string {
	if u.Virtualhost != "" {
		return u.Virtualhost
	}
	return c.Virtualhost
}

func (c *Checker) host(u *URL) string {
	if v := c.vhost(u); v != "" {
		return v
	}
	return c.Target.Addr.String() // "[v6]:port" for IPv6, as keepalived writes it
}

func (c *Checker) fetch(ctx context.Context, u *URL) string {
	if c.URLTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.URLTimeout)
		defer cancel()
	}
	where := c.Target.Addr.String() + u.Path
	conn, err := c.Target.Dial(ctx, "tcp")
	if err != nil {
		return "connect " + c.Target.Addr.String() + ": " + check.ErrText(err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var rw net.Conn = conn
	if c.TLS {
		cfg := &tls.Config{InsecureSkipVerify: true} // keepalived does not verify the real server
		if c.SNI {
			cfg.ServerName = c.vhost(u)
		}
		if c.ClientCert != nil {
			cfg.Certificates = []tls.Certificate{*c.ClientCert}
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return "TLS handshake with " + c.Target.Addr.String() + ": " + check.ErrText(err)
		}
		rw = tc
	}
	if _, err := io.WriteString(rw, c.Request(u)); err != nil {
		return "send GET " + where + ": " + check.ErrText(err)
	}
	return c.judge(bufio.NewReader(rw), u, where)
}

// judge reads the response as keepalived does, raw: the status line, the
// headers, then the body up to Content-Length or the end of the stream.
func (c *Checker) judge(br *bufio.Reader, u *URL, where string) string {
	var head []byte
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) && !bytes.HasSuffix(head, []byte("\n\n")) {
		line, err := br.ReadSlice('\n')
		head = append(head, line...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if len(head) == 0 {
				return "no data received from " + where + ": " + check.ErrText(err)
			}
			return "read HTTP header from " + where + ": " + check.ErrText(err)
		}
		if len(head) > maxHeader {
			return fmt.Sprintf("HTTP header from %s longer than %d bytes", where, maxHeader)
		}
	}
	code, clen := parseHead(head)
	codes := u.StatusCodes
	if len(codes) == 0 {
		codes = []CodeRange{{200, 299}}
	}
	if !inRanges(code, codes) {
		if code < 0 {
			return "no HTTP status line from " + where
		}
		return fmt.Sprintf("HTTP status %d not in %s (%s)", code, formatRanges(codes), where)
	}
	if u.Digest == "" && u.Regex == nil {
		return ""
	}

	var body io.Reader = br
	if clen >= 0 {
		body = io.LimitReader(br, clen)
	}
	sum := md5.New()
	window := c.RegexWindow
	if window <= 0 {
		window = 1 << 20
	}
	if u.RegexMaxOffset > 0 {
		window = u.RegexMaxOffset + 4096 // a match must start by the max offset
	}
	var keep bytes.Buffer
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			sum.Write(buf[:n])
			if u.Regex != nil && keep.Len() < window {
				keep.Write(buf[:min(n, window-keep.Len())])
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "read HTTP body from " + where + ": " + check.ErrText(err)
		}
	}
	if u.Digest != "" {
		if got := hex.EncodeToString(sum.Sum(nil)); got != strings.ToLower(u.Digest) {
			return fmt.Sprintf("digest mismatch for %s: got %s, want %s", where, got, u.Digest)
		}
	}
	if u.Regex != nil {
		matched := matchAt(u, keep.Bytes())
		switch {
		case !matched && !u.RegexNoMatch:
			return fmt.Sprintf("regex %q did not match %s", u.Regex, where)
		case matched && u.RegexNoMatch:
			return fmt.Sprintf("regex %q matched %s (regex_no_match)", u.Regex, where)
		}
	}
	return ""
}

// matchAt reports whether the regex matches starting within the url's
// offsets.
func matchAt(u *URL, body []byte) bool {
	from := min(u.RegexMinOffset, len(body))
	loc := u.Regex.FindIndex(body[from:])
	if loc == nil {
		return false
	}
	return u.RegexMaxOffset == 0 || from+loc[0] <= u.RegexMaxOffset
}

// parseHead returns the status code (-1 without a status line) and the
// Content-Length (-1 without one).
func parseHead(head []byte) (int, int64) {
	code, clen := -1, int64(-1)
	lines := strings.Split(string(head), "\n")
	if f := strings.Fields(lines[0]); len(f) >= 2 && strings.HasPrefix(f[0], "HTTP/") {
		if n, err := strconv.Atoi(f[1]); err == nil {
			code = n
		}
	}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
				clen = n
			}
		}
	}
	return code, clen
}

func inRanges(code int, rs []CodeRange) bool {
	for _, r := range rs {
		if code >= r.From && code <= r.To {
			return true
		}
	}
	return false
}

func formatRanges(rs []CodeRange) string {
	var parts []string
	for _, r := range rs {
		if r.From == r.To {
			parts = append(parts, strconv.Itoa(r.From))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r.From, r.To))
		}
	}
	return strings.Join(parts, ",")
}

// CompileRegex compiles a url's regex with its regex_options: caseless,
// multiline, dotall and ungreedy map to Go's flags; the PCRE-only options
// have no Go counterpart and are ignored.
func CompileRegex(expr string, options []string) (*regexp.Regexp, error) {
	flags := ""
	for _, o := range options {
		switch o {
		case "caseless":
			flags += "i"
		case "multiline":
			flags += "m"
		case "dotall":
			flags += "s"
		case "ungreedy":
			flags += "U"
		}
	}
	if flags != "" {
		expr = "(?" + flags + ")" + expr
	}
	return regexp.Compile(expr)
}
