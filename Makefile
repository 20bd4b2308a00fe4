# fd — build, test, demo, install.
#   make            release build: binaries in bin/
#   make check      sanitizer build in build/asan/, then unit + bats tests
#   make demo       a local 3-node cluster, shown and stopped
#   make install    PREFIX=/usr/local DESTDIR=
PKG_CONFIG ?= pkg-config
PKGS       := libcurl json-c libmicrohttpd gnutls openssl libzstd libcares zlib
CC         ?= cc
PREFIX     ?= /usr/local
VERSION    := $(shell cat VERSION)

# V=1 shows the full commands.
ifeq ($(V),1)
Q :=
else
Q := @
endif

MODE ?= release
ifeq ($(MODE),asan)
O       := build/asan
BINDIR  := $(O)/bin
OPT     := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
O       := build/release
BINDIR  := bin
OPT     := -O2 -g
endif

WARN := -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes -Wvla \
	-Wwrite-strings -Wformat=2 -Wshadow -fno-common
DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
DEP_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS := -std=gnu11 $(OPT) $(WARN) -D_GNU_SOURCE -DFD_VERSION='"$(VERSION)"' \
	-Ilibcommon $(DEP_CFLAGS) $(CFLAGS)
ALL_LDFLAGS := $(OPT) $(LDFLAGS)
LIBS := -lm $(DEP_LIBS)

LIB_SRC  := $(wildcard libcommon/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(O)/%.o)
LIB      := $(O)/libfdcommon.a
CMDS     := $(patsubst cmd/%/main.c,%,$(wildcard cmd/fd-*/main.c))
BINS     := $(CMDS:%=$(BINDIR)/%)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(O)/tests/%)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(O)/tests/%)

.PHONY: all build-all check demo install clean lint fuzz deps
.SUFFIXES:
.SECONDARY:
.SECONDEXPANSION:

all: $(BINS)

build-all: $(BINS) $(UNIT_BIN) $(TOOL_BIN)

$(O)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	@$(if $(Q),echo "  AR      $@")
	$(Q)$(AR) rcs $@ $^

# One rule links every binary from its own folder's objects and the library.
$(BINDIR)/fd-%: $$(addprefix $(O)/,$$(subst .c,.o,$$(wildcard cmd/fd-$$*/*.c))) $(LIB)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(O)/tests/test_%: $(O)/tests/unit/test_%.o $(O)/tests/unit/unit.o $(LIB)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(O)/tests/%: $(O)/tests/tools/%.o $(LIB)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

deps:
	@scripts/install-deps

check: deps
	@$(MAKE) --no-print-directory MODE=asan build-all
	@scripts/run-tests build/asan

demo: deps
	@$(MAKE) --no-print-directory all
	@examples/demo.sh

fuzz: deps
	@scripts/run-fuzz

lint:
	@clang-format --dry-run --Werror libcommon/*.[ch] cmd/*/*.[ch] tests/unit/*.[ch] tests/tools/*.c tests/fuzz/*.c
	@cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
		--suppress=missingIncludeSystem --include=tests/cppcheck-macros.h \
		--suppress=ctunullpointer:libcommon/loop.c -Ilibcommon libcommon cmd tests/unit
	@shellcheck -x scripts/* examples/*.sh .ci/run tests/cli/helpers/*.bash

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man7 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions \
		$(DESTDIR)$(PREFIX)/share/zsh/site-functions
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 man/*.7 $(DESTDIR)$(PREFIX)/share/man/man7/
	install -m 644 completions/bash/* $(DESTDIR)$(PREFIX)/share/bash-completion/completions/
	install -m 644 completions/zsh/* $(DESTDIR)$(PREFIX)/share/zsh/site-functions/

clean:
	rm -rf build bin

-include $(shell find $(O) -name '*.d' 2>/dev/null)
