package build

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keepvs/keepvs/internal/check"
	"github.com/keepvs/keepvs/internal/check/http"
	"github.com/keepvs/keepvs/internal/model"
)

// clientCert writes a self-signed client certificate and its key (the
// key encrypted with password, OpenSSL's legacy way, when not empty).
func clientCert(t *testing.T, dir, password string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lb1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	blk := &pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}
	if password != "" {
		if blk, err = x509.EncryptPEMBlock(rand.Reader, blk.Type, kder, []byte(password), x509.PEMCipherAES256); err != nil {
			t.Fatal(err)
		}
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(blk), 0o600)
	return certFile, keyFile
}

func TestLoadSSL(t *testing.T) {
	if c, err := LoadSSL(nil); c != nil || err != nil {
		t.Errorf("no SSL block: %v %v", c, err)
	}
	dir := t.TempDir()
	cf, kf := clientCert(t, dir, "")
	if c, err := LoadSSL(&model.SSL{Certificate: cf, Key: kf}); err != nil || c == nil {
		t.Fatalf("plain key: %v", err)
	}
	dir2 := t.TempDir()
	cf, kf = clientCert(t, dir2, "s3cret")
	if c, err := LoadSSL(&model.SSL{Certificate: cf, Key: kf, Password: "s3cret"}); err != nil || c == nil {
		t.Fatalf("encrypted key: %v", err)
	}
	if _, err := LoadSSL(&model.SSL{Certificate: cf, Key: kf, Password: "wrong"}); err == nil {
		t.Error("a wrong password loaded the key")
	}
	if _, err := LoadSSL(&model.SSL{Certificate: filepath.Join(dir, "missing.pem")}); err == nil || !strings.Contains(err.Error(), "SSL certificate") {
		t.Errorf("missing certificate: %v", err)
	}
}

// TestSSLGetClientCert: SSL_GET presents the SSL block's certificate, so
// a real server that requires one passes the check with it and fails
// it without.
func TestSSLGetClientCert(t *testing.T) {
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "rs"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &srvKey.PublicKey, srvKey)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: srvKey}},
		ClientAuth:   tls.RequireAnyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				buf := make([]byte, 4096)
				if _, err := c.Read(buf); err != nil {
					return // no client certificate: the handshake failed
				}
				io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}(c)
		}
	}()
	cf, kf := clientCert(t, t.TempDir(), "")
	cert, err := LoadSSL(&model.SSL{Certificate: cf, Key: kf})
	if err != nil {
		t.Fatal(err)
	}
	tg := check.Target{Addr: netip.MustParseAddrPort(ln.Addr().String())}
	for _, tt := range []struct {
		cert *tls.Certificate
		ok   bool
	}{{cert, true}, {nil, false}} {
		c := &http.Checker{Target: tg, TLS: true, URLs: []http.URL{{Path: "/"}}, URLTimeout: 2 * time.Second, ClientCert: tt.cert}
		if r := c.Check(t.Context()); r.OK != tt.ok {
			t.Errorf("with certificate %v: %+v, want ok=%v", tt.cert != nil, r, tt.ok)
		}
	}
}
