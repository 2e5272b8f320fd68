# Sanitizer and fuzzing builds of the core (included at the end of the Makefile).
#
#   make unit-sanitize        the GoogleTest unit tests under ASan + UBSan + LSan
#   make fuzz                 every libFuzzer target in test/fuzz/, FUZZ_SECONDS each
#   make fuzz-build           build the fuzz targets only
#
# Everything here is compiled into build/ (objects) and test/*/ binaries of its own:
# nothing is shared with the -O2 objects that go into abtest.so. Sources are found by
# wildcard, so a new src/core/*.cpp, test/unit/*.cpp or test/fuzz/fuzz_*.cpp is picked
# up without editing this file. Only the core is built (no PostgreSQL headers).

SAN_CXX ?= clang++
SAN_DIR = build/sanitize
FUZZ_DIR = build/fuzz

SAN_SANITIZE = -fsanitize=address,undefined -fno-sanitize-recover=all
SAN_CXXFLAGS = -std=c++17 -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Isrc $(SAN_SANITIZE)
# LeakSanitizer works in this environment (checked with clang++ 14 and g++ 12), so it is on.
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

SAN_CORE_SRCS = $(sort $(wildcard src/core/*.cpp))
SAN_CORE_HDRS = $(wildcard src/core/*.hpp)
SAN_UNIT_SRCS = $(sort $(wildcard test/unit/*.cpp))
SAN_CORE_OBJS = $(patsubst %.cpp,$(SAN_DIR)/%.o,$(SAN_CORE_SRCS))
SAN_UNIT_OBJS = $(patsubst %.cpp,$(SAN_DIR)/%.o,$(SAN_UNIT_SRCS))
SAN_UNIT_BIN = test/unit/run_unit_tests_sanitized

$(SAN_DIR)/%.o: %.cpp $(SAN_CORE_HDRS)
	@mkdir -p $(dir $@)
	$(SAN_CXX) $(SAN_CXXFLAGS) -c -o $@ $<

$(SAN_UNIT_BIN): $(SAN_UNIT_OBJS) $(SAN_CORE_OBJS)
	$(SAN_CXX) $(SAN_CXXFLAGS) -o $@ $^ -lgtest -lgtest_main -pthread

.PHONY: unit-sanitize
unit-sanitize: $(SAN_UNIT_BIN)
	$(SAN_ENV) ./$(SAN_UNIT_BIN) $(UNIT_ARGS)

# --- libFuzzer -------------------------------------------------------------------
# Needs clang++ (libclang-rt-14-dev provides the fuzzer, ASan and UBSan runtimes).

FUZZ_CXX ?= clang++
FUZZ_SECONDS ?= 20
FUZZ_MAX_LEN ?= 4096
FUZZ_ARGS ?=
FUZZ_CXXFLAGS = -std=c++17 -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Isrc \
                -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_SRCS = $(sort $(wildcard test/fuzz/fuzz_*.cpp))
FUZZ_TARGETS = $(patsubst test/fuzz/%.cpp,%,$(FUZZ_SRCS))
FUZZ_BINS = $(patsubst %,test/fuzz/%,$(FUZZ_TARGETS))
FUZZ_CORE_OBJS = $(patsubst %.cpp,$(FUZZ_DIR)/%.o,$(SAN_CORE_SRCS))
FUZZ_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# The core is instrumented for coverage (fuzzer-no-link); only the targets link libFuzzer.
$(FUZZ_DIR)/%.o: %.cpp $(SAN_CORE_HDRS) $(wildcard test/fuzz/*.hpp)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BINS): test/fuzz/%: $(FUZZ_DIR)/test/fuzz/%.o $(FUZZ_CORE_OBJS)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer -o $@ $^

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

# Each target runs for FUZZ_SECONDS on a scratch copy of its seed corpus (the checked-in
# seeds stay small); a crash, leak, timeout or sanitizer report leaves its reproducer in
# build/fuzz/artifacts/<target>/ and fails the run after all targets have had their turn.
fuzz: $(FUZZ_BINS)
	@failed=""; \
	for t in $(FUZZ_TARGETS); do \
	  work=$(FUZZ_DIR)/corpus/$$t; art=$(FUZZ_DIR)/artifacts/$$t; log=$(FUZZ_DIR)/$$t.log; \
	  mkdir -p $$work $$art; \
	  echo "== $$t: $(FUZZ_SECONDS)s"; \
	  if $(FUZZ_ENV) ./test/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN) \
	       -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$$art/ \
	       $$(if [ -f test/fuzz/$$t.dict ]; then echo -dict=test/fuzz/$$t.dict; fi) $(FUZZ_ARGS) \
	       $$work test/fuzz/corpus/$$t >$$log 2>&1; then \
	    echo "   $$t: $$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second\(s\)' $$log | tail -1)" \
	         "($$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' $$log | grep -Eo '[0-9]+$$') exec/s)"; \
	  else \
	    echo "   $$t: FAILED, see $$log and $$art/"; \
	    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|FINDING)' $$log | head -5 | sed 's/^/     /'; \
	    failed="$$failed $$t"; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: findings in:$$failed"; exit 1; fi; \
	echo "fuzz: no findings"

EXTRA_CLEAN += build/ $(SAN_UNIT_BIN) $(FUZZ_BINS)

# --- the extension with its core under UBSan --------------------------------------
# For pg_regress against a server running it (scripts/test.sh, stage "sanitized"). It
# rebuilds the core's objects, so run it in a scratch copy of the tree. UBSan only:
# with the ASan runtime preloaded (gcc 12 and clang 14 alike) the postmaster hangs or
# dies before it opens its socket (a deadlock in glibc's bindtextdomain), so ASan
# covers the core through the unit tests and the fuzz targets instead.
SANITIZED_EXTENSION_FLAGS = -fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

.PHONY: sanitized-extension
sanitized-extension:
	$(MAKE) ABTEST_SANITIZE="$(SANITIZED_EXTENSION_FLAGS)" SHLIB_LINK="-lstdc++ -fsanitize=undefined"
