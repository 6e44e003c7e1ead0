// The Go heap of bench/go.sh: N live objects of 16 to 480 bytes (a mix of
// size classes, with and without pointers), kept in a global slice, and
// MAPS small maps (none by default) of one entry each, kept in another; the
// GC is then turned off and the program stops in main.dump_here for gcore.
//
//	go_bench N [MAPS]
package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"unsafe"
)

type node struct {
	next *node
	pad  [5]uint64
}

// Pointers to arrays, not slices: one object each (a slice in an interface
// would box its header, a second object).
var keep []unsafe.Pointer

// A map in each of many objects: the containers stage meets every header.
var maps []map[int]int

//go:noinline
func dump_here() {}

func main() {
	n, err := strconv.Atoi(os.Args[1])
	nmaps := 0
	if err == nil && len(os.Args) > 2 {
		nmaps, err = strconv.Atoi(os.Args[2])
	}
	if err != nil || n <= 0 || nmaps < 0 {
		os.Stderr.WriteString("usage: go_bench N [MAPS]\n")
		os.Exit(2)
	}
	maps = make([]map[int]int, 0, nmaps)
	for i := 0; i < nmaps; i++ {
		maps = append(maps, map[int]int{i: i})
	}
	keep = make([]unsafe.Pointer, 0, n)
	var prev *node
	for i := 0; i < n; i++ {
		var p unsafe.Pointer
		switch i % 5 {
		case 0:
			q := &node{next: prev}
			prev = q
			p = unsafe.Pointer(q)
		case 1:
			p = unsafe.Pointer(new([16]byte))
		case 2:
			p = unsafe.Pointer(new([100]byte))
		case 3:
			p = unsafe.Pointer(new([8]*node))
		default:
			p = unsafe.Pointer(new([480]byte))
		}
		keep = append(keep, p)
	}
	debug.SetGCPercent(-1)
	runtime.GC()
	dump_here()
	runtime.KeepAlive(keep)
	runtime.KeepAlive(maps)
}
