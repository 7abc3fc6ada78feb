package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/bayeux-go/bayeux/protocol"
	"github.com/bayeux-go/bayeux/server"
)

// Serving HTTPS directly, with HTTP/2 for browsers, slow bodies cut after
// 20 s (held connects are not), at most 256 connections per address, and
// the client's address taken from X-Forwarded-For only when a load
// balancer on 10.0.0.0/8 sends it.
func ExampleServer_ServeTLS() {
	srv, _ := server.New(server.Options{
		TrustedProxies: []string{"10.0.0.0/8"},
		MaxConnsPerIP:  256,
	})
	defer srv.Shutdown(context.Background())

	// A certificate: here httptest's, usually tls.LoadX509KeyPair.
	cert := httptest.NewUnstartedServer(nil)
	cert.StartTLS()
	cert.Close()

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	hs := &http.Server{
		Handler:           srv.Site(server.SiteOptions{}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       20 * time.Second,
		TLSConfig:         &tls.Config{Certificates: cert.TLS.Certificates},
	}
	go srv.ServeTLS(hs, ln)
	defer hs.Close()

	pool := x509.NewCertPool()
	pool.AddCert(cert.Certificate())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := client.Post("https://"+ln.Addr().String()+"/cometd", "application/json",
		strings.NewReader(`[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var reply []protocol.Message
	json.NewDecoder(resp.Body).Decode(&reply)
	fmt.Println(resp.Proto, reply[0].Channel, reply[0].IsSuccessful())
	// Output: HTTP/2.0 /meta/handshake true
}
