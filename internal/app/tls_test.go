package app

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/bayeux-go/bayeux/internal/testutil"
	"github.com/bayeux-go/bayeux/protocol"
)

// writeCert writes a self-signed certificate for 127.0.0.1 named cn into
// dir (cert.pem, key.pem) and returns its paths and a pool trusting it.
func writeCert(t *testing.T, dir, cn string) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

// With BAYEUX_TLS_CERT and BAYEUX_TLS_KEY the binary serves HTTPS: HTTP/2
// is negotiated when offered, connects held on one HTTP/2 connection
// outlive BAYEUX_READ_TIMEOUT and do not block its other requests,
// HTTP/1.1 long-polls are parked over TLS, and WebSockets work.
func TestServesTLS(t *testing.T) {
	t.Parallel()
	certPath, keyPath, pool := writeCert(t, t.TempDir(), "bayeux test")
	r := start(t, map[string]string{
		"BAYEUX_TLS_CERT":     certPath,
		"BAYEUX_TLS_KEY":      keyPath,
		"BAYEUX_READ_TIMEOUT": "300ms",
		"BAYEUX_POLL_TIMEOUT": "1s",
	})
	stats := r.app.Bayeux.Stats()
	tlsConfig := &tls.Config{RootCAs: pool}
	client := func(h2 bool) *http.Client {
		jar, _ := cookiejar.New(nil)
		tr := &http.Transport{TLSClientConfig: tlsConfig.Clone(), ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second}
	}
	type reply struct {
		proto int
		msgs  []protocol.Message
		took  time.Duration
		err   error
	}
	send := func(c *http.Client, body string) reply {
		start := time.Now()
		resp, err := c.Post(r.url+"/cometd", "application/json", strings.NewReader(body))
		if err != nil {
			return reply{err: err}
		}
		defer resp.Body.Close()
		rp := reply{proto: resp.ProtoMajor, took: time.Since(start)}
		if resp.StatusCode != http.StatusOK {
			rp.err = &protocol.Error{Code: resp.StatusCode, Message: resp.Status}
			return rp
		}
		rp.err = json.NewDecoder(resp.Body).Decode(&rp.msgs)
		return rp
	}
	must := func(t *testing.T, c *http.Client, body string) reply {
		t.Helper()
		rp := send(c, body)
		if rp.err != nil || len(rp.msgs) == 0 || !rp.msgs[len(rp.msgs)-1].IsSuccessful() {
			t.Fatalf("%s: %+v (%v)", body, rp, rp.err)
		}
		return rp
	}
	session := func(t *testing.T, c *http.Client) (string, reply) {
		t.Helper()
		hs := must(t, c, handshakeJSON)
		id := hs.msgs[0].ClientID
		must(t, c, `[{"channel":"/meta/connect","clientId":"`+id+`","connectionType":"long-polling","advice":{"timeout":0}}]`)
		return id, hs
	}
	connect := func(id string) string {
		return `[{"channel":"/meta/connect","clientId":"` + id + `","connectionType":"long-polling"}]`
	}

	t.Run("HTTP/2", func(t *testing.T) {
		h2 := client(true)
		a, hs := session(t, h2)
		if hs.proto != 2 {
			t.Fatalf("HTTP/%d negotiated, want HTTP/2", hs.proto)
		}
		b, _ := session(t, h2) // the same browser: not limited per browser over HTTP/2
		held := make(chan reply, 2)
		for _, id := range []string{a, b} {
			go func() { held <- send(h2, connect(id)) }()
		}
		testutil.Eventually(t, 5*time.Second, func() bool { return stats.HeldConnects.Load() == 2 }, "two connects held on one HTTP/2 connection")
		// Other requests on the connection are not starved.
		if rp := must(t, h2, `[{"channel":"/service/echo","clientId":"`+a+`","data":"hi","id":"e1"}]`); rp.took > 500*time.Millisecond {
			t.Errorf("echo next to two held connects took %v", rp.took)
		}
		for range 2 {
			rp := <-held
			if rp.err != nil || !rp.msgs[len(rp.msgs)-1].IsSuccessful() {
				t.Errorf("held connect over HTTP/2: %+v", rp)
			} else if rp.took < 900*time.Millisecond {
				t.Errorf("held connect answered after %v, before its poll timeout", rp.took)
			}
		}
	})

	t.Run("HTTP/1.1 parked", func(t *testing.T) {
		h1 := client(false)
		id, hs := session(t, h1)
		if hs.proto != 1 {
			t.Fatalf("HTTP/%d, want HTTP/1.1", hs.proto)
		}
		must(t, h1, `[{"channel":"/meta/subscribe","clientId":"`+id+`","subscription":"/tls","id":"s1"}]`)
		held := make(chan reply, 1)
		go func() { held <- send(h1, connect(id)) }()
		testutil.Eventually(t, 5*time.Second, func() bool { return stats.Parked.Load() == 1 }, "the connect parked over TLS")
		if _, err := r.app.Bayeux.Publish(context.Background(), "/tls", "over tls"); err != nil {
			t.Fatal(err)
		}
		select {
		case rp := <-held:
			if rp.err != nil || len(rp.msgs) != 2 || string(rp.msgs[0].Data) != `"over tls"` {
				t.Errorf("parked connect over TLS: %+v", rp)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("parked connect not answered")
		}
		// The connection went back to the server: the next request works.
		must(t, h1, `[{"channel":"/service/echo","clientId":"`+id+`","data":1,"id":"e2"}]`)
	})

	t.Run("cookies Secure", func(t *testing.T) {
		resp, err := client(false).Post(r.url+"/cometd", "application/json", strings.NewReader(handshakeJSON))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, ck := range resp.Cookies() {
			if ck.Name == "BAYEUX_BROWSER" && !ck.Secure {
				t.Errorf("BAYEUX_BROWSER not Secure over TLS")
			}
		}
	})

	t.Run("WebSocket", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(r.url, "https")+"/cometd",
			&websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig.Clone()}}})
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		rt := func(msg string) []protocol.Message {
			t.Helper()
			if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			_, b, err := ws.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var msgs []protocol.Message
			if err := json.Unmarshal(b, &msgs); err != nil {
				t.Fatal(err)
			}
			return msgs
		}
		msgs := rt(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["websocket"]}]`)
		if !msgs[0].IsSuccessful() {
			t.Fatalf("WebSocket handshake: %+v", msgs)
		}
		id := msgs[0].ClientID
		if msgs = rt(`[{"channel":"/service/echo","clientId":"` + id + `","data":"wss","id":"w1"}]`); !bytes.Contains(msgs[0].Data, []byte("wss")) {
			t.Errorf("echo over wss: %+v", msgs)
		}
	})
}

// A renewed certificate is served without a restart; a broken renewal
// keeps the previous one.
func TestCertificateReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certPath, keyPath, _ := writeCert(t, dir, "first")
	c, err := loadCertFiles(certPath, keyPath, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c.every = 0
	name := func() string {
		t.Helper()
		cert, err := c.get(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	if got := name(); got != "first" {
		t.Fatalf("certificate %q, want first", got)
	}
	later := time.Now().Add(time.Minute)
	writeCert(t, dir, "renewed")
	os.Chtimes(certPath, later, later)
	if got := name(); got != "renewed" {
		t.Errorf("after renewal: certificate %q, want renewed", got)
	}
	os.WriteFile(keyPath, []byte("half written"), 0o600)
	os.Chtimes(keyPath, later.Add(time.Minute), later.Add(time.Minute))
	if got := name(); got != "renewed" {
		t.Errorf("after a broken renewal: certificate %q, want the previous one", got)
	}
	if _, err := loadCertFiles(filepath.Join(dir, "missing.pem"), keyPath, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "BAYEUX_TLS_CERT") {
		t.Errorf("missing certificate: %v", err)
	}
}
