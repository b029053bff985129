// Package build turns the checkers of a model.RealServer into the probes
// and timing a check.Runner runs.
package build

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/keepvs/keepvs/internal/check"
	"github.com/keepvs/keepvs/internal/check/dns"
	"github.com/keepvs/keepvs/internal/check/file"
	"github.com/keepvs/keepvs/internal/check/http"
	"github.com/keepvs/keepvs/internal/check/misc"
	"github.com/keepvs/keepvs/internal/check/ping"
	"github.com/keepvs/keepvs/internal/check/smtp"
	"github.com/keepvs/keepvs/internal/check/tcp"
	"github.com/keepvs/keepvs/internal/check/udp"
	"github.com/keepvs/keepvs/internal/model"
)

// FilePoll is how often a FILE_CHECK reads its file (keepalived is told by
// inotify at once).
const FilePoll = time.Second

// ID names a real server of a virtual server in events.
func ID(vs *model.VirtualServer, rs *model.RealServer) string {
	return vs.Protocol.String() + " " + vs.Name() + " " + rs.Name()
}

// Options are the daemon's choices of how checkers probe; the zero value
// is keepalived's way.
type Options struct {
	// SynProber, when set, makes TCP_CHECKs half-open probes on it
	// (keepvs --tcp-check=syn).
	SynProber *tcp.SynProber
	// Logger notes TCP_CHECKs that keep the connect probe all the same;
	// nil discards.
	Logger *slog.Logger
	// ClientCert is what SSL_GET presents to real servers: the SSL
	// block's certificate and key (LoadSSL); nil presents none.
	ClientCert *tls.Certificate
}

// RealServer builds the checkers of rs, a real server of vs; files are the
// configuration's track_file blocks, which FILE_CHECK names.
func RealServer(vs *model.VirtualServer, rs *model.RealServer, files []*model.TrackFile) (check.RealServer, error) {
	return Options{}.RealServer(vs, rs, files)
}

// RealServer is the package's RealServer, probing as o says.
func (o Options) RealServer(vs *model.VirtualServer, rs *model.RealServer, files []*model.TrackFile) (check.RealServer, error) {
	out := check.RealServer{ID: ID(vs, rs), Weight: rs.Weight}
	for _, c := range rs.Checks {
		sp, err := o.Spec(c, rs, files)
		if err != nil {
			return check.RealServer{}, fmt.Errorf("%s: %s: %w", out.ID, c.Type, err)
		}
		out.Checks = append(out.Checks, sp)
	}
	return out, nil
}

// Spec builds one checker.
func Spec(c *model.Check, rs *model.RealServer, files []*model.TrackFile) (check.Spec, error) {
	return Options{}.Spec(c, rs, files)
}

// Spec is the package's Spec, probing as o says.
func (o Options) Spec(c *model.Check, rs *model.RealServer, files []*model.TrackFile) (check.Spec, error) {
	sp := check.Spec{
		Timeout:          c.ConnectTimeout.D(),
		DelayLoop:        c.DelayLoop.D(),
		Retry:            c.Retry,
		DelayBeforeRetry: c.DelayBeforeRetry.D(),
		Warmup:           c.Warmup.D(),
		Alpha:            c.Alpha,
	}
	tg := target(c, rs, 0)
	sp.Name = c.Type + " " + tg.Addr.String()
	switch c.Type {
	case "TCP_CHECK":
		sp.Checker = o.tcpChecker(tg)
	case "HTTP_GET", "SSL_GET":
		hc := &http.Checker{
			Target: tg, TLS: c.Type == "SSL_GET", SNI: c.HTTP.EnableSNI, ClientCert: o.ClientCert,
			Protocol: c.HTTP.Protocol, Virtualhost: c.HTTP.Virtualhost,
			URLTimeout: c.ConnectTimeout.D(),
		}
		for _, u := range c.HTTP.URLs {
			hu := http.URL{
				Path: u.Path, Virtualhost: u.Virtualhost, Digest: u.Digest,
				RegexNoMatch: u.RegexNoMatch, RegexMinOffset: u.RegexMinOffset, RegexMaxOffset: u.RegexMaxOffset,
			}
			for _, r := range u.StatusCodes {
				hu.StatusCodes = append(hu.StatusCodes, http.CodeRange{From: r.From, To: r.To})
			}
			if u.Regex != "" {
				re, err := http.CompileRegex(u.Regex, u.RegexOptions)
				if err != nil {
					return sp, err
				}
				hu.Regex = re
			}
			hc.URLs = append(hc.URLs, hu)
		}
		// Each url has connect_timeout, as keepalived fetches them one by one.
		sp.Timeout *= time.Duration(max(len(hc.URLs), 1))
		sp.Checker = hc
	case "SMTP_CHECK":
		tg = target(c, rs, 25)
		sp.Name = c.Type + " " + tg.Addr.String()
		sp.Checker = &smtp.Checker{Target: tg, HeloName: c.SMTP.HeloName}
	case "DNS_CHECK":
		tg = target(c, rs, 53)
		sp.Name = c.Type + " " + tg.Addr.String()
		sp.Checker = &dns.Checker{Target: tg, Type: c.DNS.Type, Name: c.DNS.Name}
	case "UDP_CHECK":
		sp.Checker = &udp.Checker{
			Target: tg, Payload: c.UDP.Payload, RequireReply: c.UDP.RequireReply,
			Reply: c.UDP.Reply, ReplyMask: c.UDP.ReplyMask,
			MinReplyLength: c.UDP.MinReplyLength, MaxReplyLength: c.UDP.MaxReplyLength,
		}
	case "PING_CHECK":
		sp.Name = c.Type + " " + tg.Addr.Addr().String()
		sp.Checker = &ping.Checker{Addr: tg.Addr.Addr()}
	case "MISC_CHECK":
		sp.Name = c.Type + " " + c.Misc.Path.Cmd
		sp.Timeout = c.Misc.Timeout.D()
		sp.Dynamic, sp.FromStart = c.Misc.Dynamic, true
		sp.Checker = &misc.Checker{Argv: c.Misc.Path.Argv, User: c.Misc.Path.User, Group: c.Misc.Path.Group, Dynamic: c.Misc.Dynamic}
	case "FILE_CHECK":
		var tf *model.TrackFile
		for _, f := range files {
			if f.Name == c.File.TrackFile {
				tf = f
			}
		}
		if tf == nil {
			return sp, fmt.Errorf("track_file %q is not defined", c.File.TrackFile)
		}
		// The FILE_CHECK's own weight, else the track_file's.
		w, rev := c.File.Weight, c.File.Reverse
		if w == 0 && !rev {
			w, rev = int(tf.Weight.Value), tf.Weight.Reverse
		}
		sp.Name = c.Type + " " + tf.File
		sp.Checker = &file.Checker{Path: tf.File, Weight: w, Reverse: rev}
		// The file's state is known at once: no retries, no alpha, no warmup.
		sp.Timeout, sp.DelayLoop, sp.Retry, sp.Alpha, sp.Warmup = FilePoll, FilePoll, 0, false, 0
	default:
		return sp, fmt.Errorf("checker type %s not supported", c.Type)
	}
	if sp.DelayLoop <= 0 || sp.Timeout <= 0 {
		return sp, fmt.Errorf("needs a delay_loop and a timeout (got %v and %v)", sp.DelayLoop, sp.Timeout)
	}
	return sp, nil
}

// tcpChecker is a TCP_CHECK of t: half-open when the daemon asked for it
// and the prober can (bind_port, bind_if and fwmark keep the connect probe;
// see tcp.SynProber.Supports), else a connect.
func (o Options) tcpChecker(t check.Target) check.Checker {
	if o.SynProber == nil {
		return tcp.New(t)
	}
	c := tcp.NewSyn(o.SynProber, t)
	if _, half := c.(*tcp.SynChecker); !half && o.Logger != nil {
		o.Logger.Debug("TCP_CHECK keeps the connect probe: bind_port, bind_if, fwmark or the address family rule out a half-open one",
			"check", "TCP_CHECK "+t.Addr.String())
	}
	return c
}

// target is where c connects: connect_ip and connect_port, else the real
// server's address and port, else defPort.
func target(c *model.Check, rs *model.RealServer, defPort uint16) check.Target {
	ip := rs.Addr
	if c.ConnectIP.IsValid() {
		ip = c.ConnectIP
	}
	port := rs.Port
	if c.ConnectPort != 0 {
		port = c.ConnectPort
	} else if port == 0 {
		port = defPort
	}
	return check.Target{
		Addr:   netip.AddrPortFrom(ip, port),
		BindTo: c.BindTo, BindPort: c.BindPort, BindIf: c.BindIf, FWMark: c.FWMark,
	}
}

// LoadSSL reads the SSL block's client certificate and key (PEM; a key
// encrypted with the block's password, as OpenSSL's traditional PEM
// encryption writes it, is decrypted). An SSL block without certificate
// gives nil: SSL_GET then presents no certificate, as keepalived. The
// block's ca is accepted and not used: keepalived's SSL_GET does not
// verify the real server either.
func LoadSSL(s *model.SSL) (*tls.Certificate, error) {
	if s == nil || s.Certificate == "" {
		return nil, nil
	}
	certPEM, err := os.ReadFile(s.Certificate)
	if err != nil {
		return nil, fmt.Errorf("SSL certificate: %w", err)
	}
	keyFile := s.Key
	if keyFile == "" {
		keyFile = s.Certificate // key and certificate in one file
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("SSL key: %w", err)
	}
	if s.Password != "" {
		if keyPEM, err = decryptKey(keyPEM, s.Password); err != nil {
			return nil, fmt.Errorf("SSL key %s: %w", keyFile, err)
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("SSL certificate %s and key %s: %w", s.Certificate, keyFile, err)
	}
	return &cert, nil
}

// decryptKey replaces an encrypted PEM private key in b by its plain form.
func decryptKey(b []byte, password string) ([]byte, error) {
	var out []byte
	for {
		blk, rest := pem.Decode(b)
		if blk == nil {
			return out, nil
		}
		// Deprecated in Go (the format is weak), but it is the one
		// OpenSSL's traditional encrypted keys, keepalived's, are in.
		if x509.IsEncryptedPEMBlock(blk) {
			der, err := x509.DecryptPEMBlock(blk, []byte(password))
			if err != nil {
				return nil, err
			}
			blk = &pem.Block{Type: blk.Type, Bytes: der}
		}
		out = append(out, pem.EncodeToMemory(blk)...)
		b = rest
	}
}
