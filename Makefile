.POSIX:
# edge: `make` builds ./edge, `make test` runs the suite, `make static`
# builds a stripped static musl binary.  Local overrides go in config.mk.
PREFIX   = /usr/local
CC       = cc
MUSL_CC  = musl-gcc
CPPFLAGS = -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
CFLAGS   = -std=c99 -O2 -g -Wall -Wextra -Wpedantic -Wshadow
LDFLAGS  =
LDLIBS   = -lpthread
-include config.mk

SRC = edge.c status.c poll.c handover.c conn.c listen.c stats.c iptab.c rate.c buf.c pipes.c resolve.c sys.c log.c notify.c conf.c proxyv2.c sni.c val.c nets.c addr.c
OBJ = edge.o status.o poll.o handover.o conn.o listen.o stats.o iptab.o rate.o buf.o pipes.o resolve.o sys.o log.o notify.o conf.o proxyv2.o sni.o val.o nets.o addr.o
# The layers, top first: a file calls only files on later layers
# (test/layers.sh checks it from the objects' symbols), and exports only
# names with its prefix.
LAYERS = edge / status poll handover / conn / listen / stats iptab rate buf pipes resolve / \
	notify / sys log / conf proxyv2 sni / nets / val / addr
PREFIXES = edge:edge_ status:status_ poll:poll_ handover:handover_ conn:conn_ listen:listen_ \
	stats:stats_ iptab:iptab_ rate:rate_ buf:buf_ pipes:pipes_ resolve:resolve_ sys:sys_ log:log_ notify:notify_ \
	conf:conf_ proxyv2:pp_,pp1_,pp2_ sni:sni_ val:val_ nets:nets_ addr:sa_,cidr_
STATIC = edge
UNIT = test/unit/conf_test test/unit/pp2_test test/unit/sni_test
REPLAY = fuzz/conf_replay fuzz/sni_replay fuzz/pp_replay fuzz/nets_replay
FUZZ_CC = clang
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

all: edge

edge: $(OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(OBJ) $(LDLIBS)

$(OBJ): edge.h Makefile

# A stripped static binary (STATIC=path to write it elsewhere): no unwind
# tables (C without exceptions), unused functions dropped, and the headers
# and read-only data sharing the code's pages instead of each padded to a
# page of its own (-z noseparate-code: 8 KB of padding in a 150 KB file),
# and no RELRO segment: a static musl binary never makes it read-only
# (/proc/PID/maps shows it rw-p), so it bought 4 KB of padding and nothing.
# A -static link is not position-independent whatever the compiler's
# default, so -fno-pie: code compiled for PIE (Debian's gcc default) only
# costs GOT indirections there, about 900 bytes.
STATIC_FLAGS = -Os -g0 -static -s -fno-pie -fno-asynchronous-unwind-tables \
	-ffunction-sections -fdata-sections -Wl,--gc-sections \
	-Wl,-z,noseparate-code -Wl,-z,norelro
static:
	$(MUSL_CC) $(CPPFLAGS) $(CFLAGS) $(STATIC_FLAGS) -o $(STATIC) $(SRC) $(LDLIBS)
	@echo "$(STATIC): static, $$(wc -c < $(STATIC)) bytes"

test/unit/conf_test: test/unit/conf_test.c conf.c val.c nets.c addr.c edge.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ test/unit/conf_test.c conf.c val.c nets.c addr.c

test/unit/pp2_test: test/unit/pp2_test.c proxyv2.c addr.c edge.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ test/unit/pp2_test.c proxyv2.c addr.c

test/unit/sni_test: test/unit/sni_test.c sni.c edge.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ test/unit/sni_test.c sni.c

fuzz/conf_replay: fuzz/conf.c fuzz/replay.c conf.c val.c nets.c addr.c edge.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ fuzz/conf.c fuzz/replay.c conf.c val.c nets.c addr.c

fuzz/conf_fuzz: fuzz/conf.c conf.c val.c nets.c addr.c edge.h
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -o $@ fuzz/conf.c conf.c val.c nets.c addr.c

fuzz/sni_replay: fuzz/sni.c fuzz/replay.c sni.c edge.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ fuzz/sni.c fuzz/replay.c sni.c

fuzz/sni_fuzz: fuzz/sni.c sni.c edge.h
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -o $@ fuzz/sni.c sni.c

fuzz/pp_replay: fuzz/pp.c fuzz/replay.c proxyv2.c addr.c edge.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ fuzz/pp.c fuzz/replay.c proxyv2.c addr.c

fuzz/pp_fuzz: fuzz/pp.c proxyv2.c addr.c edge.h
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -o $@ fuzz/pp.c proxyv2.c addr.c

fuzz/nets_replay: fuzz/nets.c fuzz/replay.c nets.c val.c addr.c edge.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ fuzz/nets.c fuzz/replay.c nets.c val.c addr.c

fuzz/nets_fuzz: fuzz/nets.c nets.c val.c addr.c edge.h
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -o $@ fuzz/nets.c nets.c val.c addr.c

# Build the libFuzzer targets; run one with e.g.
#   fuzz/sni_fuzz -max_total_time=600 fuzz/corpus/sni
fuzz: fuzz/conf_fuzz fuzz/sni_fuzz fuzz/pp_fuzz fuzz/nets_fuzz

unit: $(UNIT) $(REPLAY)
	for t in $(UNIT); do ./$$t || exit 1; done
	fuzz/conf_replay fuzz/corpus/conf/*
	fuzz/sni_replay fuzz/corpus/sni/*
	fuzz/pp_replay fuzz/corpus/pp/*
	fuzz/nets_replay fuzz/corpus/nets/*

check-layers: $(OBJ)
	sh test/layers.sh "$(LAYERS)" "$(PREFIXES)"

test: edge unit check-layers bench/load
	sh test/run test/

# The whole suite again with the Linux relay paths compiled out (splice(2),
# and POLLRDHUP for a FIN seen by poll()): the portable read/write path
# that every other system runs.
test-nosplice:
	$(MAKE) clean
	$(MAKE) CPPFLAGS="$(CPPFLAGS) -DNO_SPLICE -DNO_RDHUP" edge unit check-layers bench/load
	EDGE_NO_SPLICE=1 sh test/run test/
	$(MAKE) clean

check-werror:
	$(MAKE) clean
	$(MAKE) CC=gcc CFLAGS="$(CFLAGS) -Werror" edge $(UNIT) $(REPLAY)
	$(MAKE) clean
	$(MAKE) CC=clang CFLAGS="$(CFLAGS) -Werror" edge $(UNIT) $(REPLAY)

# The binary (dynamic, or static after `make static`), the sample config
# and README as documentation, and the systemd units (the service pointing
# at this PREFIX, the optional socket unit).
install:
	test -x edge || $(MAKE) edge
	mkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/doc/edge \
	    $(DESTDIR)$(PREFIX)/lib/systemd/system
	cp edge $(DESTDIR)$(PREFIX)/bin/edge
	chmod 755 $(DESTDIR)$(PREFIX)/bin/edge
	cp edge.conf README.md $(DESTDIR)$(PREFIX)/share/doc/edge/
	sed 's|/usr/local/|$(PREFIX)/|g' edge.service \
	    > $(DESTDIR)$(PREFIX)/lib/systemd/system/edge.service
	cp edge.socket $(DESTDIR)$(PREFIX)/lib/systemd/system/edge.socket

clean:
	rm -f edge $(OBJ) $(UNIT) $(REPLAY) fuzz/conf_fuzz fuzz/sni_fuzz \
	    fuzz/pp_fuzz fuzz/nets_fuzz \
	    bench/load bench/edge
	rm -rf bench/old

# The benchmark (bench/run): edge's static build against HAProxy and nginx.
bench/load: bench/load.c
	$(CC) -O2 -Wall -o $@ bench/load.c

bench: bench/load
	$(MAKE) static STATIC=bench/edge
	EDGE=bench/edge bench/run --out bench/last-run.md

# An A/B of two builds in one run: this tree against OLD (a git revision).
OLD = HEAD
bench-ab: bench/load
	$(MAKE) static STATIC=bench/edge
	rm -rf bench/old && mkdir bench/old
	git archive $(OLD) | tar -x -C bench/old
	$(MAKE) -C bench/old static STATIC=edge
	EDGE=bench/edge EDGE_OLD=bench/old/edge bench/run --out bench/last-run.md

bench-quick: bench/load
	$(MAKE) static STATIC=bench/edge
	EDGE=bench/edge bench/run --quick --out bench/last-run.md

.PHONY: all static unit fuzz check-layers test test-nosplice check-werror install clean bench bench-ab bench-quick
