package console_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gohsm/internal/console"
)

// selfSigned writes a certificate for 127.0.0.1 and its key; returns the
// files and a pool trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gohsm console test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	d := t.TempDir()
	certFile, keyFile = filepath.Join(d, "cert.pem"), filepath.Join(d, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600))
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// TestAPIListenPolicy: a host that is not loopback needs TLS; loopback does
// not.
func TestAPIListenPolicy(t *testing.T) {
	conf, _ := testConfig(t, "")
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:8611", "[::]:0", "example.com:8611"} {
		_, err := console.New(console.Options{Config: conf, Listen: addr, Stdout: &bytes.Buffer{}})
		require.Error(t, err, "%s without TLS", addr)
		assert.Contains(t, strings.ToLower(err.Error()), "tls", "%s: the error says why: %v", addr, err)
	}
	for _, addr := range []string{"127.0.0.1:0", "127.5.6.7:0", "[::1]:0", "localhost:0"} {
		s, err := console.New(console.Options{Config: conf, Listen: addr, Stdout: &bytes.Buffer{}})
		require.NoError(t, err, "%s", addr)
		s.Close()
	}
	cert, key, _ := selfSigned(t)
	_, err := console.New(console.Options{Config: conf, Listen: "127.0.0.1:0", TLSCert: cert, Stdout: &bytes.Buffer{}})
	assert.Error(t, err, "a cert without its key")
	_, err = console.New(console.Options{Config: conf, Listen: "127.0.0.1:0", TLSCert: key, TLSKey: key, Stdout: &bytes.Buffer{}})
	assert.Error(t, err, "a key is no certificate")
	s, err := console.New(console.Options{Config: conf, Listen: "0.0.0.0:0", TLSCert: cert, TLSKey: key, Stdout: &bytes.Buffer{}})
	require.NoError(t, err, "with TLS any address may be used")
	s.Close()
}

// TestAPITLS: with a certificate the console serves https only (TLS 1.2+),
// sets Secure on its cookie, and logs in as over http.
func TestAPITLS(t *testing.T) {
	conf, _ := testConfig(t, "")
	initToken(t, conf, 0)
	cert, key, pool := selfSigned(t)
	var out bytes.Buffer
	srv, err := console.New(console.Options{Config: conf, Listen: "127.0.0.1:0", TLSCert: cert, TLSKey: key, Stdout: &out})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(ln)
	defer srv.Close()
	base := "https://" + ln.Addr().String()

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := hc.Post(base+"/api/v1/session", "application/json",
		strings.NewReader(`{"username": "alice", "password": "`+alicePW+`"}`))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)
	var found bool
	for _, c := range res.Cookies() {
		if c.Name == "gohsm_session" {
			found = true
			assert.True(t, c.Secure, "Secure under TLS")
			assert.True(t, c.HttpOnly)
			assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
		}
	}
	assert.True(t, found)

	// The Origin check holds under TLS: http:// of the same host is
	// another origin, and so is another site.
	for _, origin := range []string{"http://" + ln.Addr().String(), "https://evil.example"} {
		req, err := http.NewRequest("POST", base+"/api/v1/session", strings.NewReader(`{"username": "alice", "password": "`+alicePW+`"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		res, err := hc.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusForbidden, res.StatusCode, "Origin %s", origin)
	}
	req, err := http.NewRequest("POST", base+"/api/v1/session", strings.NewReader(`{"username": "alice", "password": "`+alicePW+`"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	res, err = hc.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusCreated, res.StatusCode, "its own https origin")

	old := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	_, err = old.Get(base + "/api/v1/slots")
	assert.Error(t, err, "TLS 1.1 refused")

	plain := &http.Client{Timeout: 10 * time.Second}
	res, err = plain.Get("http://" + ln.Addr().String() + "/api/v1/slots")
	if err == nil {
		res.Body.Close()
		assert.NotEqual(t, http.StatusOK, res.StatusCode, "no plain http on a TLS console")
	}
}

// TestAPIStartLine: New/Serve print one line naming the URL (via Stdout).
func TestAPIStartLine(t *testing.T) {
	e := newEnv(t)
	deadline := time.Now().Add(2 * time.Second)
	for e.out.String() == "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	line := e.out.String()
	assert.Equal(t, 1, strings.Count(line, "\n"), "%q", line)
	assert.True(t, strings.HasPrefix(line, "gohsm console: listening on http://127.0.0.1:"), "%q", line)
}
