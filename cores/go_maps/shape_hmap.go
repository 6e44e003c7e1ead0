//go:build !go1.24

package main

// The shape of a map before go1.24, read from runtime.hmap (runtime/map.go
// of go1.19-1.23: the same layout in each) and its buckets.

import (
	"reflect"
	"unsafe"
)

type hmap struct {
	count      int
	flags      uint8
	B          uint8
	noverflow  uint16
	hash0      uint32
	buckets    unsafe.Pointer
	oldbuckets unsafe.Pointer
	nevacuate  uintptr
	extra      unsafe.Pointer
}

const bucketCnt = 8

// A bucket: tophash [8]uint8, 8 keys, 8 values, the overflow pointer (keys
// and values over 128 bytes are stored as pointers; none here are).
func bucketSize(t reflect.Type) uintptr {
	return bucketCnt + bucketCnt*t.Key().Size() + bucketCnt*t.Elem().Size() + unsafe.Sizeof(uintptr(0))
}

func shape(p unsafe.Pointer, t reflect.Type, mt *mapTruth) {
	h := (*hmap)(p)
	mt.Layout = "hmap"
	mt.Buckets = 1 << h.B
	if h.buckets == nil { // made empty: no bucket array yet
		mt.Buckets = 0
	}
	mt.Growing = h.oldbuckets != nil
	size := bucketSize(t)
	for i := 0; i < mt.Buckets; i++ {
		for b, first := unsafe.Add(h.buckets, uintptr(i)*size), true; b != nil; first = false {
			if !first {
				mt.Overflow++
			}
			for j := 0; j < bucketCnt; j++ {
				if *(*uint8)(unsafe.Add(b, j)) == 1 { // emptyOne
					mt.Tombstones++
				}
			}
			b = *(*unsafe.Pointer)(unsafe.Add(b, size-unsafe.Sizeof(uintptr(0))))
		}
	}
}
