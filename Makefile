# heapscope - see README.md.  `make demo`, `make check`.
PREFIX ?= /usr/local
BUILD ?= build
CC ?= cc
OPT ?= -O2
SAN ?=
CFLAGS_BASE = -std=gnu11 -g $(OPT) -Wall -Wextra -Werror -Wno-missing-field-initializers \
	-fPIC -fvisibility=hidden -pthread -Iinclude -D_GNU_SOURCE $(SAN)
# The library's folders, in data-flow order (docs/architecture.md): the target,
# its symbols, the allocator walkers, the analysis stages, the reports, the
# live commands; src/ itself holds the session, the command table and what
# every stage shares.  Headers are included by name: each folder is on -I.
LIB_DIRS = src src/target src/symbols src/alloc src/analysis src/report src/live
LIB_INC = $(LIB_DIRS:%=-I%)
LIBS = -ldw -lelf -lz -lzstd -llzma -llz4 -lpthread -lm -lstdc++
TEST_LIBS = -lcmocka

LIB_SRC = $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
LIB_HDR = $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.h))
# The front end sees the public header only.
CLI_SRC = $(wildcard src/cli/*.c)
LIB_OBJ = $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_HELPERS = $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c))
FIXTURE_SRC = $(wildcard cores/*.c)

.PHONY: all deps-build deps-check check cores demo bench asan install clean fixtures fuzz fuzz-build
all: deps-build $(BUILD)/libheapscope.so $(BUILD)/libheapscope.a $(BUILD)/heapscope

deps-build:
	@scripts/deps.sh build
deps-check:
	@scripts/deps.sh check

$(BUILD)/obj/%.o: src/%.c $(LIB_HDR) include/heapscope.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(LIB_INC) -c -o $@ $<

$(BUILD)/libheapscope.a: $(LIB_OBJ)
	rm -f $@; ar rcs $@ $^

$(BUILD)/libheapscope.so: $(LIB_OBJ)
	$(CC) $(CFLAGS_BASE) -shared -Wl,--no-undefined -Wl,-soname,libheapscope.so.1 -o $@ $^ $(LIBS)

$(BUILD)/heapscope: $(CLI_SRC) $(wildcard src/cli/*.h) include/heapscope.h $(BUILD)/libheapscope.a
	$(CC) $(CFLAGS_BASE) -Isrc/cli -o $@ $(CLI_SRC) $(BUILD)/libheapscope.a $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(UNIT_HELPERS) $(wildcard tests/unit/*.h) $(BUILD)/libheapscope.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(LIB_INC) -Itests/unit -o $@ $< $(UNIT_HELPERS) $(BUILD)/libheapscope.a $(LIBS) $(TEST_LIBS)

check: deps-check all $(UNIT_BIN) cores
	@BUILD=$(BUILD) tests/run-tests.sh

# Fixture cores (regenerated only when a fixture changed).
cores: all
	@BUILD=$(BUILD) cores/make-cores.sh
	@BUILD=$(BUILD) cores/make-leak-cores.sh
	@BUILD=$(BUILD) cores/make-jemalloc-cores.sh
	@BUILD=$(BUILD) cores/make-tcmalloc-cores.sh
	@BUILD=$(BUILD) cores/make-mimalloc-cores.sh
	@BUILD=$(BUILD) cores/make-matrix-cores.sh
	@BUILD=$(BUILD) cores/make-pool-cores.sh
	@BUILD=$(BUILD) cores/make-grow-cores.sh
	@BUILD=$(BUILD) cores/make-maps-cores.sh
	@BUILD=$(BUILD) cores/make-go-cores.sh

demo: deps-check all
	@BUILD=$(BUILD) cores/make-cores.sh leaks
	@BUILD=$(BUILD) scripts/demo.sh

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory BUILD=build-release OPT=-O3 all
	@BUILD=build-release bench/run.sh

# HS_ASAN tells the tests: gdb cannot load an ASan-built library (they skip).
asan:
	@LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp HS_ASAN=1 \
	 $(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
		SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" check

# Fuzzing (docs/fuzzing.md): two libFuzzer harnesses over the public API,
# built with clang, ASan and UBSan in build-fuzz/: fuzz_core (whole cores,
# seeded with synthetic cores from the unit tests' builders) for FUZZ_SECONDS,
# then fuzz_go (patches to real Go cores: the fixtures' go_maps, go124_maps and
# go_pools kernel cores) for FUZZ_GO_SECONDS; findings go to build-fuzz/crashes/.
FUZZ_CC ?= clang-14
FUZZ_SECONDS ?= 120
FUZZ_GO_SECONDS ?= 60
FUZZ_GO_CORES = build/cores/go_maps.kernel.core:build/cores/go124_maps.kernel.core:build/cores/go_pools.kernel.core
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_FLAGS = -std=gnu11 -g -O1 -Wall -Wextra -Werror -Wno-missing-field-initializers -Iinclude $(LIB_INC) -Itests/unit -D_GNU_SOURCE -pthread $(FUZZ_SAN)
fuzz-build:
	@scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=$(FUZZ_CC) OPT=-O1 \
		SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" build-fuzz/libheapscope.a
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o build-fuzz/fuzz_core fuzz/fuzz_core.c \
		build-fuzz/libheapscope.a $(LIBS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o build-fuzz/fuzz_go fuzz/fuzz_go.c \
		build-fuzz/libheapscope.a $(LIBS)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o build-fuzz/make_seeds fuzz/make_seeds.c tests/unit/synth_core.c \
		tests/unit/synth_glibc.c build-fuzz/libheapscope.a $(LIBS)

fuzz: fuzz-build
	@rm -rf build-fuzz/seeds; mkdir -p build-fuzz/seeds build-fuzz/corpus build-fuzz/crashes
	@ASAN_OPTIONS=detect_leaks=0 build-fuzz/make_seeds build-fuzz/seeds
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp build-fuzz/fuzz_core \
		-max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=2560 -max_len=131072 \
		-artifact_prefix=build-fuzz/crashes/ -print_final_stats=1 build-fuzz/corpus build-fuzz/seeds
	@BUILD=build cores/make-go-cores.sh go_maps go124_maps go_pools
	@rm -rf build-fuzz/go-seeds; mkdir -p build-fuzz/go-seeds build-fuzz/go-corpus
	@printf '\000' >build-fuzz/go-seeds/maps; printf '\001' >build-fuzz/go-seeds/swiss; \
		printf '\002' >build-fuzz/go-seeds/pools
	HS_FUZZ_GO_CORES=$(FUZZ_GO_CORES) LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
		build-fuzz/fuzz_go -max_total_time=$(FUZZ_GO_SECONDS) -timeout=20 -rss_limit_mb=2560 \
		-max_len=1024 -len_control=0 -artifact_prefix=build-fuzz/crashes/go- -print_final_stats=1 \
		build-fuzz/go-corpus build-fuzz/go-seeds

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
		$(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/heapscope/gdb/heapscope
	install -m 755 $(BUILD)/heapscope $(DESTDIR)$(PREFIX)/bin/heapscope
	install -m 644 $(BUILD)/libheapscope.a $(DESTDIR)$(PREFIX)/lib/libheapscope.a
	install -m 755 $(BUILD)/libheapscope.so $(DESTDIR)$(PREFIX)/lib/libheapscope.so.1
	ln -sf libheapscope.so.1 $(DESTDIR)$(PREFIX)/lib/libheapscope.so
	install -m 644 include/heapscope.h $(DESTDIR)$(PREFIX)/include/heapscope.h
	install -m 644 docs/heapscope.1 $(DESTDIR)$(PREFIX)/share/man/man1/heapscope.1
	if [ -f gdb/heapscope.py ]; then install -m 644 gdb/heapscope.py $(DESTDIR)$(PREFIX)/share/heapscope/gdb/; \
		cp -r gdb/heapscope/. $(DESTDIR)$(PREFIX)/share/heapscope/gdb/heapscope/; fi

clean:
	rm -rf build build-asan build-release build-fuzz
