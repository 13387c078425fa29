//go:build unix

// Package cluster runs a real Kubernetes control plane on loopback for
// end-to-end tests: one etcd and one kube-apiserver, built from source by
// Build and started by Start, with an admin token and a kubeconfig for
// kubectl and clients.
//
// Only the API server and its storage run. Vouch acts on API requests
// (admission, authorization, audit), which need nothing more; there is no
// controller-manager, scheduler or kubelet, so no controller reconciles
// objects and no Pod ever runs. Objects are stored and served exactly as in a
// full cluster, with the default admission plugins and Node,RBAC
// authorization.
//
// A test uses it like this:
//
//	c, err := cluster.Start(ctx, cluster.Options{})
//	if err != nil {
//		t.Fatal(err)
//	}
//	t.Cleanup(func() { c.Stop() })
//	out, _, err := c.Kubectl(ctx, "get", "namespaces")
//
// Start builds the binaries on first use (see Build): several minutes on a
// cold Go build cache, then nothing, as they are kept in a cache directory.
// The cluster is ready a few seconds after Start is called.
//
// The package uses only the standard library, so the main module needs no
// Kubernetes server dependencies; the binaries come from the separate module
// in test/cluster/tools.
package cluster

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configures Start. The zero value is ready to use.
type Options struct {
	// Binaries are the programs to run; when zero, Start calls Build.
	Binaries Binaries
	// APIServerArgs are extra kube-apiserver flags, added after the
	// defaults (a later flag wins).
	APIServerArgs []string
	// ReadyTimeout bounds the wait for /readyz; zero means 60 seconds.
	ReadyTimeout time.Duration
}

// Cluster is a running etcd and kube-apiserver. Its fields are read-only.
type Cluster struct {
	// Dir is the temporary directory holding data, certificates, logs and
	// the kubeconfig; Stop removes it.
	Dir string
	// Server is the API server's URL, https://127.0.0.1:PORT.
	Server string
	// Token is a bearer token of user "admin" in group system:masters.
	Token string
	// CAFile is the PEM file of the CA that signed the serving certificate.
	CAFile string
	// Kubeconfig is a kubeconfig file for Server, CAFile and Token.
	Kubeconfig string
	// EtcdURL is etcd's client URL.
	EtcdURL string
	// EtcdLog and APIServerLog are the files that receive the processes'
	// output.
	EtcdLog, APIServerLog string
	// Binaries are the programs the cluster runs.
	Binaries Binaries

	etcd, apiserver *process
	stopOnce        sync.Once
	stopErr         error
}

// process is a started command whose exit is observed by a goroutine.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // Wait's result, set before done is closed
}

// Start starts etcd and kube-apiserver on free loopback ports and waits until
// the API server's /readyz answers 200. ctx bounds the start-up only; the
// processes run until Stop, which the caller must call (t.Cleanup is a good
// place). On error nothing is left running.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bins := opts.Binaries
	if bins == (Binaries{}) {
		var err error
		if bins, err = Build(ctx); err != nil {
			return nil, err
		}
	}
	// A port found free may be taken before the process binds it; try again
	// with new ports when that happens.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var c *Cluster
		c, err = start(ctx, bins, opts)
		if err == nil {
			return c, nil
		}
		if !strings.Contains(err.Error(), "address already in use") || ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func start(ctx context.Context, bins Binaries, opts Options) (_ *Cluster, err error) {
	removeAbandoned()
	dir, err := os.MkdirTemp("", "vouch-cluster-")
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	// Records the owner, for removeAbandoned.
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c := &Cluster{
		Dir:          dir,
		Kubeconfig:   filepath.Join(dir, "kubeconfig"),
		EtcdLog:      filepath.Join(dir, "etcd.log"),
		APIServerLog: filepath.Join(dir, "kube-apiserver.log"),
		Binaries:     bins,
	}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()

	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	clientPort, peerPort, securePort := ports[0], ports[1], ports[2]
	c.EtcdURL = "http://127.0.0.1:" + strconv.Itoa(clientPort)
	c.Server = "https://127.0.0.1:" + strconv.Itoa(securePort)

	certs := filepath.Join(dir, "certs")
	if err := writeFiles(c, certs); err != nil {
		return nil, err
	}

	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	c.etcd, err = startProcess("etcd", bins.Etcd, c.EtcdLog,
		"--name=vouch-test",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+c.EtcdURL,
		"--advertise-client-urls="+c.EtcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=vouch-test="+peerURL,
		"--unsafe-no-fsync",
		// A single member on loopback: elect itself in about 0.1 s, not 1 s.
		"--heartbeat-interval=10",
		"--election-timeout=100",
	)
	if err != nil {
		return nil, err
	}

	timeout := opts.ReadyTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	if err := c.waitEtcd(ctx); err != nil {
		return nil, err
	}

	args := []string{
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		// The lease reconciler of the kubernetes Service's endpoints refuses
		// a loopback address, and nothing here would use those endpoints.
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(securePort),
		"--etcd-servers=" + c.EtcdURL,
		"--cert-dir=" + certs,
		"--tls-cert-file=" + filepath.Join(certs, "apiserver.crt"),
		"--tls-private-key-file=" + filepath.Join(certs, "apiserver.key"),
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--service-account-key-file=" + filepath.Join(certs, "sa.key"),
		"--service-account-signing-key-file=" + filepath.Join(certs, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--authorization-mode=Node,RBAC",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--profiling=false",
	}
	c.apiserver, err = startProcess("kube-apiserver", bins.KubeAPIServer, c.APIServerLog,
		append(args, opts.APIServerArgs...)...)
	if err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// removeAbandoned removes the directories of clusters whose test process
// died without calling Stop (its children died with it, see sysProcAttr).
func removeAbandoned() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "vouch-cluster-*"))
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(dir)
		}
	}
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("cluster: finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writeFiles creates the CA, the serving certificate, the service account
// key, the token file and the kubeconfig.
func writeFiles(c *Cluster, certs string) error {
	if err := os.MkdirAll(certs, 0o700); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vouch-test-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.IPv4(10, 96, 0, 1)},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	srvKeyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	token := make([]byte, 24)
	if _, err := rand.Read(token); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	c.Token = hex.EncodeToString(token)
	c.CAFile = filepath.Join(certs, "ca.crt")

	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: vouch-test
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: vouch-test
  context:
    cluster: vouch-test
    user: admin
current-context: vouch-test
`, strconv.Quote(c.Server), strconv.Quote(c.CAFile), strconv.Quote(c.Token))

	files := []struct {
		path string
		data []byte
	}{
		{c.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})},
		// The serving certificate is followed by its CA, as TLS servers send
		// their chain.
		{filepath.Join(certs, "apiserver.crt"), append(
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)},
		{filepath.Join(certs, "apiserver.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: srvKeyDER})},
		{filepath.Join(certs, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)})},
		// token,user,uid,"group,..."
		{filepath.Join(c.Dir, "tokens.csv"), []byte(c.Token + `,admin,admin,"system:masters"` + "\n")},
		{c.Kubeconfig, []byte(kubeconfig)},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
	}
	return nil
}

// startProcess starts a program in its own process group with its output
// going to logPath. On Linux the process is also killed when the test
// process dies.
func startProcess(name, path, logPath string, args ...string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	defer logFile.Close() // the child has its own copy
	fmt.Fprintf(logFile, "# %s %s\n", path, strings.Join(args, " "))
	cmd := exec.Command(path, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cluster: starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL if the process has
// not exited after grace.
func (p *process) stop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.done:
		return fmt.Errorf("cluster: %s did not exit within %s of SIGTERM and was killed", p.name, grace)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("cluster: %s (pid %d) did not exit even after SIGKILL", p.name, pgid)
	}
}

func (c *Cluster) waitEtcd(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		if c.etcd.exited() {
			return c.failure(fmt.Errorf("etcd exited: %v", c.etcd.err))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.EtcdURL+"/health", nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte(`"health":"true"`)) {
				return nil
			}
			err = fmt.Errorf("GET /health: %s: %s", resp.Status, bytes.TrimSpace(body))
		}
		if ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return c.failure(fmt.Errorf("etcd not healthy: %w (last error: %v)", context.Cause(ctx), last))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) waitReady(ctx context.Context) error {
	caPEM, err := os.ReadFile(c.CAFile)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	defer client.CloseIdleConnections()
	var last error
	for {
		if c.apiserver.exited() {
			return c.failure(fmt.Errorf("kube-apiserver exited: %v", c.apiserver.err))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.Server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+c.Token)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /readyz: %s: %s", resp.Status, failedChecks(body))
		}
		if ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return c.failure(fmt.Errorf("kube-apiserver not ready: %w; last error: %v", context.Cause(ctx), last))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// failedChecks returns the failing checks ("[-]...") of a /readyz answer,
// or the whole answer if it lists none.
func failedChecks(body []byte) string {
	var failed []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "[-]") {
			failed = append(failed, line)
		}
	}
	if len(failed) == 0 {
		return string(bytes.TrimSpace(body))
	}
	return strings.Join(failed, "; ")
}

// failure adds the tails of the logs to err.
func (c *Cluster) failure(err error) error {
	var b strings.Builder
	fmt.Fprintf(&b, "cluster: %v", err)
	for _, p := range []*process{c.etcd, c.apiserver} {
		if p != nil {
			fmt.Fprintf(&b, "\n--- last lines of the %s log ---\n%s", p.name, tail(p.log, 40))
		}
	}
	return errors.New(b.String())
}

// tail returns about the last n lines of the file at path.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	const max = 16 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		f.Seek(fi.Size()-max, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Kubectl runs kubectl against the cluster and returns its standard output
// and standard error. err is non-nil when kubectl fails, and then includes
// standard error.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	full := append([]string{"--kubeconfig=" + c.Kubeconfig, "--cache-dir=" + filepath.Join(c.Dir, "kube-cache")}, args...)
	cmd := exec.CommandContext(ctx, c.Binaries.Kubectl, full...)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return out.String(), errb.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(errb.Bytes()))
	}
	return out.String(), errb.String(), nil
}

// Stop stops kube-apiserver and then etcd, each with SIGTERM and, after 20
// seconds, SIGKILL, and removes Dir. It may be called more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		for _, p := range []*process{c.apiserver, c.etcd} {
			if p != nil {
				if err := p.stop(20 * time.Second); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if err := os.RemoveAll(c.Dir); err != nil {
			errs = append(errs, fmt.Errorf("cluster: %w", err))
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}
