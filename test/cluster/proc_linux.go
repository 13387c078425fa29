package cluster

import "syscall"

// sysProcAttr puts a child in its own process group, so that signals meant
// for the test (such as ^C) reach it only through Stop, and has the kernel
// kill it when the thread that started it dies, so that a test killed by a
// timeout leaves no go build, etcd or kube-apiserver running behind it. (Go
// threads end only with a goroutine locked to them, which this package never
// starts a child from.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
