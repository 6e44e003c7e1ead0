// go_maps: Go maps of known shape (issue 15: maps), and their truth as the
// runtime's own structures say it, before a core is dumped.
//
//	go_maps TRUTH.json          stop in main.dump_here (gdb writes the core)
//	go_maps TRUTH.json abort    then SIGABRT: with GOTRACEBACK=crash (set
//	                            below) the kernel writes the core
//
// The maps (globals):
//
//	sessions      map[string]*Conn, 200 entries "sess/00000".."sess/00199";
//	              each *Conn is reachable only through the map
//	registry.ByID map[int]*Order in a global struct, 300 entries 0..299
//	churn         map[int]string: 2000 inserted, 1900 deleted (tombstones,
//	              buckets kept for 100 entries)
//	small         map[string]int, 3 entries (one bucket, one group)
//	growing       map[int]int, 1665 entries: with buckets (go1.19-1.23) the
//	              last insert starts a grow that is not finished
//	empty         map[string]*Conn, made and empty
//	byConn        map[*Conn]int, 3 entries: pointer keys
//	shards        []map[int]int: 66000 maps of one entry each (key i,
//	              value i), more than the 65536 elements heapscope's Go
//	              typing once visited of one block: every one is a map
//
// For each map the truth has its name, address (what %p prints for the
// map), count, key and value types (reflect), and its shape read from the
// runtime's own header with the release's struct layout (shape_hmap.go,
// shape_swiss.go): buckets (hmap: 1 << B; Swiss: groups), overflow buckets
// (hmap), tombstones (hmap: emptyOne tophash bytes; Swiss: deleted ctrl
// bytes), tables (Swiss), whether it is growing (hmap).  "entries" lists
// every entry of sessions and registry.ByID (key, value address), of churn
// (key, value string) and of byConn (key: the pointer, value: the int);
// "shards" has the number of shards and the first and last one's address.  The GC is off after the last runtime.GC():
// nothing moves, nothing is freed.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"sort"
	"syscall"
	"unsafe"
)

type Conn struct {
	id   int
	name string
	buf  []byte
}

type Order struct {
	id  int
	qty int
	pad [4]uint64
}

type Registry struct {
	Name string
	ByID map[int]*Order
}

var (
	sessions map[string]*Conn
	registry Registry
	churn    map[int]string
	small    map[string]int
	growing  map[int]int
	empty    map[string]*Conn
	byConn   map[*Conn]int
	shards   []map[int]int
)

const nshards = 66000

type mapTruth struct {
	Name       string `json:"name"`
	Address    uint64 `json:"address"`
	Count      int    `json:"count"`
	KeyType    string `json:"key_type"`
	ValueType  string `json:"value_type"`
	Layout     string `json:"layout"` // "hmap" or "swiss"
	Buckets    int    `json:"buckets"`
	Overflow   int    `json:"overflow"`
	Tombstones int    `json:"tombstones"`
	Tables     int    `json:"tables"`
	Growing    bool   `json:"growing"`
}

type entry struct {
	Key   interface{} `json:"key"`
	Value uint64      `json:"value,omitempty"`
	Text  *string     `json:"text,omitempty"`
}

//go:noinline
func dump_here() {}

// The maps are made, and the truth written, in functions of their own: no
// pointer to a map's values stays in main's frame (goroutine stacks are
// roots), so each *Conn and *Order is reached through its map only.
//
//go:noinline
func fill() {
	sessions = make(map[string]*Conn, 200)
	for i := 0; i < 200; i++ {
		sessions[fmt.Sprintf("sess/%05d", i)] = &Conn{id: i, name: "conn", buf: make([]byte, 40)}
	}
	registry = Registry{Name: "orders", ByID: make(map[int]*Order, 300)}
	for i := 0; i < 300; i++ {
		registry.ByID[i] = &Order{id: i, qty: i % 7}
	}
	churn = map[int]string{}
	for i := 0; i < 2000; i++ {
		churn[i] = fmt.Sprintf("v%d", i)
	}
	for i := 0; i < 2000; i++ {
		if i%20 != 0 {
			delete(churn, i)
		}
	}
	small = map[string]int{"alpha": 1, "beta": 2, "gamma": 3}
	growing = map[int]int{}
	for i := 0; i < 1665; i++ {
		growing[i] = i * i
	}
	empty = make(map[string]*Conn)
	byConn = map[*Conn]int{}
	for i := 0; i < 3; i++ {
		byConn[&Conn{id: 1000 + i}] = 1000 + i
	}
	shards = make([]map[int]int, nshards)
	for i := range shards {
		shards[i] = map[int]int{i: i}
	}
}

// scrub overwrites the stack below main's frame (where fill and writeTruth
// ran) with zeros: a stale pointer there would be a root.
//
//go:noinline
func scrub() byte {
	var buf [32 << 10]byte
	return last(buf[:])
}

//go:noinline
func last(b []byte) byte { return b[len(b)-1] }

func header(m interface{}) unsafe.Pointer {
	return unsafe.Pointer(reflect.ValueOf(m).Pointer())
}

func describe(name string, m interface{}) mapTruth {
	t := reflect.TypeOf(m)
	h := header(m)
	mt := mapTruth{Name: name, Address: uint64(uintptr(h)), Count: reflect.ValueOf(m).Len(),
		KeyType: t.Key().String(), ValueType: t.Elem().String()}
	shape(h, t, &mt)
	if p := fmt.Sprintf("%p", m); p != fmt.Sprintf("0x%x", mt.Address) {
		panic("%p of " + name + " is " + p)
	}
	return mt
}

//go:noinline
func writeTruth(path string) {
	truth := struct {
		Fixture   string             `json:"fixture"`
		GoVersion string             `json:"go_version"`
		Pid       int                `json:"pid"`
		Maps      []mapTruth         `json:"maps"`
		Entries   map[string][]entry `json:"entries"`
		Chain     map[string]uint64  `json:"chain"`
		Shards    struct {
			Count int    `json:"count"`
			First uint64 `json:"first"`
			Last  uint64 `json:"last"`
		} `json:"shards"`
	}{Fixture: "go_maps", GoVersion: runtime.Version(), Pid: syscall.Getpid(), Entries: map[string][]entry{},
		Chain: map[string]uint64{}}
	truth.Maps = []mapTruth{describe("main.sessions", sessions), describe("main.registry.ByID", registry.ByID),
		describe("main.churn", churn), describe("main.small", small), describe("main.growing", growing),
		describe("main.empty", empty), describe("main.byConn", byConn)}
	var es []entry
	for k, v := range sessions {
		es = append(es, entry{Key: k, Value: uint64(uintptr(unsafe.Pointer(v)))})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Key.(string) < es[j].Key.(string) })
	truth.Entries["main.sessions"] = es
	es = nil
	for k, v := range registry.ByID {
		es = append(es, entry{Key: k, Value: uint64(uintptr(unsafe.Pointer(v)))})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Key.(int) < es[j].Key.(int) })
	truth.Entries["main.registry.ByID"] = es
	es = nil
	for k, v := range churn {
		s := v
		es = append(es, entry{Key: k, Text: &s})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Key.(int) < es[j].Key.(int) })
	truth.Entries["main.churn"] = es
	es = nil
	for k, v := range byConn {
		es = append(es, entry{Key: uint64(uintptr(unsafe.Pointer(k))), Value: uint64(v)})
	}
	truth.Entries["main.byConn"] = es
	truth.Chain[`main.sessions["sess/00012"]`] = uint64(uintptr(unsafe.Pointer(sessions["sess/00012"])))
	truth.Chain[`main.registry.ByID[42]`] = uint64(uintptr(unsafe.Pointer(registry.ByID[42])))
	truth.Shards.Count = len(shards)
	truth.Shards.First = uint64(uintptr(header(shards[0])))
	truth.Shards.Last = uint64(uintptr(header(shards[len(shards)-1])))
	out, err := json.MarshalIndent(&truth, "", " ")
	if err != nil {
		panic(err)
	}
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		os.Stderr.WriteString("go_maps: cannot write " + path + "\n")
		os.Exit(1)
	}

}

func main() {
	debug.SetTraceback("crash")
	runtime.GOMAXPROCS(1)
	if len(os.Args) < 2 {
		os.Stderr.WriteString("usage: go_maps TRUTH.json [abort]\n")
		os.Exit(2)
	}
	abort := len(os.Args) > 2 && os.Args[2] == "abort"

	fill()
	debug.SetGCPercent(-1)
	runtime.GC()
	runtime.GC()

	writeTruth(os.Args[1])
	scrub()

	dump_here()
	if abort {
		syscall.Kill(syscall.Getpid(), syscall.SIGABRT)
		for {
		}
	}
	runtime.KeepAlive(sessions)
	runtime.KeepAlive(shards)
}
