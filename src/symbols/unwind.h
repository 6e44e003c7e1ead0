/* unwind.h - libdwfl's unwinder over a core, reading through heapscope's
 * own memory and thread notes.
 *
 * libdwfl 0.188's dwfl_core_file_attach reads each stack word with
 * elf_getdata_rawchunk, which keeps every chunk read in a list it searches
 * from the start on each read, after a walk of every program header: a
 * core's unwinding cost grew with the square of the words read and with the
 * segments (1.2 s for 300 threads of 20 frames; minutes at a few thousand).
 * The same unwinder over these callbacks reads each word in one lookup.
 */
#ifndef HS_UNWIND_H
#define HS_UNWIND_H

#include <stdbool.h>
#include <elfutils/libdwfl.h>
#include "memory.h"
#include "notes.h"

/* Attach dwfl's unwinder to the core's threads (notes) and memory (mem):
 * core is the core's Elf (its machine); mem and notes must outlive dwfl.
 * False when libdwfl refuses (no backend for the machine, no memory). */
bool hs_unwind_attach(Dwfl *dwfl, Elf *core, struct hs_memory *mem, const struct hs_notes *notes);

#endif
