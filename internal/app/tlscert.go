package app

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckEvery is how often, at most, a TLS handshake looks whether the
// certificate files changed.
const certCheckEvery = 10 * time.Second

// certFiles is the server certificate of BAYEUX_TLS_CERT and
// BAYEUX_TLS_KEY. It is loaded again when either file's modification time
// changes (looked at on a handshake, at most every certCheckEvery), so a
// renewed certificate is served without a restart; a pair that does not
// load (a renewal half written) keeps the previous certificate and is
// tried again later. It is safe for concurrent use.
type certFiles struct {
	certPath, keyPath string
	log               *slog.Logger
	every             time.Duration

	mu      sync.Mutex
	cert    *tls.Certificate
	certMod time.Time
	keyMod  time.Time
	checked time.Time
}

// loadCertFiles loads the pair once; an error names the file at fault.
func loadCertFiles(certPath, keyPath string, log *slog.Logger) (*certFiles, error) {
	c := &certFiles{certPath: certPath, keyPath: keyPath, log: log, every: certCheckEvery}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// load reads both files; the caller holds mu or owns c.
func (c *certFiles) load() error {
	ci, err := os.Stat(c.certPath)
	if err != nil {
		return fmt.Errorf("BAYEUX_TLS_CERT: %w", err)
	}
	ki, err := os.Stat(c.keyPath)
	if err != nil {
		return fmt.Errorf("BAYEUX_TLS_KEY: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(c.certPath, c.keyPath)
	if err != nil {
		return fmt.Errorf("BAYEUX_TLS_CERT/BAYEUX_TLS_KEY: %w", err)
	}
	c.cert, c.certMod, c.keyMod = &cert, ci.ModTime(), ki.ModTime()
	return nil
}

// changed reports whether either file's modification time moved.
func (c *certFiles) changed() bool {
	ci, err1 := os.Stat(c.certPath)
	ki, err2 := os.Stat(c.keyPath)
	return err1 == nil && err2 == nil && (!ci.ModTime().Equal(c.certMod) || !ki.ModTime().Equal(c.keyMod))
}

// get is tls.Config.GetCertificate.
func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.checked) >= c.every {
		c.checked = now
		if c.changed() {
			if err := c.load(); err != nil {
				c.log.Warn("TLS certificate not reloaded; serving the previous one", "err", err)
			} else {
				c.log.Info("TLS certificate reloaded", "file", c.certPath)
			}
		}
	}
	return c.cert, nil
}
