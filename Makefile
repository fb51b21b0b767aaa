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
	src/late_rows.o \
	src/standby_wait.o \
	src/intent.o \
	src/hive_path.o \
	src/ndjson.o \
	src/xml_response.o \
	src/http_request.o \
	src/sigv4.o \
	src/s3_client.o \
	src/s3_credentials.o \
	src/aws_credentials_answer.o \
	src/aws_web_identity.o \
	src/aws_container_credentials.o \
	src/aws_instance_metadata.o \
	src/compression.o \
	src/file_sink.o \
	src/fsync_together.o \
	src/sink.o \
	src/batch_receiver.o \
	src/tenant_export.o \
	src/tenant_queue.o \
	src/outcome_message.o \
	src/export_worker.o \
	src/worker_pool.o \
	src/export.o \
	src/export_status.o \
	src/metrics.o \
	src/lake_sweep.o \
	src/tenant_state.o \
	src/run_history.o \
	src/run_hand_off.o \
	src/partitions.o \
	src/cleanup.o

DATA = $(wildcard sql/install/$(EXTENSION)--*.sql)
# PostgreSQL 15 loads libraries with RTLD_GLOBAL: only the entry points it
# calls are exported (PGDLLEXPORT), so no other symbol can clash with
# another extension's.
PG_CPPFLAGS = -I$(srcdir)/include -isystem $(includedir_server) $(shell xml2-config --cflags) \
	-D'PGDLLEXPORT=__attribute__((visibility("default")))'
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
	-fvisibility=hidden
SHLIB_LINK = -ldeflate -lz -lzstd -luring -lcurl $(shell xml2-config --libs)

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/[0-9]*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=plpgsql
ISOLATION = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation/output
EXTRA_CLEAN = test/isolation/output test/tmp_check

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Fixed database names: file paths in the expected outputs name the database.
CONTRIB_TESTDB = interactions_cron_regress
ISOLATION_TESTDB = interactions_cron_isolation

# PGXS does not track header dependencies; a struct change must rebuild all.
$(OBJS): $(wildcard $(srcdir)/include/interactions_cron/*.h)

# The optional HTTP shim needs libmicrohttpd and libpq headers, the extension
# only the server headers, zlib, libdeflate, libzstd, liburing, libcurl and
# libxml2: `make shim` builds it, and `make` and `make install` build and
# install it too when its headers are there.
SHIM_HEADERS_PRESENT := $(shell printf '\043include <microhttpd.h>\n\043include <libpq-fe.h>\n' | \
	$(CC) -E -I$(shell $(PG_CONFIG) --includedir) - >/dev/null 2>&1 && echo yes)
# WITH_SHIM=no leaves it out (the Debian packaging builds it separately).
WITH_SHIM ?= $(SHIM_HEADERS_PRESENT)
ifeq ($(WITH_SHIM),yes)
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

# The TAP tests (test/t) start clusters of their own with
# PostgreSQL::Test::Cluster, so they are not part of installcheck, which runs
# against the server PG* names.  They run from test/, as PGXS's
# prove_installcheck would run them from the top directory; their data and
# logs go to test/tmp_check by absolute path (TESTDATADIR, TESTLOGDIR: from
# 17, a cluster's directory is relative without them).
prove_installcheck:
	rm -rf '$(abspath $(srcdir))/test/tmp_check'
	cd $(srcdir)/test && TESTDIR='$(abspath $(srcdir))/test' PATH="$(bindir):$$PATH" \
		TESTDATADIR='$(abspath $(srcdir))/test/tmp_check' TESTLOGDIR='$(abspath $(srcdir))/test/tmp_check/log' \
		PG_REGRESS='$(top_builddir)/src/test/regress/pg_regress' \
		$(PROVE) $(PG_PROVE_FLAGS) $(PROVE_FLAGS) $(if $(PROVE_TESTS),$(PROVE_TESTS),t/*.pl)

.PHONY: test demo bench shim install-shim clean-shim prove_installcheck
test:
	scripts/test.sh
demo:
	scripts/demo.sh
bench:
	scripts/bench.sh
