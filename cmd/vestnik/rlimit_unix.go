//go:build unix

package main

import "syscall"

// fitDescriptors returns max lowered to fit the process's descriptor
// limit less fdReserve, and whether it was lowered.
func fitDescriptors(max int) (int, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return max, false
	}
	avail := int(lim.Cur) - fdReserve
	if avail < 16 {
		avail = 16
	}
	if avail < max {
		return avail, true
	}
	return max, false
}
