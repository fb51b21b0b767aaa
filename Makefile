# interactions_cron: PGXS build.
EXTENSION = interactions_cron
MODULE_big = interactions_cron
OBJS = \
	src/interactions_cron.o \
	src/guc.o \
	src/relations.o \
	src/tenants.o \
	src/watermark.o \
	src/subtransaction.o \
	src/spi_plans.o \
	src/preconditions.o \
	src/checkpoint.o \
	src/intent.o \
	src/hive_path.o \
	src/ndjson.o \
	src/s3_client.o \
	src/s3_credentials.o \
	src/file_sink.o \
	src/sink.o \
	src/batch_receiver.o \
	src/tenant_export.o \
	src/outcome_message.o \
	src/export_worker.o \
	src/worker_pool.o \
	src/export.o \
	src/export_status.o \
	src/run_history.o \
	src/partitions.o \
	src/cleanup.o

DATA = $(wildcard sql/install/$(EXTENSION)--*.sql)
# PostgreSQL 15 loads libraries with RTLD_GLOBAL: only the entry points it
# calls are exported (PGDLLEXPORT), so no other symbol can clash with
# another extension's.
PG_CPPFLAGS = -I$(srcdir)/include -isystem $(includedir_server) \
	-D'PGDLLEXPORT=__attribute__((visibility("default")))'
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
	-fvisibility=hidden
SHLIB_LINK = -lz -lcurl

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/[0-9]*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=plpgsql
ISOLATION = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation/output

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track header dependencies; a struct change must rebuild all.
$(OBJS): $(wildcard $(srcdir)/include/interactions_cron/*.h)

# The optional HTTP shim needs libmicrohttpd and libpq headers, the extension
# only the server headers, zlib and libcurl: `make shim` builds it, and `make`
# and `make install` build and install it too when its headers are there.
SHIM_HEADERS_PRESENT := $(shell printf '\043include <microhttpd.h>\n\043include <libpq-fe.h>\n' | \
	$(CC) -E -I$(shell $(PG_CONFIG) --includedir) - >/dev/null 2>&1 && echo yes)
ifeq ($(SHIM_HEADERS_PRESENT),yes)
all: shim
install: install-shim
endif
clean: clean-shim
shim:
	$(MAKE) -C $(srcdir)/http PG_CONFIG=$(PG_CONFIG)
install-shim: shim
	$(MAKE) -C $(srcdir)/http install PG_CONFIG=$(PG_CONFIG)
clean-shim:
	$(MAKE) -C $(srcdir)/http clean

.PHONY: test demo bench shim install-shim clean-shim
test:
	scripts/test.sh
demo:
	scripts/demo.sh
bench:
	scripts/bench.sh
