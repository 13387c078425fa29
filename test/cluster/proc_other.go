//go:build unix && !linux

package cluster

import "syscall"

// sysProcAttr puts a child in its own process group, so that signals meant
// for the test (such as ^C) reach it only through this package.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
