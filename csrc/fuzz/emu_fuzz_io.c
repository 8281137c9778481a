/* Test double for the emulator's server half in the fuzz targets (not a fuzz target
 * itself): the globals main.c owns (srv_cfg, emu_cfg, srv_stopping) and an in-memory
 * srv_io (srv_io.c is not linked) that reads the fuzz input in slices of a chosen size
 * and collects what the server writes. Linked with every emulator source except main.c
 * and srv_io.c. */
#include <string.h>
#include "emu_fuzz_io.h"

srv_config srv_cfg;
emu_config emu_cfg = { .default_region = "us-east-1" };

static const uint8_t *g_in;
static size_t g_len, g_pos, g_slice = 1;
static int g_stopping;
br_buf emu_fuzz_out = BR_BUF_INIT;

int srv_stopping(void)
{
	return g_stopping;
}

void emu_fuzz_set_stopping(int on)
{
	g_stopping = on;
}

void emu_fuzz_io_reset(const uint8_t *in, size_t n, size_t slice)
{
	g_in = in;
	g_len = n;
	g_pos = 0;
	g_slice = slice ? slice : 1;
	br_buf_reset(&emu_fuzz_out);
}

size_t emu_fuzz_io_unread(void)
{
	return g_len - g_pos;
}

long srv_io_read(srv_io *io, void *p, size_t n)
{
	size_t k = g_len - g_pos;
	if (io->dead) return -1;
	if (k == 0) return 0;              /* the peer closed its side */
	if (k > n) k = n;
	if (k > g_slice) k = g_slice;
	memcpy(p, g_in + g_pos, k);
	g_pos += k;
	return (long)k;
}

int srv_io_write(srv_io *io, const void *p, size_t n)
{
	if (io->dead) return -1;
	/* keep at most 1 MiB of output (the peer is reading) */
	if (emu_fuzz_out.len < (1u << 20)) br_buf_append(&emu_fuzz_out, p, n);
	return 0;
}

int srv_io_pending(srv_io *io)
{
	(void)io;
	return 0;
}

int srv_io_wait_readable(srv_io *io, int ms)
{
	(void)ms;
	return io->dead ? -1 : 1;          /* data or end of stream: never blocks */
}

void srv_io_abort(srv_io *io)
{
	io->dead = 1;
}
