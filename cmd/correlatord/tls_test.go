package main

import (
	"context"
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
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// selfSigned writes a certificate for 127.0.0.1 and its key to dir, for
// servers and clients.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "correlatord-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		// Both: the peer test presents it as a client certificate too.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServesTLS: with --web.config.file the daemon serves HTTPS only.
func TestServesTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	webConfig := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webConfig, []byte("tls_server_config:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "c.yml")
	if err := os.WriteFile(cfgFile, []byte("data_dir: "+filepath.Join(dir, "data")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- runDaemon(ctx, commonFlags{configFile: cfgFile, logLevel: "error", logFormat: "json"},
			runOptions{listener: ln, ready: ready, registry: prometheus.NewRegistry(), webConfigFile: webConfig}, make(chan struct{}))
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	}()
	<-ready
	addr := ln.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("HTTPS /healthz: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	// Plain HTTP gets no answer it could mistake for service.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP served /healthz with TLS on")
		}
	}
}

// requireClientCerts writes a certificate and its key to a temporary
// folder (cert.pem, key.pem) and returns the folder and a function that
// serves a handler over TLS with that certificate, requiring clients to
// present one it signed.
func requireClientCerts(t *testing.T) (dir string, serve func(http.Handler) *httptest.Server) {
	t.Helper()
	dir = t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return dir, func(h http.Handler) *httptest.Server {
		srv := httptest.NewUnstartedServer(h)
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
		srv.StartTLS()
		return srv
	}
}

// TestPeerClientPresentsCertificate: instances that require client
// certificates reach each other with --web.peer-config.file, and not
// without it.
func TestPeerClientPresentsCertificate(t *testing.T) {
	dir, serve := requireClientCerts(t)
	peer := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			t.Error("request without a client certificate got through")
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer peer.Close()

	// peerClientFrom writes a peer configuration to dir and builds its
	// client. Paths in it are relative to the file, as in Prometheus' own.
	peerClientFrom := func(name, body string) (*http.Client, string, error) {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		client, err := newPeerClient(file)
		return client, file, err
	}
	client, _, err := peerClientFrom("peers.yml", "tls_config:\n  ca_file: cert.pem\n  cert_file: cert.pem\n  key_file: key.pem\n")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(peer.URL)
	if err != nil {
		t.Fatalf("with the peer configuration: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("with the peer configuration: %d", resp.StatusCode)
	}

	// Trusting the other instance is not enough: it wants a certificate.
	trusting, _, err := peerClientFrom("ca-only.yml", "tls_config:\n  ca_file: cert.pem\n")
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := trusting.Get(peer.URL); err == nil {
		resp.Body.Close()
		t.Fatalf("without a client certificate the request got %d", resp.StatusCode)
	}

	plain, err := newPeerClient("")
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := plain.Get(peer.URL); err == nil {
		resp.Body.Close()
		t.Fatalf("without a peer configuration the request got %d", resp.StatusCode)
	}

	for name, body := range map[string]string{
		"credentials": "authorization:\n  credentials: s3cret-peer-token\n",
		"unknown":     "tls_config:\n  ca_fle: cert.pem\n",
		"missing key": "tls_config:\n  cert_file: cert.pem\n",
	} {
		_, file, err := peerClientFrom("bad.yml", body)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), "--web.peer-config.file "+file) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error %q does not name the file, or shows the secret", name, err)
		}
	}
	if _, err := newPeerClient(filepath.Join(dir, "absent.yml")); err == nil || !strings.Contains(err.Error(), "absent.yml") {
		t.Errorf("a missing file: %v", err)
	}
}

// TestAPIAcrossInstancesOverMutualTLS: an instance reads a record held by
// one that requires client certificates, through --web.peer-config.file;
// without the file that instance counts as not answering (503).
func TestAPIAcrossInstancesOverMutualTLS(t *testing.T) {
	dir, requireClientCert := requireClientCerts(t)
	peerConfig := filepath.Join(dir, "peers.yml")
	if err := os.WriteFile(peerConfig, []byte("tls_config:\n  ca_file: cert.pem\n  cert_file: cert.pem\n  key_file: key.pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	client, err := newPeerClient(peerConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		client *http.Client
		want   int
	}{{"with the peer configuration", client, http.StatusOK}, {"without", nil, http.StatusServiceUnavailable}} {
		a, _, _, urlB, _ := twoInstancesServed(t, tc.client, requireClientCert)
		if !strings.HasPrefix(urlB, "https://") {
			t.Fatalf("b is served at %s, want https", urlB)
		}
		rec := a.do(t, "GET", "/api/v1/incidents/INC-b-db", tokRead, "")
		if rec.Code != tc.want {
			t.Errorf("%s: GET INC-b-db (held by b) through a: %d %s, want %d", tc.name, rec.Code, rec.Body, tc.want)
		}
	}
}
