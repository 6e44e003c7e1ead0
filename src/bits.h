/* bits.h - bit counting every module may use (no other heapscope header). */
#ifndef HS_BITS_H
#define HS_BITS_H

#include <stdint.h>

/* Bits set in x.  x86-64's baseline has no popcnt instruction, and GCC then
 * calls libgcc's __popcountdi2 (a table walk) from the lookups' inner loops:
 * the bit trick instead, inline. */
static inline unsigned hs_popcount64(uint64_t x)
{
#if defined(__x86_64__) && !defined(__POPCNT__)
	x -= (x >> 1) & UINT64_C(0x5555555555555555);
	x = (x & UINT64_C(0x3333333333333333)) + ((x >> 2) & UINT64_C(0x3333333333333333));
	x = (x + (x >> 4)) & UINT64_C(0x0f0f0f0f0f0f0f0f);
	return (unsigned)((x * UINT64_C(0x0101010101010101)) >> 56);
#else
	return (unsigned)__builtin_popcountll(x);
#endif
}

#endif
