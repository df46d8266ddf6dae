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
PKGS     := libmicrohttpd gnutls openssl sqlite3 jansson libuv libsodium libcurl libseccomp
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
CPPFLAGS += -D_GNU_SOURCE
CFLAGS   += -std=c11 $(WARN) $(OPT) $(HARDEN) -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS  += -pie -Wl,-z,relro,-z,now $(SAN_LD)
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

# --- Layers: one folder, one static library, lowest first (docs/architecture.md). A folder's files
# are compiled with the include paths of the layers it may use, and no other; tests/check_layers.py
# (run by make test) checks the same table for every #include. A binary links the libraries it
# needs, and the linker takes from each only the objects that something references.
#   layer        folder(s)                      may include
INC_lib       := lib
INC_proto     := proto lib
INC_ota       := ota proto lib
INC_pki       := pki ota proto lib
INC_signer    := signer pki ota proto lib
INC_core      := server lib
INC_store     := server/store proto lib
INC_http      := server/http server/store server signer pki ota proto lib
INC_update    := server/update server/store server signer pki ota proto lib
INC_device    := server/device server/update server/http server/store server signer pki ota proto lib
INC_api       := server/api server/update server/http server/store server signer pki ota proto lib
INC_daemon    := server server/api server/device server/update server/http server/store signer pki ota proto lib
INC_cli       := cli server/store server pki ota proto lib
INC_fw        := firmware-ref ota proto lib
INC_sim       := device-sim firmware-ref ota proto lib
# Unit tests and fuzz targets see the layers they test (test_fw_*: only the device's).
INC_test      := $(INC_daemon) $(BUILD)/gen
INC_fwtest    := $(INC_fw)

SRCS_lib    := $(wildcard lib/*.c)
SRCS_proto  := $(wildcard proto/*.c)
SRCS_ota    := $(wildcard ota/*.c)
SRCS_pki    := $(wildcard pki/*.c)
SRCS_signer := $(wildcard signer/*.c)
SRCS_core   := server/config.c server/metrics.c server/isolate.c server/sdnotify.c
SRCS_store  := $(wildcard server/store/*.c)
SRCS_http   := $(wildcard server/http/*.c)
SRCS_update := $(wildcard server/update/*.c)
SRCS_device := $(wildcard server/device/*.c)
SRCS_api    := $(wildcard server/api/*.c)
SRCS_daemon := server/main.c server/cron.c server/routes.c server/config_check.c
SRCS_cli    := $(wildcard cli/*.c)
SRCS_fw     := $(wildcard firmware-ref/*.c)
SRCS_sim    := $(wildcard device-sim/*.c)

lib_of = $(BUILD)/libaegis_$(1).a
objs_of = $(SRCS_$(1):%.c=$(BUILD)/%.o)
# Per-object include paths: every object of a layer gets that layer's -I list.
$(foreach L,lib proto ota pki signer core store http update device api daemon cli fw sim,\
  $(eval $(call objs_of,$(L)): LAYER_INC := $(INC_$(L))))

LIB_lib    := $(call lib_of,lib)
LIB_proto  := $(call lib_of,proto)
LIB_ota    := $(if $(SRCS_ota),$(call lib_of,ota))
LIB_pki    := $(call lib_of,pki)
LIB_signer := $(call lib_of,signer)
LIB_core   := $(call lib_of,core)
LIB_store  := $(call lib_of,store)
LIB_http   := $(call lib_of,http)
LIB_update := $(if $(SRCS_update),$(call lib_of,update))
LIB_device := $(call lib_of,device)
LIB_api    := $(call lib_of,api)
FW_LIB     := $(BUILD)/libaegisdev.a

$(LIB_lib): $(call objs_of,lib)
$(LIB_proto): $(call objs_of,proto)
$(LIB_ota): $(call objs_of,ota)
$(LIB_pki): $(call objs_of,pki)
$(LIB_signer): $(call objs_of,signer)
$(LIB_core): $(call objs_of,core)
$(LIB_store): $(call objs_of,store) $(BUILD)/gen/schema.o
$(LIB_http): $(call objs_of,http)
$(LIB_update): $(call objs_of,update)
$(LIB_device): $(call objs_of,device)
$(LIB_api): $(call objs_of,api) $(BUILD)/gen/openapi.o $(BUILD)/gen/ui.o
$(FW_LIB): $(call objs_of,fw)
$(BUILD)/%.a:
	@rm -f $@
	ar rcs $@ $^

# Link order: highest layer first.
BASE_LIBS   := $(LIB_proto) $(LIB_lib)
SERVER_LIBS := $(LIB_api) $(LIB_device) $(LIB_update) $(LIB_http) $(LIB_store) $(LIB_core) $(LIB_signer) $(LIB_pki) $(LIB_ota) $(BASE_LIBS)
CLI_LIBS    := $(LIB_store) $(LIB_core) $(LIB_pki) $(LIB_ota) $(BASE_LIBS)
DEV_LIBS    := $(FW_LIB) $(LIB_ota) $(BASE_LIBS)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
SCHEMA := $(sort $(wildcard db/schema/*.sql))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tests/tools/%)
# Fuzz targets (fuzz/fuzz_*.c: LLVMFuzzerTestOneInput over a parser). In every build they are linked
# with fuzz/replay.c and tests/run.sh runs them over their seed corpus (fuzz/corpus/NAME/); with
# FUZZ=1 (make fuzz) they are libFuzzer binaries. They link the libraries, as the daemon does.
FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SECONDS ?= 60
# LD_PRELOAD fault injection for the integration tests (tests/tools/preload/NAME.c -> NAME.so), built
# without sanitizers: the daemon loads it ahead of their runtime.
PRELOAD_LIBS := $(patsubst tests/tools/preload/%.c,$(BUILD)/tests/tools/%.so,$(wildcard tests/tools/preload/*.c))

.PHONY: all run test check format lint deps clean unit bench fuzz layers ui-test install systemd-test compose-test \
        demo uninstall
all: $(BUILD)/aegisd $(BUILD)/aegisctl $(BUILD)/aegis-sim

$(BUILD)/aegisd: $(call objs_of,daemon) $(SERVER_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/aegisctl: $(call objs_of,cli) $(CLI_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/aegis-sim: $(call objs_of,sim) $(DEV_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests of the device stack (test_fw_*.c) see only the device's layers; the others the service's.
$(BUILD)/tests/test_fw_%: tests/unit/test_fw_%.c $(DEV_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(addprefix -I,$(INC_fwtest)) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) \
	  -o $@ $< $(DEV_LIBS) $(LDLIBS) $(CMOCKA_LIBS)

# Unit tests of the CLI (test_ctl_*.c) see the CLI's layers and link its objects (all but main's,
# as a library: each test takes only what it uses).
LIB_cli := $(call lib_of,cli)
$(LIB_cli): $(filter-out $(BUILD)/cli/aegisctl.o,$(call objs_of,cli))
$(BUILD)/tests/test_ctl_%: tests/unit/test_ctl_%.c $(LIB_cli) $(CLI_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(addprefix -I,$(INC_cli)) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) \
	  -o $@ $< $(LIB_cli) $(CLI_LIBS) $(LDLIBS) $(CMOCKA_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(SERVER_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(addprefix -I,$(INC_test)) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) \
	  -o $@ $< $(SERVER_LIBS) $(LDLIBS) $(CMOCKA_LIBS)

$(BUILD)/fuzz/%: fuzz/%.c fuzz/replay.c $(SERVER_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(addprefix -I,$(INC_test)) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) \
	  $(if $(FUZZ),-fsanitize=fuzzer) -o $@ $< $(if $(FUZZ),,fuzz/replay.c) $(SERVER_LIBS) $(LDLIBS)

$(BUILD)/tests/tools/%: tests/tools/%.c $(SERVER_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(addprefix -I,$(INC_test)) $(CFLAGS) $(LDFLAGS) -o $@ $< $(SERVER_LIBS) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(addprefix -I,$(LAYER_INC)) $(CFLAGS) -c -o $@ $<

# Migrations are compiled into the binary, so a daemon always knows the newest schema it understands.
$(BUILD)/gen/schema.c: $(SCHEMA) db/embed.sh
	@mkdir -p $(dir $@)
	sh db/embed.sh $(SCHEMA) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/schema.o: $(BUILD)/gen/schema.c
	$(CC) $(CPPFLAGS) -Iserver/store $(CFLAGS) -Wno-missing-prototypes -c -o $@ $<

# So is the API's description, served as GET /openapi.yaml.
$(BUILD)/gen/openapi.c: docs/openapi.yaml server/api/embed_text.sh
	@mkdir -p $(dir $@)
	sh server/api/embed_text.sh openapi_yaml docs/openapi.yaml > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/openapi.o: $(BUILD)/gen/openapi.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# And the dashboard's files (ui/), served under /ui/.
UI_FILES := $(shell find ui -type f ! -name '.*' 2>/dev/null)
$(BUILD)/gen/ui.c: $(UI_FILES) server/api/embed_ui.sh
	@mkdir -p $(dir $@)
	sh server/api/embed_ui.sh ui > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/ui.o: $(BUILD)/gen/ui.c
	$(CC) $(CPPFLAGS) $(addprefix -I,$(INC_api)) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/tools/%.so: tests/tools/preload/%.c
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -std=c11 $(WARN) -O2 -g -fPIC -shared -o $@ $< -ldl -lpthread

unit: $(UNIT_BINS) $(TOOL_BINS) $(FUZZ_BINS) $(PRELOAD_LIBS)

deps:
	@sh deploy/install-deps.sh

# `make run PORT=9443` serves on another port (default 8443); everything it prints follows it.
PORT ?= 8443
run: deps
	@$(MAKE) --no-print-directory all
	@PORT=$(PORT) sh deploy/dev-run.sh $(BUILD)

# The layer rules of the include graph (tests/check_layers.py), also run by tests/run.sh.
layers:
	@python3 tests/check_layers.py

test: deps
	@$(MAKE) --no-print-directory all unit
	@sh tests/run.sh $(BUILD)

# The dashboard in headless chromium (opt-in; CI runs it after make test): Debian's chromium when missing, the
# pinned puppeteer-core and axe-core (npm ci in tests/ui/), then tests/ui/test_dashboard.py. Screenshots go to
# $(BUILD)/ui-test/; UPDATE_SCREENSHOTS=1 also copies them to docs/screenshots/.
ui-test: deps
	@$(MAKE) --no-print-directory all unit
	@command -v chromium >/dev/null || apt-get install -y -qq --no-install-recommends chromium >/dev/null
	@AEGIS_BUILD=$(BUILD) python3 tests/ui/test_dashboard.py

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

C_DIRS := lib proto ota pki signer server server/http server/device server/api server/store cli firmware-ref \
          device-sim
ALL_C := $(foreach d,$(C_DIRS),$(wildcard $(d)/*.c))
format:
	clang-format -i $(foreach d,$(C_DIRS),$(wildcard $(d)/*.[ch])) bench/*/*.c tests/unit/*.c \
	  tests/tools/*.c tests/tools/preload/*.c fuzz/*.c

# Benchmark tools (bench/*/*.c), not part of make test: make bench, then bench/*/run.py.
BENCH_SRCS := $(wildcard bench/*/*.c)
bench: all $(BENCH_SRCS:%.c=$(BUILD)/%)

# They are device-side clients: they may use the device stack (firmware-ref/ and below).
$(BUILD)/bench/%: bench/%.c $(DEV_LIBS)
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE $(CFLAGS) $(addprefix -I,$(INC_fw)) $(LDFLAGS) -o $@ $< $(DEV_LIBS) $(LDLIBS)

# Static analysis of the service and the device stack (zero warnings expected).
# Each file is analysed with its own layer's include paths.
SERVICE_C := $(filter-out firmware-ref/% device-sim/%,$(ALL_C))
lint: $(BUILD)/gen/schema.c
	cppcheck --enable=warning,style,performance,portability --std=c11 --quiet --inline-suppr --error-exitcode=1 \
	  -D_GNU_SOURCE $(addprefix -I,$(INC_daemon) $(INC_cli) $(INC_sim)) --suppress=missingIncludeSystem \
	  $(ALL_C)
	@set -e; for L in lib proto ota pki signer core store http update device api daemon cli; do \
	  case $$L in lib) f="$(SRCS_lib)"; i="$(INC_lib)";; proto) f="$(SRCS_proto)"; i="$(INC_proto)";; \
	  ota) f="$(SRCS_ota)"; i="$(INC_ota)";; pki) f="$(SRCS_pki)"; i="$(INC_pki)";; \
	  signer) f="$(SRCS_signer)"; i="$(INC_signer)";; \
	  core) f="$(SRCS_core)"; i="$(INC_core)";; store) f="$(SRCS_store)"; i="$(INC_store)";; \
	  http) f="$(SRCS_http)"; i="$(INC_http)";; update) f="$(SRCS_update)"; i="$(INC_update)";; \
	  device) f="$(SRCS_device)"; i="$(INC_device)";; \
	  api) f="$(SRCS_api)"; i="$(INC_api)";; daemon) f="$(SRCS_daemon)"; i="$(INC_daemon)";; \
	  cli) f="$(SRCS_cli)"; i="$(INC_cli)";; esac; \
	  [ -z "$$f" ] && continue; echo "clang-tidy $$L"; \
	  clang-tidy --quiet $$f -- -std=c11 -D_GNU_SOURCE $$(for d in $$i; do printf ' -I%s' $$d; done) \
	    -I$(BUILD)/gen $(shell pkg-config --cflags $(PKGS)); done

clean:
	rm -rf build build-asan build-fuzz

# Installs for an operator (docs/operations.md "Installing"): binaries, the systemd unit with its user and
# directories, the configuration (the example, with key_isolation = required, only when none is there: an
# existing one is never overwritten), the man pages in docs/man/, bash and zsh completions, the reference docs.
# PREFIX and the *DIR variables choose where; DESTDIR stages it all under a root (packaging).
PREFIX         ?= /usr/local
BINDIR         ?= $(PREFIX)/bin
SBINDIR        ?= $(PREFIX)/sbin
MANDIR         ?= $(PREFIX)/share/man
DOCDIR         ?= $(PREFIX)/share/doc/aegis
SYSCONFDIR     ?= /etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR    ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR    ?= $(PREFIX)/lib/tmpfiles.d
BASHCOMPDIR    ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR     ?= $(PREFIX)/share/zsh/site-functions
INSTALL        ?= install
MAN1 := $(wildcard docs/man/*.1)
MAN8 := $(wildcard docs/man/*.8)
install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
	  $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(SYSCONFDIR)/aegis $(DESTDIR)$(DOCDIR) $(DESTDIR)$(BASHCOMPDIR) \
	  $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8
	$(INSTALL) -m 0755 $(BUILD)/aegisd $(DESTDIR)$(SBINDIR)/aegisd
	$(INSTALL) -m 0755 $(BUILD)/aegisctl $(BUILD)/aegis-sim $(DESTDIR)$(BINDIR)/
	sed -e 's|/usr/local/sbin/|$(SBINDIR)/|g' -e 's|/etc/aegis/|$(SYSCONFDIR)/aegis/|g' \
	  -e 's|/usr/local/share/doc/aegis/|$(DOCDIR)/|g' deploy/systemd/aegisd.service \
	  > $(DESTDIR)$(SYSTEMDUNITDIR)/aegisd.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/aegisd.service
	$(INSTALL) -m 0644 deploy/systemd/aegis.sysusers $(DESTDIR)$(SYSUSERSDIR)/aegis.conf
	$(INSTALL) -m 0644 deploy/systemd/aegis.tmpfiles $(DESTDIR)$(TMPFILESDIR)/aegis.conf
	$(INSTALL) -d $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	$(INSTALL) -m 0644 deploy/logrotate/aegis $(DESTDIR)$(SYSCONFDIR)/logrotate.d/aegis
	$(INSTALL) -m 0644 deploy/aegisd.conf README.md docs/operations.md $(DESTDIR)$(DOCDIR)/
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/aegis/aegisd.conf ]; then \
	  echo "kept $(DESTDIR)$(SYSCONFDIR)/aegis/aegisd.conf (the new reference: $(DOCDIR)/aegisd.conf)"; \
	else \
	  sed -e 's|^key_isolation = auto$$|key_isolation = required|' deploy/aegisd.conf \
	    > $(DESTDIR)$(SYSCONFDIR)/aegis/aegisd.conf && chmod 0644 $(DESTDIR)$(SYSCONFDIR)/aegis/aegisd.conf && \
	  echo "installed $(DESTDIR)$(SYSCONFDIR)/aegis/aegisd.conf"; \
	fi
	$(if $(MAN1),$(INSTALL) -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/)
	$(if $(MAN8),$(INSTALL) -m 0644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/)
	$(BUILD)/aegisctl completion bash > $(DESTDIR)$(BASHCOMPDIR)/aegisctl
	$(BUILD)/aegisctl completion zsh > $(DESTDIR)$(ZSHCOMPDIR)/_aegisctl
	@echo "next (once): systemd-sysusers; systemd-tmpfiles --create aegis.conf; systemctl daemon-reload;" \
	  "then the PKI and a tenant as aegis (docs/operations.md \"Running under systemd\")"

# Removes what install put, with the same PREFIX/DESTDIR/*DIR; keeps the configuration
# (SYSCONFDIR/aegis/aegisd.conf) and the service's state (/var/lib/aegis, /var/log/aegis, the user aegis).
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/aegisd $(DESTDIR)$(BINDIR)/aegisctl $(DESTDIR)$(BINDIR)/aegis-sim \
	  $(DESTDIR)$(SYSTEMDUNITDIR)/aegisd.service $(DESTDIR)$(SYSUSERSDIR)/aegis.conf \
	  $(DESTDIR)$(TMPFILESDIR)/aegis.conf $(DESTDIR)$(SYSCONFDIR)/logrotate.d/aegis \
	  $(DESTDIR)$(BASHCOMPDIR)/aegisctl $(DESTDIR)$(ZSHCOMPDIR)/_aegisctl \
	  $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1))) $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8)))
	rm -rf $(DESTDIR)$(DOCDIR)
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/aegis/aegisd.conf and the service's data (/var/lib/aegis, /var/log/aegis)"

# aegisd under a real systemd booted in a podman container (opt-in, a few minutes; CI runs it): make install in
# it, start (Type=notify), attest a simulated device, reload, stop with the drain, systemd-analyze verify and
# the exposure score (tests/deploy/test_systemd.sh).
systemd-test: deps
	@$(MAKE) --no-print-directory all
	@sh tests/deploy/test_systemd.sh $(BUILD)

# deploy/docker-compose.yml run for real (docs/operations.md "Containers"): the image built with podman,
# docker-compose 1.29 through podman's socket, 3 fleet replicas checked through the API, then down -v.
# Opt-in (needs root and a few minutes); CI runs it.
compose-test:
	. tests/deploy/podman-env.sh || exit 1; python3 tests/deploy/test_compose.py

# A fresh service and a simulated fleet of 1,000 devices, start to finish (deploy/demo.sh): attestation,
# failure reports, a rollout in waves and a bad release the service halts by itself; exits non-zero when any
# figure read back from the API is not what it should be. DEVICES=N for another fleet size.
demo: deps
	@$(MAKE) --no-print-directory -j$(shell nproc 2>/dev/null || echo 2) all
	@sh deploy/demo.sh $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
