package publisher

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

const (
	testPassword = "s3cret-Pa55word-xyz"
	testToken    = "t0ken-VALUE-abc123"
)

// tlsFiles holds PEM files of a throwaway CA, a server certificate for
// 127.0.0.1 and a client certificate.
type tlsFiles struct {
	ca, otherCA           string // otherCA signed nothing here
	serverCert, serverKey string
	clientCert, clientKey string
	serverTLS             *tls.Config
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key, der
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, serial int64, usage x509.ExtKeyUsage, ips []net.IP) (certDER, keyDER []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: fmt.Sprintf("leaf-%d", serial)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
	}
	certDER, err = x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err = x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return certDER, keyDER
}

func newTLSFiles(t *testing.T) *tlsFiles {
	t.Helper()
	dir := t.TempDir()
	f := &tlsFiles{}
	ca, caKey, caDER := newCA(t, "mdbridge test CA")
	f.ca = filepath.Join(dir, "ca.pem")
	writePEM(t, f.ca, "CERTIFICATE", caDER)
	_, _, otherDER := newCA(t, "unrelated CA")
	f.otherCA = filepath.Join(dir, "other-ca.pem")
	writePEM(t, f.otherCA, "CERTIFICATE", otherDER)

	sc, sk := issue(t, ca, caKey, 2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	f.serverCert, f.serverKey = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	writePEM(t, f.serverCert, "CERTIFICATE", sc)
	writePEM(t, f.serverKey, "EC PRIVATE KEY", sk)
	cc, ck := issue(t, ca, caKey, 3, x509.ExtKeyUsageClientAuth, nil)
	f.clientCert, f.clientKey = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	writePEM(t, f.clientCert, "CERTIFICATE", cc)
	writePEM(t, f.clientKey, "EC PRIVATE KEY", ck)

	pair, err := tls.LoadX509KeyPair(f.serverCert, f.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	f.serverTLS = &tls.Config{
		Certificates: []tls.Certificate{pair}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	}
	return f
}

// publishSome proves a connection can provision and publish.
func publishSome(t *testing.T, cc ConnConfig) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := Connect(ctx, cc, testLogger(t))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer nc.Close()
	p, err := NewJetStream(ctx, nc, Config{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, trades("binance", "BTCUSDT", 0, 10)); err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Acked != 10 {
		t.Fatalf("acked %d, want 10", st.Acked)
	}
}

func TestAuthAndTLS(t *testing.T) {
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	userPub, _ := user.PublicKey()
	userSeed, _ := user.Seed()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, userSeed, 0o600); err != nil {
		t.Fatal(err)
	}
	stranger, _ := nkeys.CreateUser()
	strangerSeed, _ := stranger.Seed()
	tf := newTLSFiles(t)

	for _, tc := range []struct {
		name   string
		server func(*server.Options)
		good   []ConnConfig // each must connect and publish
		bad    []ConnConfig // each must fail with wantErr
		want   error
	}{
		{
			name:   "user/password",
			server: func(o *server.Options) { o.Username, o.Password = "mdb", testPassword },
			good:   []ConnConfig{{User: "mdb", Password: testPassword}},
			bad:    []ConnConfig{{User: "mdb", Password: testPassword + "-wrong"}, {User: "other", Password: testPassword}, {}},
			want:   ErrAuth,
		},
		{
			name:   "token",
			server: func(o *server.Options) { o.Authorization = testToken },
			good:   []ConnConfig{{Token: testToken}},
			bad:    []ConnConfig{{Token: testToken + "-wrong"}, {}},
			want:   ErrAuth,
		},
		{
			name:   "nkey",
			server: func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: userPub}} },
			good:   []ConnConfig{{NKeySeed: Secret(userSeed)}, {NKeySeedFile: seedFile}},
			bad:    []ConnConfig{{NKeySeed: Secret(strangerSeed)}, {}},
			want:   ErrAuth,
		},
		{
			name: "mutual TLS",
			server: func(o *server.Options) {
				o.TLS, o.TLSVerify, o.TLSConfig, o.TLSTimeout = true, true, tf.serverTLS, 2
			},
			good: []ConnConfig{{TLSCA: tf.ca, TLSCert: tf.clientCert, TLSKey: tf.clientKey}},
			bad: []ConnConfig{
				{TLSCA: tf.otherCA, TLSCert: tf.clientCert, TLSKey: tf.clientKey}, // server cert not trusted
				{TLSCA: tf.ca}, // no client certificate
			},
			want: ErrTLS,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, tc.server)
			url := srv.ClientURL()
			if tc.want == ErrTLS {
				url = strings.Replace(url, "nats://", "tls://", 1)
			}
			for _, cc := range tc.good {
				cc.URLs = []string{url}
				publishSome(t, cc)
			}
			for i, cc := range tc.bad {
				cc.URLs = []string{url}
				// A retry would go on for the whole timeout; rejected
				// credentials must fail on the first attempt, so count
				// the dials rather than timing the call.
				cc.ConnectTimeout = time.Minute
				var dials atomic.Int32
				cc.Dialer = countingDialer{&dials}
				logs := &syncBuffer{}
				nc, err := Connect(context.Background(), cc, slogTo(logs))
				if err == nil {
					nc.Close()
					t.Fatalf("bad config %d connected", i)
				}
				if !errors.Is(err, tc.want) {
					t.Errorf("bad config %d: error %v, want %v", i, err, tc.want)
				}
				if n := dials.Load(); n != 1 {
					t.Errorf("bad config %d: %d connection attempts; rejected credentials must fail at once\n%s", i, n, logs.String())
				}
				assertNoSecrets(t, err.Error()+logs.String(), testPassword, testToken, string(userSeed), string(strangerSeed))
				t.Logf("bad config %d: %v", i, err)
			}
		})
	}
}

// assertNoSecrets fails if any secret (or a long part of it) shows up in s.
func assertNoSecrets(t *testing.T, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		if strings.Contains(s, sec) || (len(sec) > 12 && strings.Contains(s, sec[4:len(sec)-4])) {
			t.Errorf("secret leaked into output:\n%s", s)
		}
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seedBytes, _ := kp.Seed()
	seed := string(seedBytes)
	cfgs := []ConnConfig{
		{URLs: []string{"nats://127.0.0.1:1"}, User: "u", Password: testPassword},
		{URLs: []string{"nats://127.0.0.1:1"}, Token: testToken},
		{URLs: []string{"nats://127.0.0.1:1"}, NKeySeed: Secret(seed)},
		{URLs: []string{"nats://u:" + testPassword + "@127.0.0.1:1"}},
		{URLs: []string{"nats://" + testToken + "@127.0.0.1:1"}},
	}
	for i, cc := range cfgs {
		logs := &syncBuffer{}
		log := slogTo(logs)
		log.Info("config", "conn", cc)
		log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		log.Info("config", "conn", cc, "password", cc.Password)
		out := logs.String() + fmt.Sprintf("%v %+v %#v %s", cc, cc, cc, cc.Password)
		// An unreachable server: Connect logs retries and fails.
		cc.ConnectTimeout = 300 * time.Millisecond
		_, err := Connect(context.Background(), cc, log)
		if !errors.Is(err, ErrConnect) {
			t.Errorf("config %d: Connect = %v, want ErrConnect", i, err)
		}
		out += logs.String() + err.Error()
		assertNoSecrets(t, out, testPassword, testToken, seed)
		if !strings.Contains(out, redacted) && i != 1 && i != 2 {
			t.Errorf("config %d: expected %q in output", i, redacted)
		}
	}
}

func TestConnConfigJSONRedactsSecrets(t *testing.T) {
	tests := []struct {
		name string
		cc   ConnConfig
		want []string // substrings the JSON must hold
	}{
		{"url password", ConnConfig{URLs: []string{"nats://user:" + testPassword + "@127.0.0.1:4222"}},
			[]string{`"nats://[redacted]@127.0.0.1:4222"`}},
		{"url token", ConnConfig{URLs: []string{"nats://127.0.0.1:1", "tls://" + testToken + "@127.0.0.1:2"}},
			[]string{`"nats://127.0.0.1:1"`, `"tls://[redacted]@127.0.0.1:2"`}},
		{"secret fields", ConnConfig{URLs: []string{"nats://127.0.0.1:1"}, User: "u", Password: testPassword, Token: testToken},
			[]string{`"User":"u"`, `"Password":"[redacted]"`, `"Token":"[redacted]"`}},
		{"no urls", ConnConfig{Name: "n"}, []string{`"URLs":null`, `"Name":"n"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.cc)
			if err != nil {
				t.Fatal(err)
			}
			// Also as a field of an enclosing value and through a pointer.
			b2, err := json.Marshal(struct{ C *ConnConfig }{&tt.cc})
			if err != nil {
				t.Fatal(err)
			}
			assertNoSecrets(t, string(b)+string(b2), testPassword, testToken)
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("json %s lacks %s", b, w)
				}
			}
		})
	}
	// The caller's URLs are untouched.
	cc := ConnConfig{URLs: []string{"nats://u:" + testPassword + "@127.0.0.1:1"}}
	if _, err := json.Marshal(cc); err != nil || !strings.Contains(cc.URLs[0], testPassword) {
		t.Errorf("MarshalJSON changed the caller's URLs: %v (%v)", cc.URLs, err)
	}
}

func TestConnConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  ConnConfig
		want string // "" = valid
	}{
		{ConnConfig{URLs: []string{"nats://127.0.0.1:4222"}}, ""},
		{ConnConfig{URLs: []string{"tls://a:1", "nats://b:2"}, User: "u", Password: "p"}, ""},
		{ConnConfig{}, "ConnConfig.URLs"},
		{ConnConfig{URLs: []string{"http://x:1"}}, "ConnConfig.URLs"},
		{ConnConfig{URLs: []string{"127.0.0.1:4222"}}, "ConnConfig.URLs"},
		{ConnConfig{URLs: []string{"nats://x:1"}, User: "u", Token: "t"}, "ConnConfig.User"},
		{ConnConfig{URLs: []string{"nats://x:1"}, Password: "p"}, "ConnConfig.User"},
		{ConnConfig{URLs: []string{"nats://x:1"}, NKeySeed: "s", NKeySeedFile: "f"}, "ConnConfig.NKeySeed"},
		{ConnConfig{URLs: []string{"nats://x:1"}, TLSCert: "c"}, "ConnConfig.TLSCert"},
		{ConnConfig{URLs: []string{"nats://x:1"}, ReconnectWait: -1}, "ConnConfig.ReconnectWait"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: unexpected %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one naming %s", tc.cfg, err, tc.want)
		}
	}
}

func TestConnectBadFiles(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		cfg  ConnConfig
		want error
	}{
		{ConnConfig{TLSCA: missing}, ErrTLS},
		{ConnConfig{TLSCert: missing, TLSKey: missing}, ErrTLS},
		{ConnConfig{NKeySeedFile: missing}, ErrConfig},
		{ConnConfig{NKeySeed: "not-a-seed"}, ErrConfig},
	} {
		tc.cfg.URLs = []string{"nats://127.0.0.1:1"}
		_, err := Connect(context.Background(), tc.cfg, nil)
		if !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.cfg, err, tc.want)
		}
	}
}

func TestRedactURLs(t *testing.T) {
	got := RedactURLs([]string{"nats://u:secret@h:4222", " tls://tok3n@h:4223", "nats://h:4224", "::bad"})
	want := "nats://[redacted]@h:4222,tls://[redacted]@h:4223,nats://h:4224,<unparsable url>"
	if got != want {
		t.Fatalf("RedactURLs = %q, want %q", got, want)
	}
	if strings.Contains(got, "secret") || strings.Contains(got, "tok3n") {
		t.Fatal("a secret leaked")
	}
}

// countingDialer counts the connections it opens.
type countingDialer struct{ n *atomic.Int32 }

func (d countingDialer) Dial(network, address string) (net.Conn, error) {
	d.n.Add(1)
	return net.Dial(network, address)
}

func TestConnectDialer(t *testing.T) {
	srv := startServer(t, nil)
	var n atomic.Int32
	nc, err := Connect(context.Background(), ConnConfig{URLs: []string{srv.ClientURL()}, Dialer: countingDialer{&n}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if n.Load() != 1 {
		t.Fatalf("the dialer opened %d connections, want 1", n.Load())
	}
	if nc.Opts.ReconnectBufSize != -1 {
		t.Fatalf("ReconnectBufSize %d: the Dialer option dropped the defaults", nc.Opts.ReconnectBufSize)
	}
}
