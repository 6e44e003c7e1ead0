// go_pools: sync.Pools with known contents, and globals and goroutines that
// alone keep a known number of bytes alive (issue 15: pools, owners).
//
//	go_pools TRUTH.json          stop in main.dump_here (gdb writes the core)
//	go_pools TRUTH.json abort    then SIGABRT: with GOTRACEBACK=crash (set
//	                             below) the kernel writes the core
//
// Pools (GOMAXPROCS is 1: one P, so one poolLocal a pool; a Put fills the
// P's private slot first, then pushes on its shared chain of rings of 8, 16,
// ... slots):
//
//	bufPool    *main.Buf (32 bytes) each holding a 64 KiB []byte (8 pages,
//	           a large object): 4 put before a GC (which moves them to the
//	           victim cache: 1 private, 3 shared), 3 after (1 private, 2
//	           shared); oversized buffers parked in a pool
//	connPool   21 *main.Conn (64 bytes, nothing behind them), put after
//	           the GC: 1 private, 20 shared (a ring of 8 and one of 16)
//	slicePool  3 []byte values of 4096 bytes (each boxed in a 24-byte slice
//	           header), put before the GC only: all in the victim cache,
//	           and the pool is only in sync.oldPools
//
// Owners (what each root alone keeps alive; every size below is a size class
// or a whole number of pages, so bytes are exact):
//
//	main.registry   a []*Session of 64 (512 bytes), 64 *Session (64 bytes)
//	                each with a 1024-byte []byte: 129 objects, 70144 bytes
//	main.index      a list of 100 *Node (48 bytes): 4800 bytes
//	goroutine A     (main.holdSessions) a []*Session of 32 (256 bytes), 32
//	                *Session with 2048-byte buffers: 65 objects, 67840 bytes
//	goroutine B     (main.holdBlob) one 1 MiB []byte: 1048576 bytes
//
// Everything the pools and the globals hold is made by goroutines that then
// exit (a dead goroutine's stack is not a root, and main's frames are read
// by their stack maps, but the frame a goroutine is stopped in is scanned
// word by word: no stale word of main's stack reaches what they made).  The GC is off
// (SetGCPercent(-1)); a first runtime.GC() starts the GC's workers, the
// second is between the two rounds of Puts.  The truth is written with syscall.Write; what that allocates is
// garbage nothing reaches.
package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"unsafe"
)

type Buf struct {
	data []byte
	n    int
}

type Conn struct {
	id, state int64
	peer      *Conn
	pad       [5]uint64
}

type Session struct {
	id    int64
	data  []byte
	owner *Session
	pad   [3]uint64
}

type Node struct {
	next *Node
	key  int64
	val  [4]int64
}

var (
	bufPool   sync.Pool
	connPool  sync.Pool
	slicePool sync.Pool

	registry []*Session
	index    *Node

	// Truth, as addresses only (they keep nothing alive).
	bufVictim, bufLocal    []uintptr
	connLocal              []uintptr
	sliceVictim            []uintptr
	goids                  = make(chan int64)
	holdSessionsID, blobID int64
	done                   = make(chan bool)
)

//go:noinline
func dump_here() {}

func addr(p unsafe.Pointer) uintptr { return uintptr(p) }

// The data word of an interface value: the pooled object for a pointer, the
// box for a slice.
func dataWord(x interface{}) uintptr {
	return (*[2]uintptr)(unsafe.Pointer(&x))[1]
}

func must(ok bool, what string) {
	if !ok {
		os.Stderr.WriteString("go_pools: " + what + "\n")
		os.Exit(1)
	}
}

func newBuf() *Buf {
	b := &Buf{data: make([]byte, 64<<10)}
	must(cap(b.data) == 64<<10, "buffer capacity")
	return b
}

func fillBefore() {
	for i := 0; i < 4; i++ {
		b := newBuf()
		bufVictim = append(bufVictim, addr(unsafe.Pointer(b)))
		bufPool.Put(b)
	}
	for i := 0; i < 3; i++ {
		var x interface{} = make([]byte, 4096)
		sliceVictim = append(sliceVictim, dataWord(x))
		slicePool.Put(x)
	}
	done <- true
}

func fillAfter() {
	for i := 0; i < 3; i++ {
		b := newBuf()
		bufLocal = append(bufLocal, addr(unsafe.Pointer(b)))
		bufPool.Put(b)
	}
	for i := 0; i < 21; i++ {
		c := &Conn{id: int64(i)}
		connLocal = append(connLocal, addr(unsafe.Pointer(c)))
		connPool.Put(c)
	}
	done <- true
}

func makeGlobals() {
	registry = make([]*Session, 64)
	must(cap(registry) == 64, "registry capacity")
	for i := range registry {
		registry[i] = &Session{id: int64(i), data: make([]byte, 1024)}
	}
	for i := 0; i < 100; i++ {
		index = &Node{next: index, key: int64(i)}
	}
	done <- true
}

// goid: this goroutine's id, from the first line runtime.Stack writes
// ("goroutine 18 [running]:").
func goid() int64 {
	var buf [64]byte
	s := buf[:runtime.Stack(buf[:], false)]
	n := int64(0)
	for _, c := range s[len("goroutine "):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

var block chan bool // nil: a receive blocks forever
var holdN = 32

func holdSessions() {
	id := goid()
	hold := make([]*Session, holdN) // not a constant: on the heap, not the stack
	must(cap(hold) == 32, "hold capacity")
	for i := range hold {
		hold[i] = &Session{id: int64(i), data: make([]byte, 2048)}
	}
	goids <- id
	<-block
	runtime.KeepAlive(hold)
}

func holdBlob() {
	id := goid()
	blob := make([]byte, 1<<20)
	goids <- id
	<-block
	runtime.KeepAlive(blob)
}

func main() {
	debug.SetTraceback("crash")
	runtime.GOMAXPROCS(1)
	if len(os.Args) < 2 {
		os.Stderr.WriteString("usage: go_pools TRUTH.json [abort]\n")
		os.Exit(2)
	}
	abort := len(os.Args) > 2 && os.Args[2] == "abort"
	fd, err := syscall.Open(os.Args[1], syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC, 0o644)
	must(err == nil, "cannot create "+os.Args[1])
	pid := syscall.Getpid()
	out := make([]byte, 0, 1<<16)
	bufVictim = make([]uintptr, 0, 8)
	bufLocal = make([]uintptr, 0, 8)
	connLocal = make([]uintptr, 0, 32)
	sliceVictim = make([]uintptr, 0, 8)

	debug.SetGCPercent(-1)
	// The goroutines that live on (the holders, then the GC's workers,
	// started by the first GC) first: a goroutine may take over the stack
	// of one that exited, and the stale words of its dead frames would be
	// scanned too.
	go holdSessions()
	holdSessionsID = <-goids
	go holdBlob()
	blobID = <-goids
	runtime.GC()
	go makeGlobals()
	<-done
	go fillBefore()
	<-done
	runtime.GC() // the pools' local caches become their victim caches
	go fillAfter()
	<-done
	for i := 0; i < 10; i++ {
		runtime.Gosched() // every goroutine parks
	}

	str := func(key, v string) {
		out = append(out, ",\n \""...)
		out = append(out, key...)
		out = append(out, "\": \""...)
		out = append(out, v...)
		out = append(out, '"')
	}
	num := func(key string, v int64) {
		out = append(out, ", \""...)
		out = append(out, key...)
		out = append(out, "\": "...)
		out = strconv.AppendInt(out, v, 10)
	}
	list := func(key string, v []uintptr) {
		out = append(out, ", \""...)
		out = append(out, key...)
		out = append(out, "\": ["...)
		for i, a := range v {
			if i > 0 {
				out = append(out, ", "...)
			}
			out = strconv.AppendUint(out, uint64(a), 10)
		}
		out = append(out, ']')
	}
	pool := func(anchor, typ string, size, retained int64, private, shared, victim int64, local, vict []uintptr) {
		out = append(out, "\n  {\"anchor\": \""...)
		out = append(out, anchor...)
		out = append(out, "\", \"type\": \""...)
		out = append(out, typ...)
		out = append(out, '"')
		n := int64(len(local) + len(vict))
		num("count", n)
		num("bytes", n*size)
		num("object_size", size)
		num("retained", n*retained)
		num("private", private)
		num("shared", shared)
		num("victim", victim)
		list("local_objects", local)
		list("victim_objects", vict)
		out = append(out, '}')
	}
	owner := func(name, kind string, count, retained int64) {
		out = append(out, "\n  {\"name\": \""...)
		out = append(out, name...)
		out = append(out, "\", \"kind\": \""...)
		out = append(out, kind...)
		out = append(out, '"')
		num("count", count)
		num("retained", retained)
		out = append(out, '}')
	}
	out = append(out, "{\"fixture\": \"go_pools\""...)
	str("go_version", runtime.Version())
	num("pid", int64(pid))
	out = append(out, ",\n \"pools\": ["...)
	pool("main.bufPool", "*main.Buf", int64(unsafe.Sizeof(Buf{})), 64<<10, 1, 2, 4, bufLocal, bufVictim)
	out = append(out, ',')
	pool("main.connPool", "*main.Conn", int64(unsafe.Sizeof(Conn{})), 0, 1, 20, 0, connLocal, nil)
	out = append(out, ',')
	pool("main.slicePool", "[]uint8", int64(unsafe.Sizeof([]byte(nil))), 4096, 0, 0, 3, nil, sliceVictim)
	out = append(out, "],\n \"owners\": ["...)
	sess, node := int64(unsafe.Sizeof(Session{})), int64(unsafe.Sizeof(Node{}))
	owner("main.registry", "global", 1+64+64, 64*8+64*sess+64*1024)
	out = append(out, ',')
	owner("main.index", "global", 100, 100*node)
	out = append(out, ',')
	owner("goroutine "+strconv.FormatInt(holdSessionsID, 10)+" (main.holdSessions)", "goroutine", 1+32+32,
		32*8+32*sess+32*2048)
	out = append(out, ',')
	owner("goroutine "+strconv.FormatInt(blobID, 10)+" (main.holdBlob)", "goroutine", 1, 1<<20)
	out = append(out, "]}\n"...)
	syscall.Write(fd, out)
	syscall.Close(fd)

	dump_here()
	if abort {
		syscall.Kill(pid, syscall.SIGABRT)
		for {
		}
	}
}
