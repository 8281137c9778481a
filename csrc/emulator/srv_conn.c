/* Connections: one detached thread each. The thread does the TLS handshake when there
 * is one, tells HTTP/2 from HTTP/1.1 (ALPN, else the client preface), serves requests
 * until the peer leaves, then frees everything it owns. A registry of live sockets lets
 * shutdown wake every blocked thread. */
#include "server.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>

#define MAX_CONNS 4096

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cv = PTHREAD_COND_INITIALIZER;
static int reg_fds[MAX_CONNS];
static size_t reg_n;

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

typedef struct {
	int fd;
	SSL_CTX *ctx;
} conn_arg;

static int reg_add(int fd)
{
	int ok = -1;
	pthread_mutex_lock(&reg_mu);
	if (reg_n < MAX_CONNS) {
		reg_fds[reg_n++] = fd;
		ok = 0;
	}
	pthread_mutex_unlock(&reg_mu);
	return ok;
}

static void reg_remove(int fd)
{
	pthread_mutex_lock(&reg_mu);
	for (size_t i = 0; i < reg_n; i++) {
		if (reg_fds[i] == fd) {
			reg_fds[i] = reg_fds[--reg_n];
			break;
		}
	}
	pthread_cond_broadcast(&reg_cv);
	pthread_mutex_unlock(&reg_mu);
}

/* Reads until the preface is matched or ruled out: 1 h2, 0 HTTP/1.x, -1 closed. */
static int sniff_h2(srv_conn *c)
{
	size_t plen = sizeof preface - 1;
	while (c->in.len < plen) {
		if (memcmp(c->in.data ? (const char *)c->in.data : "", preface, c->in.len) != 0)
			return 0;
		uint8_t tmp[4096];
		if (srv_io_wait_readable(&c->io, -1) != 1) return -1;
		long r = srv_io_read(&c->io, tmp, sizeof tmp);
		if (r <= 0) return -1;
		if (br_buf_append(&c->in, tmp, (size_t)r) != BR_OK) return -1;
	}
	return memcmp(c->in.data, preface, plen) == 0;
}

static void *conn_main(void *p)
{
	conn_arg a = *(conn_arg *)p;
	free(p);
	srv_conn c;
	memset(&c, 0, sizeof c);
	c.io.fd = a.fd;
	int h2 = 0;

	if (a.ctx) {
		c.io.ssl = SSL_new(a.ctx);
		if (!c.io.ssl || SSL_set_fd(c.io.ssl, a.fd) != 1 || SSL_accept(c.io.ssl) != 1)
			goto done;
		h2 = srv_tls_is_h2(c.io.ssl);
	}
	if (!h2) {
		int s = sniff_h2(&c);
		if (s < 0) goto done;
		h2 = s;
	}
	c.id = srv_stats_connection(h2);
	if (h2)
		srv_h2_serve(&c);
	else
		srv_http1_serve(&c);
	if (c.io.ssl && !c.io.dead) SSL_shutdown(c.io.ssl);
done:
	SSL_free(c.io.ssl);
	br_buf_free(&c.in);
	/* Free this thread's OpenSSL state (its RAND DRBGs) now: its thread-exit destructor
	 * would run after reg_remove lets shutdown finish, racing the process exit (LSan saw
	 * the DRBGs as leaks). */
	OPENSSL_thread_stop();
	reg_remove(a.fd);
	close(a.fd);
	return NULL;
}

int srv_conn_start(int fd, SSL_CTX *ctx)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	conn_arg *a = malloc(sizeof *a);
	if (!a || reg_add(fd) != 0) {
		free(a);
		close(fd);
		return -1;
	}
	a->fd = fd;
	a->ctx = ctx;
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &attr, conn_main, a);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		free(a);
		reg_remove(fd);
		close(fd);
		return -1;
	}
	return 0;
}

size_t srv_conn_shutdown_all(int ms)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += ms / 1000;
	deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&reg_mu);
	for (size_t i = 0; i < reg_n; i++) shutdown(reg_fds[i], SHUT_RDWR);
	while (reg_n > 0)
		if (pthread_cond_timedwait(&reg_cv, &reg_mu, &deadline) != 0) break;
	size_t left = reg_n;
	pthread_mutex_unlock(&reg_mu);
	return left;
}
