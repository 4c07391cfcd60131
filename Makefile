# csvpipe -- PGXS build.
#
#   make            build the extension (as any user)
#   make install    install it into the PostgreSQL found by pg_config
#   make demo       install what is missing, build, install, and run the demo
#                   on a throwaway cluster (test/demo.sh)
#   make test       install what is missing, build, install, run pg_regress and
#                   the TAP tests on temporary clusters (test/run_tests.sh)
#   make bench-load the parallel load benchmark (test/bench/load.sh; not in make test)
#   make bench-cache the result cache benchmark (test/bench/cache.sh; not in make test)

MODULE_big = csvpipe
# src/ is grouped by layer (see doc/hacking.md, "Source layout"): every .c
# under it is a unit, and each layer folder is on the include path.
CSVPIPE_SRCDIRS = $(sort $(dir $(wildcard $(srcdir)/src/*.c $(srcdir)/src/*/*.c)))
OBJS = $(patsubst $(srcdir)/%.c,%.o,$(wildcard $(srcdir)/src/*.c $(srcdir)/src/*/*.c))

EXTENSION = csvpipe
DATA = $(wildcard sql/csvpipe--*.sql)

# pg_regress inputs live in sql/ beside the install scripts (see
# doc/hacking.md, "Source layout").
REGRESS = read_basic read_wild read_errors read_security fast_input load_serial cache
REGRESS_OPTS = --inputdir=.

PG_CPPFLAGS = $(addprefix -I,$(CSVPIPE_SRCDIRS))
SHLIB_LINK += -lcsv

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifeq ($(PGXS),)
# No server development files yet: only the self-installing targets work.
all install:
	@bash test/ensure_deps.sh && $(MAKE) $@
else
include $(PGXS)
endif

# every object depends on every header (PGXS does no dependency tracking)
$(OBJS): $(wildcard $(srcdir)/src/*.h $(srcdir)/src/*/*.h)

.PHONY: test demo deps bench bench-load bench-cache bench-badrows
deps:
	bash test/ensure_deps.sh

test:
	bash test/run_tests.sh

demo:
	bash test/demo.sh

bench:
	bash test/bench/read.sh

bench-load:
	bash test/bench/load.sh

bench-badrows:
	bash test/bench/badrows.sh

bench-cache:
	bash test/bench/cache.sh
