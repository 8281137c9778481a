/* Replacing a small file whole, for the credential caches: readers see the old content
 * or the new, never half of it, and the file is private to its owner. Plain C (POSIX). */
#ifndef BR_FILE_H
#define BR_FILE_H

#include <stddef.h>
#include "br_errors.h"

/* Writes data to a new temporary file beside path (mode 0600, as mkstemp makes it),
 * flushes it to disk and renames it over path. BR_IO with *err_no set (errno) when a
 * step fails; the temporary file is then removed. */
br_status br_file_replace(const char *path, const void *data, size_t n, int *err_no);

/* Creates dir and its missing parents with mode (umask applies); an existing directory
 * is fine. BR_IO with *err_no set when a step fails. */
br_status br_file_mkdir_p(const char *dir, unsigned mode, int *err_no);

#endif
