package cluster

import "syscall"

// sysProcAttr puts a child in its own process group, so that signals meant
// for the test (such as ^C) reach it only through this package, and has the
// kernel kill it when the thread that started it dies, so that a test killed
// by a timeout leaves no go build, etcd or kube-apiserver running behind it.
// (A Go thread ends only when a goroutine locked to it by
// runtime.LockOSThread exits; do not call Build or Start from such a
// goroutine.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
