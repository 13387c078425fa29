// Package redistest starts a real Redis server for tests: redis-server on a
// free loopback port, without persistence. Debian's redis-server package
// provides it (VOUCH_REDIS_SERVER names another binary). A missing Redis
// is an error, never a skip.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a running Redis server.
type Server struct {
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
	done chan error
}

// ForTest starts a server for t and stops it when t ends. With -short it
// skips t; otherwise a server that cannot start fails t.
func ForTest(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("Redis tests do not run with -short; without -short they fail when redis-server is missing")
	}
	srv, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// Start starts a server. Call Stop when done.
func Start() (*Server, error) {
	bin := os.Getenv("VOUCH_REDIS_SERVER")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			return nil, fmt.Errorf("redistest: redis-server not found (apt-get install redis-server, or set VOUCH_REDIS_SERVER): %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "vouch-redis-")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{bin: bin, dir: dir, port: port}
	if err := s.run(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// run starts redis-server on the server's port and directory, loading the
// save file there if there is one.
func (s *Server) run() error {
	s.done = make(chan error, 1)
	s.cmd = exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"), "--protected-mode", "no")
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start redis-server: %w", err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	if err := s.waitReady(10 * time.Second); err != nil {
		s.Kill()
		return err
	}
	return nil
}

// Restart kills the server and starts another on the same address from
// the last save file (SAVE), as a crashed server restarted from its
// snapshot would come back: without what it acknowledged after the save.
func (s *Server) Restart() error {
	s.Kill()
	return s.run()
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://127.0.0.1:" + strconv.Itoa(s.port) + "/0" }

// Kill stops the server abruptly, as a crash would, and waits for it.
func (s *Server) Kill() {
	if s.cmd.ProcessState == nil {
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Pause stops the server with SIGSTOP, as a hung server or a network black
// hole would: connections are accepted by the kernel, nothing answers.
func (s *Server) Pause() error { return syscall.Kill(s.cmd.Process.Pid, syscall.SIGSTOP) }

// Resume continues a paused server, with the data it held.
func (s *Server) Resume() error { return syscall.Kill(s.cmd.Process.Pid, syscall.SIGCONT) }

// Stop kills the server and removes its directory.
func (s *Server) Stop() {
	s.Kill()
	os.RemoveAll(s.dir)
}

func (s *Server) waitReady(timeout time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(s.port)})
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case err := <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redistest: redis-server exited: %v\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: redis-server not ready after %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
