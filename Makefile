# modeld — build, run, test. `make run` and `make test` install missing Debian packages
# first (make deps), so a fresh Debian 12 machine needs nothing else.

MODE     ?= release
BUILD    := build/$(MODE)
CC       ?= cc
PKGS     := libmicrohttpd libuv libcjson
PYTHON   := /usr/bin/python3

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wvla -Wno-format-nonliteral
CFLAGS   := -std=c11 -D_GNU_SOURCE -g $(WARN) -MMD -MP -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

ifeq ($(MODE),release)
CFLAGS   += -O2
else ifeq ($(MODE),asan)
CFLAGS   += -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=address,undefined
else ifeq ($(MODE),tsan)
CFLAGS   += -O1 -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=thread
else ifeq ($(MODE),libfuzzer)
# The library instrumented for `make fuzz`: coverage for libFuzzer, ASan+UBSan.
CC       := clang
CFLAGS   += -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=address,undefined
endif

LIB_SRC  := $(filter-out server/main.c,$(wildcard server/*.c handlers/*.c models/*.c models/*/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Fuzz targets tests/fuzz/fuzz_<name>.c, corpus in tests/fuzz/corpus/<name>/. make test-unit
# replays each corpus through the target (linked with tests/fuzz/replay.c, no libFuzzer);
# make fuzz runs each target under libFuzzer (clang) for FUZZ_SECONDS.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%-replay)
FUZZ_SECONDS ?= 60

# Debian packages the build, the tests and the benchmarks need. npm (for the test that runs
# the official `openai` client) is installed as Debian's package only when no npm is on
# PATH: a Node.js that ships its own npm conflicts with it.
DEB_PKGS := build-essential pkg-config libmicrohttpd-dev libuv1-dev libcjson-dev \
            python3 python3-pytest python3-sentencepiece python3-protobuf python3-regex python3-sklearn python3-numpy python3-xgboost curl prometheus wrk nginx-light valgrind python3-yaml python3-jsonschema nodejs

.PHONY: all deps run test test-unit test-e2e asan tsan valgrind bench clean fuzz

all: build/modeld

build/modeld: $(BUILD)/modeld
	@if [ "$(MODE)" = release ]; then cp $< $@; fi

$(BUILD)/modeld: $(BUILD)/server/main.o $(BUILD)/libmodeld.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libmodeld.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libmodeld.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmodeld.a $(LDLIBS)

# Runs models/eval on rows from a file for tests/eval (metrics vs scikit-learn).
$(BUILD)/tests/eval_driver: tests/eval/eval_driver.c $(BUILD)/libmodeld.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmodeld.a $(LDLIBS)

# Runs models/transformer/tokenizer on commands from stdin for tests/tokenizer (ids vs
# python3-sentencepiece and a Python GPT-2 reference).
$(BUILD)/tests/tok_driver: tests/tokenizer/tok_driver.c $(BUILD)/libmodeld.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmodeld.a $(LDLIBS)

# Only `make fuzz` needs these (libFuzzer ships in clang's runtime package).
FUZZ_PKGS := clang libclang-rt-14-dev

deps:
	@missing=""; for p in $(DEB_PKGS) $(EXTRA_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

run: deps
	$(MAKE) all
	./build/modeld --config conf/modeld.json

test: deps
	$(MAKE) all
	$(MAKE) test-unit
	$(MAKE) test-e2e

test-unit: $(UNIT_BIN) $(FUZZ_REPLAY)
	@tests/unit/run.sh $(UNIT_BIN)
	@for b in $(FUZZ_REPLAY); do n=$${b##*/}; n=$${n%-replay}; \
	  $$b tests/fuzz/corpus/$${n#fuzz_} || exit 1; done

$(BUILD)/fuzz/%-replay: tests/fuzz/%.c tests/fuzz/replay.c $(BUILD)/libmodeld.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< tests/fuzz/replay.c $(BUILD)/libmodeld.a $(LDLIBS)

# Each target links the whole library built with MODE=libfuzzer (clang, coverage, ASan and
# UBSan). FUZZ_ONLY=<name> runs one target; FUZZ_JOBS=<n> runs that many at once.
FUZZ_ONLY ?=
FUZZ_TARGETS := $(if $(FUZZ_ONLY),tests/fuzz/fuzz_$(FUZZ_ONLY).c,$(FUZZ_SRC))
fuzz:
	@$(MAKE) --no-print-directory deps EXTRA_PKGS="$(FUZZ_PKGS)"
	@$(MAKE) --no-print-directory MODE=libfuzzer build/libfuzzer/libmodeld.a
	@mkdir -p build/fuzz
	@for src in $(FUZZ_TARGETS); do n=$${src##*/}; n=$${n%.c}; \
	  dict=""; [ -f tests/fuzz/$${n#fuzz_}.dict ] && dict="-dict=tests/fuzz/$${n#fuzz_}.dict"; \
	  clang -std=c11 -D_GNU_SOURCE -g -O1 -I. -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=all -o build/fuzz/$$n $$src build/libfuzzer/libmodeld.a $(LDLIBS) \
	  || exit 1; mkdir -p build/fuzz/corpus-$$n; \
	  build/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 $$dict \
	    -artifact_prefix=build/fuzz/$$n- build/fuzz/corpus-$$n tests/fuzz/corpus/$${n#fuzz_} || exit 1; done

test-e2e: $(BUILD)/modeld $(BUILD)/tests/eval_driver $(BUILD)/tests/tok_driver
	MODELD_BIN=$(BUILD)/modeld EVAL_DRIVER=$(BUILD)/tests/eval_driver TOK_DRIVER=$(BUILD)/tests/tok_driver \
	  $(PYTHON) -m pytest -q $(E2E_ARGS) tests/e2e tests/eval tests/tokenizer

asan: deps
	$(MAKE) MODE=asan test-unit test-e2e

# ThreadSanitizer: the loop/worker boundary and the refcounts. A report in a daemon's
# stderr fails its end-to-end test (tests/e2e/conftest.py). Left out: the RSS-flatness
# test (TSan's own shadow memory and history grow with every thread a reload starts) and
# the test_slow_* generation tests (minutes each at TSan's speed), and the tokenizer's
# test_encode_speed bounds (milliseconds for 100 kB; TSan is several times slower).
tsan: deps
	$(MAKE) MODE=tsan E2E_ARGS='-k "not test_500_reloads_keep_memory_flat and not test_slow_ and not test_encode_speed"' test-unit test-e2e

# The end-to-end suite with every daemon under valgrind; a leak or memory error fails the
# test (exit 97). The drain-under-load test is left out: its 8 clients cannot get going
# within its deadlines at valgrind's speed (make test and make asan run it); so are the
# test_slow_* generation tests, whose 30 MB model loads too slowly under valgrind.
valgrind: deps
	$(MAKE) all
	MODELD_BIN=$(BUILD)/modeld MODELD_WRAPPER="valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=97" \
	  $(PYTHON) -m pytest -q tests/e2e -k "not test_drain_loses_no_request and not test_slow_"

bench: deps
	$(MAKE) all
	bench/run.sh

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(BUILD)/server/main.d
