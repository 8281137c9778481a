/* See br_file.h. */
#include "br_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

br_status br_file_replace(const char *path, const void *data, size_t n, int *err_no)
{
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 12);
	const char *p = data;
	int fd, e = 0;

	*err_no = 0;
	if (!tmp) return BR_NOMEM;
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp.XXXXXX", 12);
	fd = mkstemp(tmp);
	if (fd < 0) {
		*err_no = errno;
		free(tmp);
		return BR_IO;
	}
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR) continue;
			e = errno;
			break;
		}
		p += w;
		n -= (size_t)w;
	}
	if (!e && fsync(fd) != 0) e = errno;
	if (close(fd) != 0 && !e) e = errno;
	if (!e && rename(tmp, path) != 0) e = errno;
	if (e) {
		unlink(tmp);
		*err_no = e;
	}
	free(tmp);
	return e ? BR_IO : BR_OK;
}

br_status br_file_mkdir_p(const char *dir, unsigned mode, int *err_no)
{
	size_t n = strlen(dir);
	char *p = malloc(n + 1);
	struct stat st;

	*err_no = 0;
	if (!p) return BR_NOMEM;
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0') continue;
		char c = p[i];
		p[i] = '\0';
		if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST) {
			*err_no = errno;
			free(p);
			return BR_IO;
		}
		p[i] = c;
	}
	if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
		*err_no = errno ? errno : ENOTDIR;
		free(p);
		return BR_IO;
	}
	free(p);
	return BR_OK;
}
