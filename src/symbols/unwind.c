/* unwind.c - see unwind.h. */
#include <stdlib.h>
#include <string.h>
#include "unwind.h"

struct unwind {
	struct hs_memory *mem;
	const struct hs_notes *notes;
	uint32_t *by_tid;           /* the threads' places, by tid (then place) */
};

// The DWARF numbers of x86-64's registers 0-16 (rax, rdx, rcx, rbx, rsi,
// rdi, rbp, rsp, r8-r15, rip: the psABI's table), as regs[] indexes.
enum { CFI_REGS = 17 };
static const int dwarf_regs[CFI_REGS] = {
	HS_REG_RAX, HS_REG_RDX, HS_REG_RCX, HS_REG_RBX, HS_REG_RSI, HS_REG_RDI, HS_REG_RBP, HS_REG_RSP,
	HS_REG_R8, HS_REG_R9, HS_REG_R10, HS_REG_R11, HS_REG_R12, HS_REG_R13, HS_REG_R14, HS_REG_R15,
	HS_REG_RIP,
};

// A thread's argument is its note (the one before it: where to go on).
static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
	(void)dwfl;
	const struct unwind *u = arg;
	const struct hs_thread *prev = *thread_argp;
	size_t i = prev ? (size_t)(prev - u->notes->threads) + 1 : 0;
	if (i >= u->notes->nthreads)
		return 0;
	*thread_argp = (void *)&u->notes->threads[i];
	return u->notes->threads[i].tid;
}

// The first thread of that tid (a core may repeat one), by binary search:
// thousands of threads are each looked up once.
static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
	(void)dwfl;
	const struct unwind *u = arg;
	const struct hs_thread *th = u->notes->threads;
	size_t lo = 0, hi = u->notes->nthreads;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (th[u->by_tid[mid]].tid < tid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == u->notes->nthreads || th[u->by_tid[lo]].tid != tid)
		return false;
	*thread_argp = (void *)&th[u->by_tid[lo]];
	return true;
}

// A word of the core's dumped memory (nothing else: a stack word that was
// not dumped ends the unwinding there).
static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
	(void)dwfl;
	const struct unwind *u = arg;
	uint64_t v;
	const uint8_t *p = hs_memory_span(u->mem, addr, sizeof(v));
	if (!p)
		return false;
	memcpy(&v, p, sizeof(v));
	*result = v;
	return true;
}

// The thread's registers from its NT_PRSTATUS note, as libdwfl's own core
// attach sets them: the CFI's 0-16, and rip the pc.
static bool set_initial_registers(Dwfl_Thread *thread, void *thread_arg)
{
	const struct hs_thread *th = thread_arg;
	Dwarf_Word regs[CFI_REGS];
	for (size_t k = 0; k < CFI_REGS; k++)
		regs[k] = th->regs[dwarf_regs[k]];
	if (!dwfl_thread_state_registers(thread, 0, CFI_REGS, regs))
		return false;
	dwfl_thread_state_register_pc(thread, th->regs[HS_REG_RIP]);
	return true;
}

static void unwind_free(struct unwind *u)
{
	if (u)
		free(u->by_tid);
	free(u);
}

static void detach(Dwfl *dwfl, void *arg)
{
	(void)dwfl;
	unwind_free(arg);
}

static int by_tid_cmp(const void *x, const void *y, void *threads)
{
	const struct hs_thread *th = threads;
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	int32_t ta = th[a].tid, tb = th[b].tid;
	return ta != tb ? (ta < tb ? -1 : 1) : (a > b) - (a < b);
}

bool hs_unwind_attach(Dwfl *dwfl, Elf *core, struct hs_memory *mem, const struct hs_notes *notes)
{
	static const Dwfl_Thread_Callbacks callbacks = {
		.next_thread = next_thread,
		.get_thread = get_thread,
		.memory_read = memory_read,
		.set_initial_registers = set_initial_registers,
		.detach = detach,
	};
	struct unwind *u = calloc(1, sizeof(*u));
	if (!u || !(u->by_tid = malloc((notes->nthreads ? notes->nthreads : 1) * sizeof(*u->by_tid)))) {
		unwind_free(u);
		return false;
	}
	u->mem = mem;
	u->notes = notes;
	for (size_t i = 0; i < notes->nthreads; i++)
		u->by_tid[i] = (uint32_t)i;
	qsort_r(u->by_tid, notes->nthreads, sizeof(*u->by_tid), by_tid_cmp, notes->threads);
	// (On failure libdwfl has not taken u: detach is not called.)
	if (!dwfl_attach_state(dwfl, core, notes->pid, &callbacks, u)) {
		unwind_free(u);
		return false;
	}
	return true;
}
