# jemalloc.mk - how the jemalloc fixtures are built (included by the Makefile,
# or read as documentation).  cores/make-jemalloc-cores.sh runs the same lines
# and then takes the cores; `make jemalloc-cores` runs that script.
#
#   jemalloc_static    cores/jemalloc_heap.c + Debian's libjemalloc.a (je_ symbols)
#   jemalloc_stripped  jemalloc_static, strip --strip-all --keep-symbol=dump_here
#   jemalloc_dynamic   cores/jemalloc_heap.c -ljemalloc (stripped libjemalloc.so.2)
#   jemalloc_preload   cores/jemalloc_heap.c alone, run with
#                      LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
#   jemalloc_badversion a copy of jemalloc_preload, run with LD_PRELOAD of
#                      $(BUILD)/cores/badversion/libjemalloc.so.2: Debian's file
#                      with "5.3.0-" in its version string made "5.2.1-"
#                      (the script makes that copy)

JE_LIBDIR ?= /usr/lib/x86_64-linux-gnu
JE_FIXTURE_CFLAGS = -g -O0 -pthread -Wall -Wextra
JE_FIXTURES = jemalloc_static jemalloc_stripped jemalloc_dynamic jemalloc_preload jemalloc_badversion

$(BUILD)/cores/jemalloc_static: cores/jemalloc_heap.c
	@mkdir -p $(dir $@)
	gcc $(JE_FIXTURE_CFLAGS) -DJE_VARIANT='"static"' -o $@ $< $(JE_LIBDIR)/libjemalloc.a -lm -ldl

$(BUILD)/cores/jemalloc_stripped: $(BUILD)/cores/jemalloc_static
	strip --strip-all --keep-symbol=dump_here -o $@ $<

$(BUILD)/cores/jemalloc_dynamic: cores/jemalloc_heap.c
	@mkdir -p $(dir $@)
	gcc $(JE_FIXTURE_CFLAGS) -DJE_VARIANT='"dynamic"' -o $@ $< -L$(JE_LIBDIR) -ljemalloc

$(BUILD)/cores/jemalloc_preload: cores/jemalloc_heap.c
	@mkdir -p $(dir $@)
	gcc $(JE_FIXTURE_CFLAGS) -DJE_VARIANT='"preload"' -o $@ $<

.PHONY: jemalloc-cores
jemalloc-cores:
	@BUILD=$(BUILD) cores/make-jemalloc-cores.sh
