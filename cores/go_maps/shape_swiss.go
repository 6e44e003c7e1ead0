//go:build go1.24

package main

// The shape of a go1.24 (Swiss table) map, read from
// internal/runtime/maps.Map and its tables and groups.

import (
	"reflect"
	"unsafe"
)

type swissMap struct {
	used        uint64
	seed        uintptr
	dirPtr      unsafe.Pointer
	dirLen      int
	globalDepth uint8
	globalShift uint8
	writing     uint8
	clearSeq    uint64
}

type table struct {
	used       uint16
	capacity   uint16
	growthLeft uint16
	localDepth uint8
	index      int
	groups     unsafe.Pointer
	lengthMask uint64
}

const slotsPerGroup = 8

// A group: the control word, then 8 slots of struct{key K; elem V}.
func groupSize(t reflect.Type) uintptr {
	slot := reflect.StructOf([]reflect.StructField{{Name: "Key", Type: t.Key()}, {Name: "Elem", Type: t.Elem()}})
	return 8 + slotsPerGroup*slot.Size()
}

func deleted(g unsafe.Pointer) int {
	n := 0
	for j := 0; j < slotsPerGroup; j++ {
		if *(*uint8)(unsafe.Add(g, j)) == 0xfe { // ctrlDeleted
			n++
		}
	}
	return n
}

func shape(p unsafe.Pointer, t reflect.Type, mt *mapTruth) {
	m := (*swissMap)(p)
	mt.Layout = "swiss"
	if m.dirLen == 0 {
		if m.dirPtr != nil {
			mt.Buckets = 1
			mt.Tombstones = deleted(m.dirPtr)
		}
		return
	}
	size := groupSize(t)
	seen := map[unsafe.Pointer]bool{}
	for i := 0; i < m.dirLen; i++ {
		tp := *(*unsafe.Pointer)(unsafe.Add(m.dirPtr, uintptr(i)*unsafe.Sizeof(uintptr(0))))
		if seen[tp] {
			continue
		}
		seen[tp] = true
		tb := (*table)(tp)
		mt.Tables++
		for g := uint64(0); g <= tb.lengthMask; g++ {
			mt.Buckets++
			mt.Tombstones += deleted(unsafe.Add(tb.groups, uintptr(g)*size))
		}
	}
}
