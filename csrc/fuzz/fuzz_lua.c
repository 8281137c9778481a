/* libFuzzer harness for the parsers of untrusted bytes written in Lua (the shared-config
 * INI reader, the credential providers' JSON answers, the STS XML extraction, the
 * HTTP/1.1 response parser). Built by .ci/run-fuzz once per target, with
 * -DFUZZ_LUA_ENTRY="<name>": the target loads csrc/fuzz/lua/<name>.lua, which returns a
 * function(data) that feeds `data` to one parser through its public API and checks that
 * parser's contract itself (a value or `nil, err` of the documented kind, the structural
 * invariants of the result), raising an error whose message starts with "contract:" when
 * it does not hold.
 *
 * Lua 5.4 is embedded with the project's module path (./lua, run from the repository
 * root or FUZZ_LUA_ROOT; FUZZ_LUA_PATH adds templates after it) and bedrock.core linked in
 * (package.preload), instrumented like the rest of the binary; C modules (cjson) come from
 * the system's package.cpath. Checked on every input:
 *   - the entry returns normally: a raw Lua error escaping a parser (or a broken
 *     contract) aborts with the Lua traceback;
 *   - memory stays bounded: the Lua allocator refuses to grow past FUZZ_LUA_MEM_MB
 *     (default 256 MiB) and a memory error is reported as a crash; after a full
 *     collection (every 256 inputs) the heap must come back under the level it had after
 *     the warm-up run plus a slack (no state accumulating across inputs);
 *   - time: libFuzzer's -timeout bounds each input; in addition a count hook aborts a
 *     single input that runs more than FUZZ_LUA_STEPS_PER_BYTE VM instructions per input
 *     byte (plus a constant), so a super-linear Lua loop shows up as a crash with its
 *     traceback rather than as a slow run; and one input may take at most
 *     FUZZ_LUA_MS (default 500) ms plus FUZZ_LUA_US_PER_BYTE (default 100) us per byte
 *     of CPU time (the thread's: a run descheduled on a busy machine does not count),
 *     which catches super-linear work inside C functions the hook does not see (a Lua
 *     pattern that backtracks, string.rep, table.concat).
 * Coverage: a line hook feeds the Lua lines run (as edges) to libFuzzer (see lua_edges). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

#ifndef FUZZ_LUA_ENTRY
#error "build with -DFUZZ_LUA_ENTRY=\"<entry name>\""
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
int luaopen_bedrock_core(lua_State *L);

static lua_State *L;
static int entry_ref = LUA_NOREF;
static size_t mem_used, mem_limit;
static size_t baseline_kb;
static long long steps, step_budget;

#define HOOK_EVERY 1000

static void *fuzz_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	(void)ud;
	if (ptr == NULL)
		osize = 0;
	if (nsize == 0) {
		free(ptr);
		mem_used -= osize;
		return NULL;
	}
	if (nsize > osize && mem_used + (nsize - osize) > mem_limit)
		return NULL;
	void *p = realloc(ptr, nsize);
	if (p != NULL)
		mem_used = mem_used - osize + nsize;
	return p;
}

/* Lua-level coverage for libFuzzer: the Lua VM's C code says little about which Lua
 * lines ran, so a line hook counts edges between consecutive (chunk, line) pairs in
 * libFuzzer's extra counters, which it takes as coverage features like its own. */
#define LUA_EDGES 65536
__attribute__((section("__libfuzzer_extra_counters")))
static uint8_t lua_edges[LUA_EDGES];
static uint32_t prev_loc;

static void count_hook(lua_State *l, lua_Debug *ar)
{
	if (ar->event == LUA_HOOKLINE) {
		if (lua_getinfo(l, "S", ar)) {
			uint32_t loc = (uint32_t)((uintptr_t)ar->source * 2654435761u) ^
				(uint32_t)ar->currentline * 40503u;
			loc = (loc ^ (loc >> 15)) & (LUA_EDGES - 1);
			uint8_t *c = &lua_edges[loc ^ prev_loc];
			if (*c < 255)
				(*c)++;
			prev_loc = loc >> 1;
		}
		return;
	}
	steps += HOOK_EVERY;
	if (step_budget > 0 && steps > step_budget)
		luaL_error(l, "contract: more than %lld VM instructions for one input (super-linear?)",
			step_budget);
}

static int traceback(lua_State *l)
{
	const char *msg = lua_tostring(l, 1);
	if (msg == NULL)
		msg = luaL_tolstring(l, 1, NULL);
	luaL_traceback(l, l, msg, 1);
	return 1;
}

/* Runs the entry on data; aborts on any error. */
static void run(const uint8_t *data, size_t size)
{
	lua_settop(L, 0);
	lua_pushcfunction(L, traceback);
	lua_rawgeti(L, LUA_REGISTRYINDEX, entry_ref);
	lua_pushlstring(L, (const char *)data, size);
	steps = 0;
	step_budget = 0;
	prev_loc = 0;
	{
		const char *s = getenv("FUZZ_LUA_STEPS_PER_BYTE");
		long long per = s ? atoll(s) : 20000;
		if (per > 0)
			step_budget = 5000000LL + per * (long long)size;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	int st = lua_pcall(L, 1, 0, 1);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	if (st != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		fprintf(stderr, "fuzz_lua(%s): %s: %s\n", FUZZ_LUA_ENTRY,
			st == LUA_ERRMEM ? "memory limit reached" : "Lua error escaped",
			msg ? msg : "(no message)");
		abort();
	}
	{
		const char *ms = getenv("FUZZ_LUA_MS"), *us = getenv("FUZZ_LUA_US_PER_BYTE");
		double took = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
		double limit = (ms ? atof(ms) : 500.0) + (us ? atof(us) : 100.0) * (double)size / 1e3;
		if (took > limit) {
			fprintf(stderr, "fuzz_lua(%s): %zu bytes took %.0f ms of CPU (limit %.0f ms): super-linear?\n",
				FUZZ_LUA_ENTRY, size, took, limit);
			abort();
		}
	}
	lua_settop(L, 0);
}

/* At exit: the state is closed so that the entries' finalizers remove their files. */
static void close_state(void)
{
	if (L != NULL) {
		lua_sethook(L, NULL, 0, 0);
		lua_close(L);
		L = NULL;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *root = getenv("FUZZ_LUA_ROOT");
	const char *mb = getenv("FUZZ_LUA_MEM_MB");
	char path[4096];

	if (root == NULL || *root == '\0')
		root = ".";
	mem_limit = (size_t)(mb ? atol(mb) : 256) * 1024 * 1024;
	L = lua_newstate(fuzz_alloc, NULL);
	if (L == NULL) {
		fprintf(stderr, "fuzz_lua: cannot create a Lua state\n");
		abort();
	}
	luaL_openlibs(L);
	atexit(close_state);
	lua_sethook(L, count_hook, LUA_MASKCOUNT | LUA_MASKLINE, HOOK_EVERY);
	/* package.path: the project's modules and the fuzz entries; bedrock.core preloaded */
	lua_getglobal(L, "package");
	{
		/* FUZZ_LUA_PATH: more templates searched after the project's (";"-separated) */
		const char *extra = getenv("FUZZ_LUA_PATH");
		snprintf(path, sizeof path, "%s/lua/?.lua;%s/lua/?/init.lua;%s/csrc/fuzz/lua/?.lua%s%s", root, root,
			root, extra ? ";" : "", extra ? extra : "");
	}
	lua_pushstring(L, path);
	lua_setfield(L, -2, "path");
	lua_getfield(L, -1, "preload");
	lua_pushcfunction(L, luaopen_bedrock_core);
	lua_setfield(L, -2, "bedrock.core");
	lua_pop(L, 2);

	lua_pushcfunction(L, traceback);
	snprintf(path, sizeof path, "%s/csrc/fuzz/lua/%s.lua", root, FUZZ_LUA_ENTRY);
	if (luaL_loadfile(L, path) != LUA_OK || lua_pcall(L, 0, 1, 1) != LUA_OK || !lua_isfunction(L, -1)) {
		fprintf(stderr, "fuzz_lua: %s does not load or return a function: %s\n", path,
			lua_tostring(L, -1));
		abort();
	}
	entry_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_settop(L, 0);
	/* warm-up: modules loaded lazily by the parsers are in before the baseline */
	run((const uint8_t *)"", 0);
	run((const uint8_t *)"\0[x]\na=1\n", 10);
	lua_gc(L, LUA_GCCOLLECT, 0);
	baseline_kb = (size_t)lua_gc(L, LUA_GCCOUNT, 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned long n;

	run(data, size);
	/* a full collection costs as much as the loaded modules weigh: every 256 inputs */
	if (++n % 256 != 0)
		return 0;
	lua_gc(L, LUA_GCCOLLECT, 0);
	size_t kb = (size_t)lua_gc(L, LUA_GCCOUNT, 0);
	/* slack: caches with a fixed bound (patterns, endpoints) may fill up over a run */
	if (kb > baseline_kb + 8192) {
		fprintf(stderr, "fuzz_lua(%s): the Lua heap grew from %zu KiB to %zu KiB across inputs\n",
			FUZZ_LUA_ENTRY, baseline_kb, kb);
		abort();
	}
	return 0;
}
