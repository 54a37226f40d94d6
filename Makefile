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

SRC = edge.c conf.c proxyv2.c resolve.c
OBJ = edge.o conf.o proxyv2.o resolve.o
UNIT = test/unit/conf_test test/unit/pp2_test

all: edge

edge: $(OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(OBJ) $(LDLIBS)

$(OBJ): edge.h Makefile

static:
	$(MUSL_CC) $(CPPFLAGS) $(CFLAGS) -Os -g0 -static -s -o edge $(SRC) $(LDLIBS)
	@echo "edge: static, $$(wc -c < edge) bytes"

test/unit/conf_test: test/unit/conf_test.c conf.c proxyv2.c edge.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ test/unit/conf_test.c conf.c proxyv2.c

test/unit/pp2_test: test/unit/pp2_test.c proxyv2.c edge.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ test/unit/pp2_test.c proxyv2.c

unit: $(UNIT)
	for t in $(UNIT); do ./$$t || exit 1; done

test: edge unit
	sh test/run test/

check-werror:
	$(MAKE) clean
	$(MAKE) CC=gcc CFLAGS="$(CFLAGS) -Werror" edge $(UNIT)
	$(MAKE) clean
	$(MAKE) CC=clang CFLAGS="$(CFLAGS) -Werror" edge $(UNIT)

install: edge
	mkdir -p $(DESTDIR)$(PREFIX)/bin
	cp edge $(DESTDIR)$(PREFIX)/bin/edge
	chmod 755 $(DESTDIR)$(PREFIX)/bin/edge

clean:
	rm -f edge $(OBJ) $(UNIT)

.PHONY: all static unit test check-werror install clean
