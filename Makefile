# Aegis build. Plain GNU make, objects out of tree, libraries through pkg-config.
#   make            build aegisd and aegisctl into build/
#   make run        install deps, build, create a dev PKI/config/db under var/, run aegisd on :8443
#   make test       install deps, build, run every test (ends with "N passed, N failed")
#   make check      the same suite under ASan+UBSan (build-asan/)
#   make format     clang-format every C file
#   make fuzz       fuzz the parsers with libFuzzer (clang, build-fuzz/), FUZZ_SECONDS each
BUILD    ?= build
SAN      ?=
FUZZ     ?=
PKGS     := libmicrohttpd gnutls openssl sqlite3 jansson libuv libsodium libcurl
CC       ?= cc
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror
HARDEN   := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
SANITIZE := -fsanitize=address,undefined
ifeq ($(SAN),1)
OPT      := -O1 -g -fno-omit-frame-pointer $(SANITIZE) -fno-sanitize-recover=undefined
HARDEN   := -fstack-protector-strong -fPIE
SAN_LD   := $(SANITIZE)
else ifeq ($(FUZZ),1)
CC       := clang
OPT      := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
            -fno-sanitize-recover=undefined
HARDEN   := -fPIE
SAN_LD   := $(SANITIZE)
else
OPT      := -O2 -g
SAN_LD   :=
endif
CPPFLAGS += -D_GNU_SOURCE -Iserver -Ipki -I$(BUILD)/gen
CFLAGS   += -std=c11 $(WARN) $(OPT) $(HARDEN) -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS  += -pie -Wl,-z,relro,-z,now $(SAN_LD)
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

# Code shared by the daemon, the CLI and the unit tests.
LIB_SRCS := server/config.c server/log.c server/util.c $(wildcard server/store*.c) server/auth.c \
            server/jsonx.c $(wildcard pki/*.c)
CTL_SRCS := server/aegisctl.c $(wildcard server/ctl_*.c)
# The daemon: every other file of server/.
DAEMON_SRCS := $(filter-out $(LIB_SRCS) $(CTL_SRCS),$(wildcard server/*.c))
# The reference device stack and the simulator never see server/ headers (only their own and ota/).
FW_SRCS := $(wildcard firmware-ref/*.c)
SIM_SRCS := $(wildcard device-sim/*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
SCHEMA := $(sort $(wildcard db/schema/*.sql))

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/gen/schema.o
FW_LIB := $(BUILD)/libaegisdev.a
FW_OBJS := $(FW_SRCS:%.c=$(BUILD)/%.o)
SIM_OBJS := $(SIM_SRCS:%.c=$(BUILD)/%.o)
DAEMON_OBJS := $(DAEMON_SRCS:%.c=$(BUILD)/%.o)
CTL_OBJS := $(CTL_SRCS:%.c=$(BUILD)/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tests/tools/%)
# Fuzz targets (fuzz/fuzz_*.c: LLVMFuzzerTestOneInput over a parser). In every build they are linked
# with fuzz/replay.c and tests/run.sh runs them over their seed corpus (fuzz/corpus/NAME/); with
# FUZZ=1 (make fuzz) they are libFuzzer binaries. They link the daemon without main() and without
# the file a target includes to reach static functions (FUZZ_INCLUDES).
FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_OBJS := $(filter-out $(BUILD)/server/main.o,$(DAEMON_OBJS)) $(LIB_OBJS)
FUZZ_SECONDS ?= 60

.PHONY: all run test check format lint deps clean unit bench fuzz
all: $(BUILD)/aegisd $(BUILD)/aegisctl $(if $(SIM_SRCS),$(BUILD)/aegis-sim)

$(BUILD)/firmware-ref/%.o $(BUILD)/device-sim/%.o: CPPFLAGS := -D_GNU_SOURCE -Ifirmware-ref -Idevice-sim -Iota

$(FW_LIB): $(FW_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/aegis-sim: $(SIM_OBJS) $(FW_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/aegisd: $(DAEMON_OBJS) $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/aegisctl: $(CTL_OBJS) $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests of the device stack (test_fw_*.c) see only firmware-ref/; the others see the service's code.
$(BUILD)/tests/test_fw_%: tests/unit/test_fw_%.c $(FW_LIB)
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -Ifirmware-ref -Iota $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $< $(FW_LIB) $(LDLIBS) $(CMOCKA_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS) $(CMOCKA_LIBS)

$(BUILD)/fuzz/fuzz_telemetry: FUZZ_INCLUDES := $(BUILD)/server/dev_telemetry.o
$(BUILD)/fuzz/%: fuzz/%.c fuzz/replay.c $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) $(if $(FUZZ),-fsanitize=fuzzer) \
	  -o $@ $< $(if $(FUZZ),,fuzz/replay.c) $(filter-out $(FUZZ_INCLUDES),$(FUZZ_OBJS)) $(LDLIBS)

$(BUILD)/tests/tools/%: tests/tools/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# Migrations are compiled into the binary, so a daemon always knows the newest schema it understands.
$(BUILD)/gen/schema.c: $(SCHEMA) db/embed.sh
	@mkdir -p $(dir $@)
	sh db/embed.sh $(SCHEMA) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/schema.o: $(BUILD)/gen/schema.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -c -o $@ $<

unit: $(UNIT_BINS) $(TOOL_BINS) $(FUZZ_BINS)

deps:
	@sh deploy/install-deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@sh deploy/dev-run.sh $(BUILD)

test: deps
	@$(MAKE) --no-print-directory all unit
	@sh tests/run.sh $(BUILD)

check: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 all unit
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  sh tests/run.sh build-asan

# Each target fuzz_NAME in turn for FUZZ_SECONDS, starting from its seed corpus fuzz/corpus/NAME/; new
# inputs go to build-fuzz/corpus/NAME/, crashes to build-fuzz/ (add a crash's input to the seed corpus
# once fixed, so every make test replays it).
fuzz: deps
	@command -v clang >/dev/null || { echo "make fuzz needs clang (apt-get install clang)"; exit 1; }
	@$(MAKE) --no-print-directory BUILD=build-fuzz FUZZ=1 $(FUZZ_SRCS:fuzz/%.c=build-fuzz/fuzz/%)
	@set -e; for f in $(FUZZ_SRCS:fuzz/fuzz_%.c=%); do \
	  mkdir -p build-fuzz/corpus/$$f; \
	  echo "== fuzz_$$f ($(FUZZ_SECONDS) s)"; \
	  build-fuzz/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	    -artifact_prefix=build-fuzz/fuzz_$$f- build-fuzz/corpus/$$f fuzz/corpus/$$f; \
	done

format:
	clang-format -i $(wildcard server/*.[ch] pki/*.[ch] firmware-ref/*.[ch] device-sim/*.[ch] \
	  ota/*.[ch] bench/*/*.c tests/unit/*.c tests/tools/*.c fuzz/*.c)

# Benchmark tools (bench/*/*.c), not part of make test: make bench, then bench/*/run.py.
BENCH_SRCS := $(wildcard bench/*/*.c)
bench: all $(BENCH_SRCS:%.c=$(BUILD)/%)

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

# Static analysis of the service and the device stack (zero warnings expected).
lint: $(BUILD)/gen/schema.c
	cppcheck --enable=warning,style,performance,portability --std=c11 --quiet --inline-suppr --error-exitcode=1 \
	  -D_GNU_SOURCE -Iserver -Ipki -Ifirmware-ref --suppress=missingIncludeSystem \
	  server/*.c pki/*.c $(FW_SRCS) $(SIM_SRCS)
	clang-tidy --quiet $(wildcard server/*.c pki/*.c) -- -std=c11 -D_GNU_SOURCE -Iserver -Ipki \
	  -I$(BUILD)/gen $(shell pkg-config --cflags $(PKGS))

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
