/* unwind.c - see unwind.h. */
#include <stdlib.h>
#include <string.h>
#include "unwind.h"

struct unwind {
	struct hs_memory *mem;
	const struct hs_notes *notes;
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

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
	(void)dwfl;
	const struct unwind *u = arg;
	for (size_t i = 0; i < u->notes->nthreads; i++)
		if (u->notes->threads[i].tid == tid) {
			*thread_argp = (void *)&u->notes->threads[i];
			return true;
		}
	return false;
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

static void detach(Dwfl *dwfl, void *arg)
{
	(void)dwfl;
	free(arg);
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
	struct unwind *u = malloc(sizeof(*u));
	if (!u)
		return false;
	*u = (struct unwind){ mem, notes };
	// (On failure libdwfl has not taken u: detach is not called.)
	if (!dwfl_attach_state(dwfl, core, notes->pid, &callbacks, u)) {
		free(u);
		return false;
	}
	return true;
}
