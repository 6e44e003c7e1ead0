package main

// Objects with Go types heapscope must name and reach (issue 15: types,
// roots and reachability), and garbage it must call garbage:
//
//	conns    100 *Conn in a global slice: typed through DWARF (the global's
//	         type), each with a []byte buffer of 40 bytes
//	bigs     20 *Big of 808 bytes (896-byte class): from go1.22 a malloc
//	         header names them too
//	boxes    30 *Order and 10 Point values in a []interface{}: typed through
//	         the interfaces' runtime type words
//	garbage  300 *Garbage (200 bytes: the 208-byte class, used by nothing
//	         else) allocated after the last GC by a goroutine that exits:
//	         allocated, unreachable, garbage awaiting GC
// typesTruth appends the counts by type, a chosen object of each type and
// every garbage address to the truth.

import (
	"strconv"
	"unsafe"
)

type Conn struct {
	id   int
	name string
	buf  []byte
	next *Conn
}

type Big struct {
	p   *Big
	pad [100]uint64
}

type Order struct {
	id   int
	item *Conn
	qty  int
}

type Point struct{ x, y int }

type Garbage struct {
	p   *Garbage
	pad [24]uint64
}

var (
	conns   []*Conn
	bigs    []*Big
	boxes   []interface{}
	garbage [300]uintptr // addresses only: they hold nothing alive
	sink    *Garbage     // makes each one escape to the heap
)

func makeTyped() {
	for i := 0; i < 100; i++ {
		c := &Conn{id: i, name: "conn", buf: make([]byte, 40)}
		if i > 0 {
			c.next = conns[i-1]
		}
		conns = append(conns, c)
	}
	for i := 0; i < 20; i++ {
		bigs = append(bigs, &Big{})
	}
	for i := 0; i < 30; i++ {
		boxes = append(boxes, &Order{id: i, item: conns[i], qty: 1})
	}
	for i := 0; i < 10; i++ {
		boxes = append(boxes, Point{i + 1000, i + 2000})
	}
}

// After the last GC (and with the GC off): dropped at once, by a goroutine
// that then exits, so no live stack keeps a stale pointer to one (stacks are
// scanned conservatively); none points at another.
func makeGarbage() {
	done := make(chan bool)
	go func() {
		for i := range garbage {
			g := &Garbage{}
			garbage[i] = uintptr(unsafe.Pointer(g))
			sink = g
		}
		sink = nil
		done <- true
	}()
	<-done
}

func typesTruth(out []byte) []byte {
	add := func(name string, count int, addr uintptr) {
		out = append(out, ", {\"type\": \""...)
		out = append(out, name...)
		out = append(out, "\", \"count\": "...)
		out = strconv.AppendInt(out, int64(count), 10)
		out = append(out, ", \"address\": "...)
		out = strconv.AppendUint(out, uint64(addr), 10)
		out = append(out, '}')
	}
	out = append(out, ",\n \"go_types\": [{\"type\": \"main.Conn\", \"count\": 100, \"address\": "...)
	out = strconv.AppendUint(out, uint64(uintptr(unsafe.Pointer(conns[7]))), 10)
	out = append(out, '}')
	add("main.Big", 20, uintptr(unsafe.Pointer(bigs[3])))
	add("main.Order", 30, uintptr(unsafe.Pointer(boxes[5].(*Order))))
	out = append(out, "],\n \"garbage\": {\"type_size\": 200, \"size\": 208, \"addresses\": ["...)
	for i, a := range garbage {
		if i > 0 {
			out = append(out, ", "...)
		}
		out = strconv.AppendUint(out, uint64(a), 10)
	}
	out = append(out, "]}"...)
	return out
}
