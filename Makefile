# lua-bedrock build. `make` builds bedrock.core for Lua 5.4 and the emulator;
# `make LUA=luajit` builds the same sources against LuaJIT (outputs never overlap:
# build/<lua>/bedrock/core.so). See README.md for the other targets.

LUA        ?= lua5.4
PKG_CONFIG ?= pkg-config
CC         ?= cc

ifeq ($(LUA),luajit)
  LUA_PC := luajit
else
  LUA_PC := lua5.4
endif

ifeq ($(SAN),1)
  TAG      := asan-$(LUA)
  BIN      := build/asan/bin
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  OPT      := -O1
else
  TAG      := $(LUA)
  BIN      := build/bin
  SANFLAGS :=
  OPT      := -O2
endif

BUILD   := build/$(TAG)
CFLAGS  ?= $(OPT) -g
WARN    := -Wall -Wextra -pedantic -Wshadow -Wmissing-prototypes -Wstrict-prototypes
BASE_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -fPIC -MMD -MP $(WARN) $(SANFLAGS) $(CFLAGS)

LUA_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(LUA_PC) 2>/dev/null)
DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags libcurl openssl 2>/dev/null)
CORE_LIBS  := $(shell $(PKG_CONFIG) --libs libcurl openssl 2>/dev/null || echo -lcurl -lssl -lcrypto)
EMU_LIBS   := $(shell $(PKG_CONFIG) --libs libnghttp2 openssl 2>/dev/null || echo -lnghttp2 -lssl -lcrypto) -lpthread -lm

CORE_SRC := $(wildcard csrc/br_*.c)
BIND_SRC := $(wildcard csrc/lua_*.c)
EMU_SRC  := $(wildcard csrc/emulator/*.c)
CORE_OBJ := $(CORE_SRC:csrc/%.c=$(BUILD)/obj/%.o)
BIND_OBJ := $(BIND_SRC:csrc/%.c=$(BUILD)/obj/%.o)
EMU_OBJ  := $(EMU_SRC:csrc/%.c=$(BUILD)/obj/%.o)

MODULE   := $(BUILD)/bedrock/core.so
EMULATOR := $(BIN)/bedrock-emulator

.PHONY: all module emulator test deps specs asan valgrind soak fuzz bench demo interop clean lint model apidoc

all: module emulator
module: $(MODULE)
emulator: $(EMULATOR)

$(BUILD)/obj/%.o: csrc/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(DEP_CFLAGS) -Icsrc -c $< -o $@

$(BIND_OBJ): $(BUILD)/obj/%.o: csrc/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(LUA_CFLAGS) -Icsrc -c $< -o $@

$(MODULE): $(CORE_OBJ) $(BIND_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared $(SANFLAGS) -o $@ $^ $(CORE_LIBS)

# The service model (csrc/model/, shared with the Lua client) is embedded in the emulator
# as a byte array (od + sed, no new tools).
EMU_MODEL_OBJ := $(BUILD)/obj/emulator/model_data.o
$(BUILD)/gen/model_data.c: csrc/model/bedrock-runtime.model.json
	@mkdir -p $(dir $@)
	{ echo '#include "emulator/model.h"'; echo 'const unsigned char emu_model_json[] = {'; \
	  od -An -v -tx1 $< | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; echo '0x00};'; \
	  echo 'const size_t emu_model_json_len = sizeof emu_model_json - 1;'; } > $@.tmp && mv $@.tmp $@
$(EMU_MODEL_OBJ): $(BUILD)/gen/model_data.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -Icsrc -c $< -o $@

$(EMULATOR): $(EMU_OBJ) $(EMU_MODEL_OBJ) $(filter-out $(BUILD)/obj/br_http.o,$(CORE_OBJ))
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(EMU_LIBS) $(CORE_LIBS)

# Everything the tests need, from the project's own install step, then both suites.
test: deps
	$(MAKE) LUA=lua5.4 all
	$(MAKE) LUA=luajit module
	$(MAKE) lint
	.ci/run-specs --exclude-tags=soak

deps:
	@.ci/install-deps

specs:
	.ci/run-specs

# The whole suite with AddressSanitizer + UBSan in the module and the emulator. The Lua
# interpreters are not instrumented, so the ASan runtime is preloaded.
asan:
	$(MAKE) SAN=1 LUA=lua5.4 all
	$(MAKE) SAN=1 LUA=luajit module
	BEDROCK_SAN=1 .ci/run-specs --exclude-tags=soak

valgrind: all
	BEDROCK_VALGRIND=1 .ci/run-specs

# The soak spec (about a minute per Lua and half a minute through nginx), apart from
# `make test` to keep that under ten minutes on two cores (CI, .ci/run, runs `make test`,
# `make asan` and a short `make fuzz`):
# BEDROCK_SOAK_SEED=<n> replays a run, BEDROCK_SOAK_SECONDS=<s> changes its length.
soak: all
	$(MAKE) LUA=luajit module
	.ci/run-specs --tags=soak spec/soak_spec.lua

fuzz:
	.ci/run-fuzz

bench:
	$(MAKE) LUA=lua5.4 all
	$(MAKE) LUA=luajit module
	$(MAKE) -C bench

# Like `make test`, the demo installs what it needs first: it must work on a fresh machine.
demo: deps
	$(MAKE) LUA=lua5.4 all
	.ci/run-demo

interop: all
	.ci/run-interop

# Takes a new botocore model (data/bedrock-runtime/<api-version>/service-2.json, or .json.gz)
# and refreshes every file generated from it; see csrc/model/README.md.
model:
	@test -n "$(MODEL)" || { echo "usage: make model MODEL=path/to/service-2.json[.gz]" >&2; exit 2; }
	lua5.4 .ci/gen-model.lua "$(MODEL)"

# docs/api.md, the API reference, from the doc comments of lua/bedrock/ and the model
# (spec/apidoc_spec.lua fails when the committed file is not what this writes).
apidoc: module
	LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH="./$(BUILD)/?.so;;" $(LUA) .ci/apidoc.lua docs/api.md

lint:
	luacheck -q $(wildcard lua spec bench examples csrc/fuzz/lua)

clean:
	rm -rf build
	$(MAKE) -C bench clean 2>/dev/null || true

-include $(wildcard build/*/obj/*.d build/*/obj/*/*.d)
