package http

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	nethttp "net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/check"
)

const page = "<html><body>hello keepvs, status: GREEN</body></html>"

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

type seen struct {
	mu                    sync.Mutex
	host, proto, conn, ua string
	sni                   string
}

func server(t *testing.T, tlsOn bool) (*httptest.Server, *seen) {
	sn := &seen{}
	mux := nethttp.NewServeMux()
	mux.HandleFunc("/ok", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		sn.mu.Lock()
		sn.host, sn.proto, sn.conn, sn.ua = r.Host, r.Proto, r.Header.Get("Connection"), r.UserAgent()
		sn.mu.Unlock()
		fmt.Fprint(w, page)
	})
	mux.HandleFunc("/down", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.WriteHeader(503)
	})
	mux.HandleFunc("/moved", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.WriteHeader(301)
	})
	mux.HandleFunc("/slow", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	srv := httptest.NewUnstartedServer(mux)
	if tlsOn {
		srv.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			sn.mu.Lock()
			sn.sni = h.ServerName
			sn.mu.Unlock()
			return nil, nil
		}}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, sn
}

func target(t *testing.T, srv *httptest.Server) check.Target {
	return check.Target{Addr: netip.MustParseAddrPort(srv.Listener.Addr().String())}
}

func TestCheck(t *testing.T) {
	srv, sn := server(t, false)
	tg := target(t, srv)
	addr := tg.Addr.String()
	tests := []struct {
		name   string
		c      Checker
		ok     bool
		reason string
	}{
		{"status 200", Checker{URLs: []URL{{Path: "/ok"}}}, true, ""},
		{"status 503", Checker{URLs: []URL{{Path: "/down"}}}, false, "HTTP status 503 not in 200-299 (" + addr + "/down)"},
		{"status range accepts 301", Checker{URLs: []URL{{Path: "/moved", StatusCodes: []CodeRange{{200, 200}, {300, 399}}}}}, true, ""},
		{"status list rejects 404", Checker{URLs: []URL{{Path: "/nope", StatusCodes: []CodeRange{{200, 200}, {301, 302}}}}}, false, "HTTP status 404 not in 200,301-302"},
		{"digest", Checker{URLs: []URL{{Path: "/ok", Digest: md5hex(page)}}}, true, ""},
		{"digest mismatch", Checker{URLs: []URL{{Path: "/ok", Digest: md5hex("other")}}}, false, "digest mismatch for " + addr + "/ok: got " + md5hex(page)},
		{"regex", Checker{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile(`status: GREEN`)}}}, true, ""},
		{"regex no match", Checker{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile(`status: RED`)}}}, false, `regex "status: RED" did not match`},
		{"regex_no_match", Checker{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile(`RED`), RegexNoMatch: true}}}, true, ""},
		{"regex_no_match matched", Checker{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile(`GREEN`), RegexNoMatch: true}}}, false, `regex "GREEN" matched`},
		{"regex within offsets", Checker{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile(`GREEN`), RegexMinOffset: 10, RegexMaxOffset: strings.Index(page, "GREEN")}}}, true, ""},
		{"regex beyond max offset", Checker{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile(`GREEN`), RegexMaxOffset: strings.Index(page, "GREEN") - 1}}}, false, "did not match"},
		{"regex before min offset", Checker{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile(`hello`), RegexMinOffset: 20}}}, false, "did not match"},
		{"urls in order, first failure wins", Checker{URLs: []URL{{Path: "/ok"}, {Path: "/down"}, {Path: "/nope"}}}, false, "HTTP status 503"},
		{"url timeout", Checker{URLs: []URL{{Path: "/slow"}}, URLTimeout: 200 * time.Millisecond}, false, "no data received from " + addr + "/slow: timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.Target = tg
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			res := tt.c.Check(ctx)
			if res.OK != tt.ok || !strings.Contains(res.Reason, tt.reason) {
				t.Errorf("Check = %+v, want ok=%v reason containing %q", res, tt.ok, tt.reason)
			}
		})
	}

	// What the server saw of the last /ok request, per protocol.
	for _, tt := range []struct {
		proto, vhost        string
		wantProto, wantConn string
		wantHost            string
	}{
		{"1.0", "", "HTTP/1.0", "", addr},
		{"1.0C", "www.example.com", "HTTP/1.0", "close", "www.example.com"},
		{"1.1", "", "HTTP/1.1", "close", addr},
	} {
		c := Checker{Target: tg, Protocol: tt.proto, Virtualhost: tt.vhost, URLs: []URL{{Path: "/ok"}}}
		if res := c.Check(context.Background()); !res.OK {
			t.Fatalf("protocol %s: %+v", tt.proto, res)
		}
		sn.mu.Lock()
		if sn.proto != tt.wantProto || sn.conn != tt.wantConn || sn.host != tt.wantHost || sn.ua != "KeepAliveClient" {
			t.Errorf("protocol %s: server saw %s Connection=%q Host=%q UA=%q; want %s %q %q KeepAliveClient",
				tt.proto, sn.proto, sn.conn, sn.host, sn.ua, tt.wantProto, tt.wantConn, tt.wantHost)
		}
		sn.mu.Unlock()
	}
}

func TestRequest(t *testing.T) {
	c := Checker{Target: check.Target{Addr: netip.MustParseAddrPort("[2001:db8::1]:8080")}}
	u := &URL{Path: "/health?x=1"}
	want := "GET /health?x=1 HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: [2001:db8::1]:8080\r\n\r\n"
	if got := c.Request(u); got != want {
		t.Errorf("Request = %q, want %q", got, want)
	}
	u.Virtualhost = "v.example"
	c.Protocol = "1.1"
	want = "GET /health?x=1 HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: v.example\r\n\r\n"
	if got := c.Request(u); got != want {
		t.Errorf("Request = %q, want %q", got, want)
	}
}

func TestSSLGet(t *testing.T) {
	srv, sn := server(t, true)
	tg := target(t, srv)
	for _, tt := range []struct {
		sni     bool
		wantSNI string
	}{{false, ""}, {true, "www.example.com"}} {
		c := Checker{Target: tg, TLS: true, SNI: tt.sni, Virtualhost: "www.example.com", URLs: []URL{{Path: "/ok", Digest: md5hex(page)}}}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		res := c.Check(ctx)
		cancel()
		if !res.OK {
			t.Fatalf("sni=%v: %+v", tt.sni, res)
		}
		sn.mu.Lock()
		if sn.sni != tt.wantSNI {
			t.Errorf("sni=%v: server name %q, want %q", tt.sni, sn.sni, tt.wantSNI)
		}
		sn.mu.Unlock()
	}
	// Plain HTTP to a TLS port fails the check, as it should.
	plain := Checker{Target: tg, URLs: []URL{{Path: "/ok"}}}
	if res := plain.Check(context.Background()); res.OK {
		t.Errorf("HTTP_GET to a TLS server: %+v", res)
	}
}

func TestCompileRegex(t *testing.T) {
	re, err := CompileRegex(`^status: green$`, []string{"caseless", "multiline", "extended"})
	if err != nil {
		t.Fatal(err)
	}
	if !re.MatchString("x\nSTATUS: GREEN\ny") {
		t.Errorf("%s: no match", re)
	}
}
