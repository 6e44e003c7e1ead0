// go_heap: a Go heap with known objects of several size classes and some
// large objects, half of each kind dropped and collected, then the runtime's
// own figures written as truth before a core is dumped.
//
//	go_heap TRUTH.json          stop in main.dump_here (gdb writes the core)
//	go_heap TRUTH.json abort    then SIGABRT: with GOTRACEBACK=crash (set
//	                            below) the kernel writes the core
//	go_heap TRUTH.json wait     then sleep until killed (heapscope --pid)
//
// The truth is exact: after the last runtime.GC() (which finishes sweeping)
// the GC is off (SetGCPercent(-1)), GOMAXPROCS is 1, and ReadMemStats (which
// stops the world and flushes every P's mcache) is the last thing that
// looks at the heap.  The JSON is then built in a buffer allocated before
// and written with a raw write(2): nothing allocates between the figures and
// the core.  No other goroutine may run there either (the runtime's own
// allocate): main yields just before the figures, so it starts them on a
// fresh time slice, the cores are made with GODEBUG=asyncpreemptoff=1, and
// a raw system call never hands the P to another goroutine.
package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"unsafe"
)

// The fixture's object kinds: name, count made, size class they land in.
type small24 struct{ a, b, c uint64 }       // noscan, 24-byte class
type node48 struct {                         // pointers, 48-byte class
	next *node48
	val  [5]uint64
}
type rec128 struct { // pointers, 128-byte class
	p   *rec128
	pad [15]uint64
}
type buf1k [1024]byte                                     // noscan, 1024-byte class
type rec8k struct{ p *rec8k; pad [1000]uint64 }           // 8008 bytes -> 8192-byte class
type kind struct{ name string; made, kept int; size uintptr }
type cBlock struct{ address, size uint64 } // a C block (cgo.go): user pointer, malloc_usable_size

var (
	smalls []*small24
	nodes  []*node48
	recs   []*rec128
	bufs   []*buf1k
	rec8ks []*rec8k
	larges [][]byte   // 100,000 bytes: 13 pages each
	huge   []*int64   // 2,400,000 bytes: one large object of 293 pages
	freed  = map[string]uintptr{}
	nap    = syscall.Timespec{Sec: 3600} // made before the figures: waiting allocates nothing
)

//go:noinline
func dump_here() {}

func main() {
	debug.SetTraceback("crash")
	runtime.GOMAXPROCS(1)
	if len(os.Args) < 2 {
		os.Stderr.WriteString("usage: go_heap TRUTH.json [abort]\n")
		os.Exit(2)
	}
	abort := len(os.Args) > 2 && os.Args[2] == "abort"
	wait := len(os.Args) > 2 && os.Args[2] == "wait"
	fd, err := syscall.Open(os.Args[1], syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC, 0o644)
	if err != nil {
		os.Stderr.WriteString("go_heap: cannot create " + os.Args[1] + "\n")
		os.Exit(1)
	}
	pid := syscall.Getpid()

	kinds := []kind{
		{"small24", 3000, 0, 24}, {"node48", 2000, 0, 48}, {"rec128", 1000, 0, 128},
		{"buf1k", 300, 0, 1024}, {"rec8k", 40, 0, 8192}, {"large100k", 8, 0, 106496},
		{"huge2m", 1, 0, 2400256},
	}
	for i := 0; i < 3000; i++ {
		smalls = append(smalls, &small24{a: uint64(i)})
	}
	var prev *node48
	for i := 0; i < 2000; i++ {
		n := &node48{val: [5]uint64{uint64(i)}}
		nodes = append(nodes, n)
		if i%2 == 0 {
			n.next = prev // only even nodes are chained: odd ones die
			prev = n
		}
	}
	for i := 0; i < 1000; i++ {
		recs = append(recs, &rec128{})
	}
	for i := 0; i < 300; i++ {
		bufs = append(bufs, new(buf1k))
	}
	for i := 0; i < 40; i++ {
		rec8ks = append(rec8ks, &rec8k{})
	}
	for i := 0; i < 8; i++ {
		larges = append(larges, make([]byte, 100000))
	}
	huge = make([]*int64, 300000)
	makeTyped() // types.go

	// Drop every other object of each kind (the last large one, all of them
	// kept; the huge one kept) and remember one dropped address of each.
	addr := func(p unsafe.Pointer) uintptr { return uintptr(p) }
	freed["small24"] = addr(unsafe.Pointer(smalls[1]))
	freed["node48"] = addr(unsafe.Pointer(nodes[1]))
	freed["rec128"] = addr(unsafe.Pointer(recs[1]))
	freed["buf1k"] = addr(unsafe.Pointer(bufs[1]))
	freed["rec8k"] = addr(unsafe.Pointer(rec8ks[1]))
	freed["large100k"] = addr(unsafe.Pointer(&larges[1][0]))
	for i := 1; i < len(smalls); i += 2 {
		smalls[i] = nil
	}
	for i := 1; i < len(nodes); i += 2 {
		nodes[i] = nil
	}
	for i := 1; i < len(recs); i += 2 {
		recs[i] = nil
	}
	for i := 1; i < len(bufs); i += 2 {
		bufs[i] = nil
	}
	for i := 1; i < len(rec8ks); i += 2 {
		rec8ks[i] = nil
	}
	for i := 1; i < len(larges); i += 2 {
		larges[i] = nil
	}
	for i := range kinds {
		kinds[i].kept = kinds[i].made - kinds[i].made/2
	}
	kinds[len(kinds)-1].kept = 1
	kept := []struct {
		name string
		p    uintptr
	}{
		{"small24", addr(unsafe.Pointer(smalls[0]))}, {"node48", addr(unsafe.Pointer(nodes[0]))},
		{"rec128", addr(unsafe.Pointer(recs[0]))}, {"buf1k", addr(unsafe.Pointer(bufs[0]))},
		{"rec8k", addr(unsafe.Pointer(rec8ks[0]))}, {"large100k", addr(unsafe.Pointer(&larges[0][0]))},
		{"huge2m", addr(unsafe.Pointer(&huge[0]))},
	}
	cLive, cFreed := cHeap()
	out := make([]byte, 0, 1<<16)
	var ms runtime.MemStats

	debug.SetGCPercent(-1)
	runtime.GC()
	runtime.GC()
	makeGarbage()             // types.go: allocated and unreachable
	runtime.Gosched()         // whatever else is runnable runs now
	runtime.ReadMemStats(&ms) // stops the world, flushes the mcaches

	// From here on nothing allocates.
	out = append(out, "{\"fixture\": \"go_heap\", \"go_version\": \""...)
	out = append(out, runtime.Version()...)
	out = append(out, "\", \"pid\": "...)
	out = strconv.AppendInt(out, int64(pid), 10)
	num := func(key string, v uint64) {
		out = append(out, ",\n \""...)
		out = append(out, key...)
		out = append(out, "\": "...)
		out = strconv.AppendUint(out, v, 10)
	}
	num("heap_objects", ms.HeapObjects)
	num("heap_alloc", ms.HeapAlloc)
	num("heap_inuse", ms.HeapInuse)
	num("heap_idle", ms.HeapIdle)
	num("heap_released", ms.HeapReleased)
	num("heap_sys", ms.HeapSys)
	num("stack_inuse", ms.StackInuse)
	num("mspan_inuse", ms.MSpanInuse)
	num("mcache_inuse", ms.MCacheInuse)
	num("num_gc", uint64(ms.NumGC))
	// Per size class, as the runtime counts slots (a tiny block is one).
	// BySize stops at 19072 bytes: larger classes and large objects are in
	// heap_objects/heap_alloc only.
	out = append(out, ",\n \"by_size\": ["...)
	first := true
	for _, c := range ms.BySize {
		if c.Mallocs == c.Frees {
			continue
		}
		if !first {
			out = append(out, ", "...)
		}
		first = false
		out = append(out, "{\"size\": "...)
		out = strconv.AppendUint(out, uint64(c.Size), 10)
		out = append(out, ", \"count\": "...)
		out = strconv.AppendUint(out, c.Mallocs-c.Frees, 10)
		out = append(out, '}')
	}
	out = append(out, "],\n \"by_size_max\": "...)
	out = strconv.AppendUint(out, uint64(ms.BySize[len(ms.BySize)-1].Size), 10)
	out = append(out, ",\n \"kinds\": ["...)
	for i, k := range kinds {
		if i > 0 {
			out = append(out, ",\n   "...)
		}
		out = append(out, "{\"name\": \""...)
		out = append(out, k.name...)
		out = append(out, "\", \"made\": "...)
		out = strconv.AppendInt(out, int64(k.made), 10)
		out = append(out, ", \"kept\": "...)
		out = strconv.AppendInt(out, int64(k.kept), 10)
		out = append(out, ", \"size\": "...)
		out = strconv.AppendUint(out, uint64(k.size), 10)
		out = append(out, ", \"kept_address\": "...)
		out = strconv.AppendUint(out, uint64(kept[i].p), 10)
		out = append(out, ", \"freed_address\": "...)
		out = strconv.AppendUint(out, uint64(freed[k.name]), 10)
		out = append(out, '}')
	}
	blocks := func(key string, list []cBlock) {
		out = append(out, "],\n \""...)
		out = append(out, key...)
		out = append(out, "\": ["...)
		for i, b := range list {
			if i > 0 {
				out = append(out, ", "...)
			}
			out = append(out, "{\"address\": "...)
			out = strconv.AppendUint(out, b.address, 10)
			out = append(out, ", \"size\": "...)
			out = strconv.AppendUint(out, b.size, 10)
			out = append(out, '}')
		}
	}
	blocks("c_live", cLive)
	blocks("c_freed", cFreed)
	out = append(out, ']')
	out = typesTruth(out) // types.go
	out = append(out, "}\n"...)
	for len(out) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&out[0])), uintptr(len(out)))
		if e != 0 && e != syscall.EINTR {
			break
		}
		if e == 0 {
			out = out[n:]
		}
	}
	syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0)

	dump_here()
	// A raw system call keeps the only P: no other goroutine runs (the
	// sweeper would free GC work buffers, the runtime allocate) while
	// heapscope --pid reads the heap.  Run with GODEBUG=asyncpreemptoff=1.
	for wait {
		syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&nap)), 0, 0)
	}
	if abort {
		// Asleep in a raw system call, not spinning in main.main: wherever
		// the runtime's crash stops this thread, main.main is then a call
		// frame, read by its stack map (a frame stopped in its own code is
		// scanned word by word, and a stale word there would hold what the
		// globals hold).
		syscall.Kill(pid, syscall.SIGABRT)
		for {
			syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&nap)), 0, 0)
		}
	}
	runtime.KeepAlive(smalls)
	runtime.KeepAlive(nodes)
	runtime.KeepAlive(recs)
	runtime.KeepAlive(bufs)
	runtime.KeepAlive(rec8ks)
	runtime.KeepAlive(larges)
	runtime.KeepAlive(huge)
}
