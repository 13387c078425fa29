// Package pgtest starts a real PostgreSQL server for tests: initdb into a
// temporary directory and postgres on a free loopback port. Debian keeps
// the binaries under /usr/lib/postgresql/*/bin; they refuse to run as root,
// so as root the server runs as the "postgres" user. Set VOUCH_PG_BIN to
// use another bin directory. A missing PostgreSQL is an error, never a skip.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running PostgreSQL server.
type Server struct {
	dir  string
	port int
	args []string
	cred *syscall.Credential
	cmd  *exec.Cmd
	done chan error
	seq  atomic.Int64
}

// Options tune the server.
type Options struct {
	// Durable keeps fsync on (for benchmarks that claim durability). Tests
	// turn it off: a crashed test server is thrown away anyway.
	Durable bool
}

// Start initialises and starts a server. Call Stop when done.
func Start(opts Options) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vouch-pg-")
	if err != nil {
		return nil, err
	}
	cred, err := credential(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	fsync := "off"
	if opts.Durable {
		fsync = "on"
	}
	s := &Server{dir: dir, port: port}
	s.args = []string{filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=" + fsync,
		"-c", "max_connections=200", "-c", "shared_buffers=128MB", "-c", "log_min_messages=warning"}
	s.cred = cred
	if err := s.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// start runs postgres on the server's data directory and port.
func (s *Server) start() error {
	s.done = make(chan error, 1)
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true}
	logf, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	go func() { s.done <- s.cmd.Wait(); logf.Close() }()
	if err := s.waitReady(30 * time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
		s.shutdown()
		return fmt.Errorf("%w\npostgres log:\n%s", err, log)
	}
	return nil
}

// Pause shuts the server down (fast shutdown) and keeps its data: clients
// get connection errors until Resume.
func (s *Server) Pause() { s.shutdown() }

// Resume starts the server again on the same data and port.
func (s *Server) Resume() error { return s.start() }

// URL returns the connection URL of database name.
func (s *Server) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, name)
}

// NewDatabase creates an empty database and returns its URL.
func (s *Server) NewDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("vouch_test_%d", s.seq.Add(1))
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return s.URL(name), nil
}

// Database creates a database for one test.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	url, err := s.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// Stop shuts the server down (fast shutdown), waits for it to exit and
// removes its files.
func (s *Server) Stop() {
	s.shutdown()
	os.RemoveAll(s.dir)
}

func (s *Server) shutdown() {
	if s.cmd == nil || s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case err := <-s.done:
			return fmt.Errorf("pgtest: postgres exited during start: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: postgres not ready after %s: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// binDir finds the PostgreSQL server binaries, newest version first.
func binDir() (string, error) {
	if d := os.Getenv("VOUCH_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("pgtest: PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin or on PATH; " +
		"install them (apt-get install postgresql) or set VOUCH_PG_BIN")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// credential returns the identity to run PostgreSQL as: the "postgres"
// user when running as root (it refuses root), else nil. It hands dir to
// that user.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs a \"postgres\" user to run the server as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
