/* Blocking reads and writes over a plain socket or a TLS session, and the few socket
 * tricks the faults need (abortive close). */
#include "server.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

long srv_io_read(srv_io *io, void *p, size_t n)
{
	if (io->dead) return -1;
	if (io->ssl) {
		int want = n > 1 << 30 ? 1 << 30 : (int)n;
		for (;;) {
			int r = SSL_read(io->ssl, p, want);
			if (r > 0) return r;
			int e = SSL_get_error(io->ssl, r);
			if (e == SSL_ERROR_ZERO_RETURN) return 0;
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
			if (e == SSL_ERROR_SYSCALL && r == 0) return 0;
			return -1;
		}
	}
	for (;;) {
		ssize_t r = recv(io->fd, p, n, 0);
		if (r >= 0) return (long)r;
		if (errno == EINTR) continue;
		return -1;
	}
}

int srv_io_write(srv_io *io, const void *p, size_t n)
{
	const uint8_t *b = p;
	if (io->dead) return -1;
	while (n > 0) {
		if (io->ssl) {
			int chunk = n > 1 << 20 ? 1 << 20 : (int)n;
			int r = SSL_write(io->ssl, b, chunk);
			if (r <= 0) {
				int e = SSL_get_error(io->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) continue;
				io->dead = 1;
				return -1;
			}
			b += r;
			n -= (size_t)r;
		} else {
			ssize_t r = send(io->fd, b, n, MSG_NOSIGNAL);
			if (r < 0) {
				if (errno == EINTR) continue;
				io->dead = 1;
				return -1;
			}
			b += r;
			n -= (size_t)r;
		}
	}
	return 0;
}

int srv_io_pending(srv_io *io)
{
	return io->ssl && SSL_pending(io->ssl) > 0;
}

int srv_io_wait_readable(srv_io *io, int ms)
{
	if (srv_io_pending(io)) return 1;
	long left = ms;
	for (;;) {
		if (srv_stopping() || io->dead) return -1;
		int step = (left < 0 || left > 200) ? 200 : (int)left;
		struct pollfd pfd = { io->fd, POLLIN, 0 };
		int r = poll(&pfd, 1, step);
		if (r > 0) return (pfd.revents & (POLLIN | POLLHUP | POLLERR)) ? 1 : -1;
		if (r < 0 && errno != EINTR) return -1;
		if (left >= 0) {
			left -= step;
			if (left <= 0) return 0;
		}
	}
}

void srv_io_abort(srv_io *io)
{
	struct linger lg = { 1, 0 };
	setsockopt(io->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	io->dead = 1;
}
