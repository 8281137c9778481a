/* In-memory transport and main.c globals for the emulator fuzz targets (emu_fuzz_io.c). */
#ifndef EMU_FUZZ_IO_H
#define EMU_FUZZ_IO_H

#include <stddef.h>
#include <stdint.h>
#include "emulator/server.h"

/* Next reads return in[0..n) in slices of at most `slice` bytes, then end of stream;
 * clears the collected output. */
void emu_fuzz_io_reset(const uint8_t *in, size_t n, size_t slice);
/* Bytes of the input not read yet. */
size_t emu_fuzz_io_unread(void);
/* What srv_io_write received since the last reset (capped at 1 MiB). */
extern br_buf emu_fuzz_out;
/* srv_stopping() answer: 1 makes srv_sleep_ms return at once (no pacing, no stalls). */
void emu_fuzz_set_stopping(int on);

#endif
