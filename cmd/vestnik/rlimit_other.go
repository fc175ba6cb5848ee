//go:build !unix

package main

// fitDescriptors leaves max as it is where descriptors have no limit to read.
func fitDescriptors(max int) (int, bool) { return max, false }
