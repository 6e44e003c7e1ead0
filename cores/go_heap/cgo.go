//go:build cgo

package main

// The cgo variant (go_heap_cgo): C blocks from glibc's malloc beside the Go
// heap, half of them freed, each with its malloc_usable_size.

/*
#include <malloc.h>
#include <stdlib.h>
*/
import "C"

import "unsafe"

var cSizes = []int{24, 24, 100, 100, 1000, 1000, 5000, 5000, 300000, 300000}

func cHeap() (live, freed []cBlock) {
	ptrs := make([]unsafe.Pointer, len(cSizes))
	for i, n := range cSizes {
		ptrs[i] = C.malloc(C.size_t(n))
	}
	for i, p := range ptrs {
		b := cBlock{uint64(uintptr(p)), uint64(C.malloc_usable_size(p))}
		if i%2 == 1 {
			C.free(p)
			freed = append(freed, b)
		} else {
			live = append(live, b)
		}
	}
	return live, freed
}
