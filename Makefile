# abtest: A/B testing inside PostgreSQL (PGXS).
#
#   make / make install      build and install the extension
#   make unit                build and run the GoogleTest unit tests of the core
#   bash scripts/test.sh     everything: unit, pg_regress, isolation, TAP (own cluster)

EXTENSION = abtest
MODULE_big = abtest
DATA = $(wildcard abtest--*.sql)

CORE_SRCS = $(sort $(wildcard src/core/*.cpp))
# The glue by role: sql/ (SQL entry points), shmem/ (shared memory), worker/ (the flush
# worker and what it runs), catalog/ (the catalog and each backend's compiled copy),
# outcomes/ (analysis of the application's tables), branches/ (a branch's settings and
# the transaction that entered it), hooks/ (executor and utility hooks),
# merge/ (the counters of several primaries, merged for an analysis).
GLUE_SRCS = $(sort $(wildcard src/glue/*.cpp src/glue/*/*.cpp))
CORE_OBJS = $(CORE_SRCS:.cpp=.o)
OBJS = $(CORE_OBJS) $(GLUE_SRCS:.cpp=.o)

# Tests are discovered, not listed: one pg_regress file per topic, one spec per race.
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --load-extension=abtest
ISOLATION = $(patsubst specs/%.spec,%,$(sort $(wildcard specs/*.spec)))
ISOLATION_OPTS = --load-extension=abtest

PG_CPPFLAGS = -Isrc
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Wno-register -Wno-unused-parameter -Wno-missing-field-initializers
SHLIB_LINK = -lstdc++

# The C++ is not built as LLVM bitcode: JIT inlining of C++ bodies buys nothing here.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The core is compiled without PostgreSQL's include paths: a PostgreSQL header
# included anywhere under src/core/ fails the build (the header firewall).
CORE_CXXFLAGS = -std=c++17 -O2 -g -fPIC -Wall -Wextra -Wpedantic -Wshadow -Isrc $(ABTEST_SANITIZE)
src/core/%.o: src/core/%.cpp $(wildcard src/core/*.hpp)
	$(CXX) $(CORE_CXXFLAGS) -c -o $@ $<

$(GLUE_SRCS:.cpp=.o): $(wildcard src/core/*.hpp src/glue/*.hpp src/glue/*/*.hpp)

UNIT_SRCS = $(sort $(wildcard test/unit/*.cpp))
UNIT_BIN = test/unit/run_unit_tests
$(UNIT_BIN): $(UNIT_SRCS) $(CORE_OBJS) $(wildcard src/core/*.hpp)
	$(CXX) $(CORE_CXXFLAGS) -o $@ $(UNIT_SRCS) $(CORE_OBJS) -lgtest -lgtest_main -pthread

.PHONY: unit
unit: $(UNIT_BIN)
	./$(UNIT_BIN) $(UNIT_ARGS)

EXTRA_CLEAN = $(UNIT_BIN) results/ output_iso/ regression.diffs regression.out tmp_check/
include mk/sanitize.mk
