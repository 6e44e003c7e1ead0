// go_goroutines: goroutines leaked in the usual ways (blocked forever on a
// channel receive, a send, a select, a mutex, a WaitGroup, a sleep, a read
// of a pipe nobody writes), and
// their truth as the runtime itself tells it, before a core is dumped.
//
//	go_goroutines TRUTH.json          stop in main.dump_here (gdb writes the core)
//	go_goroutines TRUTH.json abort    then SIGABRT: with GOTRACEBACK=crash (set
//	                                  below) the kernel writes the core
//	go_goroutines TRUTH.json wait     then sleep until killed (heapscope --pid)
//
// The truth: for each pattern its blocking function, how many goroutines,
// and the channels they wait on (address as %p prints it, element type);
// and "stacks", runtime.Stack(all) once every goroutine is parked: each
// goroutine's id, wait reason and frames as the runtime names them.
// Nothing changes after it: the goroutines are blocked for good, the GC is
// off, GOMAXPROCS is 1.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

type Job struct {
	ID      int
	Payload []byte
}

var (
	jobs     = make(chan *Job)        // 64 receivers: waitForever
	results  = make(chan int)         // 20 senders: sendForever
	quitA    = make(chan struct{})    // 10 selects on both: selectForever
	quitB    = make(chan string)
	full     = make(chan []byte, 4)   // full: 6 more senders, fillForever
	mu       sync.Mutex               // held by main: 5 in lockForever
	wg       sync.WaitGroup           // never done: 3 in waitGroupForever
	nap      = syscall.Timespec{Sec: 3600}
)

//go:noinline
func waitForever(id int) {
	j := <-jobs
	println(id, j.ID)
}

//go:noinline
func sendForever(v int) { results <- v }

//go:noinline
func selectForever() {
	select {
	case <-quitA:
	case s := <-quitB:
		println(s)
	}
}

//go:noinline
func fillForever() { full <- make([]byte, 16) }

//go:noinline
func lockForever() {
	mu.Lock()
	mu.Unlock()
}

//go:noinline
func waitGroupForever() { wg.Wait() }

//go:noinline
func sleepForever() { time.Sleep(10 * time.Hour) }

// A read nobody will answer: the goroutine stays in the system call.
//
//go:noinline
func readForever(fd int) {
	var b [1]byte
	syscall.Read(fd, b[:])
}

//go:noinline
func dump_here() {}

type channel struct {
	Address string `json:"address"`
	Elem    string `json:"elem"`
}
type pattern struct {
	Function string    `json:"function"`
	Count    int       `json:"count"`
	Channels []channel `json:"channels"`
}
type truth struct {
	Fixture   string    `json:"fixture"`
	GoVersion string    `json:"go_version"`
	Pid       int       `json:"pid"`
	Patterns  []pattern `json:"patterns"`
	Stacks    string    `json:"stacks"`
}

func ch(p unsafe.Pointer, elem string) channel {
	return channel{fmt.Sprintf("%p", p), elem}
}

func main() {
	debug.SetTraceback("crash")
	runtime.GOMAXPROCS(1)
	if len(os.Args) < 2 {
		os.Stderr.WriteString("usage: go_goroutines TRUTH.json [abort|wait]\n")
		os.Exit(2)
	}
	abort := len(os.Args) > 2 && os.Args[2] == "abort"
	wait := len(os.Args) > 2 && os.Args[2] == "wait"
	chp := func(c interface{}) unsafe.Pointer { return (*[2]unsafe.Pointer)(unsafe.Pointer(&c))[1] }

	mu.Lock()
	wg.Add(1)
	for i := 0; i < 4; i++ {
		full <- nil
	}
	t := truth{Fixture: "go_goroutines", GoVersion: runtime.Version(), Pid: syscall.Getpid()}
	t.Patterns = []pattern{
		{"main.waitForever", 64, []channel{ch(chp(jobs), "*main.Job")}},
		{"main.sendForever", 20, []channel{ch(chp(results), "int")}},
		{"main.selectForever", 10, []channel{ch(chp(quitA), "struct {}"), ch(chp(quitB), "string")}},
		{"main.fillForever", 6, []channel{ch(chp(full), "[]uint8")}},
		{"main.lockForever", 5, nil},
		{"main.waitGroupForever", 3, nil},
		{"main.sleepForever", 4, nil},
		{"main.readForever", 2, nil},
	}
	for i := 0; i < 64; i++ {
		go waitForever(i)
	}
	for i := 0; i < 20; i++ {
		go sendForever(i)
	}
	for i := 0; i < 10; i++ {
		go selectForever()
	}
	for i := 0; i < 6; i++ {
		go fillForever()
	}
	for i := 0; i < 5; i++ {
		go lockForever()
	}
	for i := 0; i < 3; i++ {
		go waitGroupForever()
	}
	for i := 0; i < 4; i++ {
		go sleepForever()
	}
	var pipe [2]int
	if err := syscall.Pipe(pipe[:]); err != nil {
		os.Stderr.WriteString("go_goroutines: pipe: " + err.Error() + "\n")
		os.Exit(1)
	}
	for i := 0; i < 2; i++ {
		go readForever(pipe[0])
	}

	// Until every goroutine is parked where it blocks for good.
	buf := make([]byte, 1<<20)
	var stacks string
	for try := 0; ; try++ {
		time.Sleep(20 * time.Millisecond)
		stacks = string(buf[:runtime.Stack(buf, true)])
		parked := true
		for _, p := range t.Patterns {
			if strings.Count(stacks, "\n"+p.Function+"(") != p.Count {
				parked = false
			}
		}
		if parked && strings.Count(stacks, "\ngoroutine ") == 64+20+10+6+5+3+4+2 {
			break
		}
		if try == 500 {
			os.Stderr.WriteString("go_goroutines: the goroutines did not all block\n" + stacks)
			os.Exit(1)
		}
	}
	t.Stacks = stacks
	out, _ := json.MarshalIndent(&t, "", " ")
	if err := os.WriteFile(os.Args[1], append(out, '\n'), 0o644); err != nil {
		os.Stderr.WriteString("go_goroutines: " + err.Error() + "\n")
		os.Exit(1)
	}
	debug.SetGCPercent(-1)

	dump_here()
	for wait {
		syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&nap)), 0, 0)
	}
	if abort {
		syscall.Kill(t.Pid, syscall.SIGABRT)
		for {
		}
	}
}
