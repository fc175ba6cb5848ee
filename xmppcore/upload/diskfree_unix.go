//go:build unix

package upload

import "syscall"

// diskFree is the space left for unprivileged writes on the file system
// holding dir, in bytes; -1 when unknown.
func diskFree(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}
