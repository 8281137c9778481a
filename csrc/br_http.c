/* HTTP transport over libcurl multi: see br_http.h for the model and the contracts.
 * Callbacks here answer curl with exactly one of: consumed length, pause, error
 * (curl's cw-out habit); they only copy bytes and stamp times, and never re-enter curl. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#ifdef __linux__
#include <sys/epoll.h>
#include <unistd.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
/* curl_multi_socket_all is marked deprecated (in favour of curl_multi_socket_action with
 * one socket); it is still the one call that performs every transfer AND reports every
 * socket's interest to CURLMOPT_SOCKETFUNCTION, which is what perform() needs here. */
#define CURL_DISABLE_DEPRECATION 1
#include <curl/curl.h>
#include "br_buf.h"
#include "br_http.h"

/* Idle easy handles kept per multi: a finished transfer's handle is reset and reused by
 * the next one instead of being created again (curl_easy_init allocates and zeroes a
 * large struct, curl_easy_reset only clears the options). */
#define BR_HTTP_POOL 8

struct br_http_multi {
	CURLM *cm;
	CURL *pool[BR_HTTP_POOL];
	int npool;
	br_http_xfer *active;     /* transfers attached to cm (doubly linked) */
	br_http_xfer *detached;   /* transfers no longer in cm but not closed (singly kept for multi_free) */
	int nactive;
	uint64_t connections;
	uint64_t transfers;
	uint64_t events;          /* bumped by any progress; lets step skip the wait */
	br_http_fd *fds;          /* curl's sockets and their interest (CURLMOPT_SOCKETFUNCTION) */
	size_t nfds, capfds;
};

struct br_http_xfer {
	br_http_multi *multi;     /* NULL once closed or the multi was freed */
	CURL *easy;
	struct curl_slist *hdrs;  /* one malloc block: nodes, then the lines (see build_headers) */
	br_http_xfer *prev, *next;  /* in multi->active or multi->detached */
	int attached;             /* in curl's multi */
	br_http_state state;

	/* request */
	uint8_t *body_copy;
	int body_stream;
	br_buf input;             /* streamed body queue: input.data[input_off..input.len) */
	size_t input_off;
	int input_closed;
	int send_paused;
	int kick;                 /* steps left in which to nudge curl after the upload ended */
	int input_ended;          /* the input was ended for the caller: the response completed */
	uint64_t sent_stream;

	/* response */
	long status;
	int version;
	int headers_done;
	int no_body;              /* HEAD request: the response has no body whatever it says */
	int64_t resp_len;         /* body length the response announced (Content-Length), -1 unknown */
	int resp_chunked;         /* Transfer-Encoding: the Content-Length does not count */
	br_buf headers;
	br_buf body;
	size_t cap, peak;
	int recv_paused;
	uint64_t received;

	/* times, ms on the monotonic clock; -1 = not reached */
	int64_t t_start, t_ready, t_first, t_last, t_end;
	long to_connect, to_first, to_idle, to_total;

	/* failure */
	br_http_err err;
	int curl_code;
	long num_connects;
	char errbuf[CURL_ERROR_SIZE];
};

int64_t br_http_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- lists ------------------------------------------------------------------------ */

static void list_unlink(br_http_xfer **head, br_http_xfer *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else if (*head == x)
		*head = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
}

static void list_push(br_http_xfer **head, br_http_xfer *x)
{
	x->prev = NULL;
	x->next = *head;
	if (*head)
		(*head)->prev = x;
	*head = x;
}

/* Removes x from curl's multi (keeping the connection in the cache when the transfer
 * completed), counts its connections, and moves it to the detached list. */
static void detach(br_http_xfer *x)
{
	br_http_multi *m = x->multi;
	long n = 0;

	if (!x->attached || !m)
		return;
	curl_multi_remove_handle(m->cm, x->easy);
	if (curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &n) == CURLE_OK && n > 0) {
		x->num_connects = n;
		m->connections += (uint64_t)n;
	}
	x->attached = 0;
	m->nactive--;
	list_unlink(&m->active, x);
	list_push(&m->detached, x);
	x->t_end = br_http_now_ms();
	m->events++;
}

static void fail(br_http_xfer *x, br_http_err err, int curl_code, const char *msg)
{
	detach(x);
	x->state = BR_HTTP_S_FAILED;
	x->err = err;
	x->curl_code = curl_code;
	if (msg)
		snprintf(x->errbuf, sizeof x->errbuf, "%s", msg);
	else if (!x->errbuf[0])
		snprintf(x->errbuf, sizeof x->errbuf, "%s",
			 curl_easy_strerror((CURLcode)curl_code));
}

/* ---- callbacks ---------------------------------------------------------------------- */

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
	br_http_xfer *x = ud;
	size_t n = size * nmemb;

	/* A write that would take a non-empty buffer past the cap pauses: curl keeps the
	 * bytes and hands them again once we unpause. An empty buffer takes any chunk, so
	 * the peak is at most max(cap, one curl chunk). */
	if (x->body.len > 0 && n > x->cap - x->body.len) {
		x->recv_paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (br_buf_append(&x->body, p, n) != BR_OK) {
		x->err = BR_HTTP_ERR_NOMEM;
		return 0; /* CURLE_WRITE_ERROR */
	}
	if (x->body.len > x->peak)
		x->peak = x->body.len;
	x->received += n;
	x->t_last = br_http_now_ms();
	if (x->multi)
		x->multi->events++;
	return n;
}

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
	br_http_xfer *x = ud;
	size_t room = size * nitems, avail = x->input.len - x->input_off;

	if (avail == 0) {
		if (x->input_closed) {
			x->kick = 2;
			if (x->multi)
				x->multi->events++;
			return 0;
		}
		x->send_paused = 1;
		return CURL_READFUNC_PAUSE;
	}
	if (avail > room)
		avail = room;
	memcpy(buf, x->input.data + x->input_off, avail);
	x->input_off += avail;
	x->sent_stream += avail;
	if (x->input_off == x->input.len) {
		x->input_off = 0;
		br_buf_reset(&x->input);
	}
	if (x->multi)
		x->multi->events++;
	return avail;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t header_cb(char *p, size_t size, size_t nitems, void *ud)
{
	br_http_xfer *x = ud;
	size_t n = size * nitems, len = n;
	int64_t now = br_http_now_ms();

	x->t_last = now;
	if (x->t_first < 0)
		x->t_first = now;
	if (x->multi)
		x->multi->events++;
	if (x->headers_done)
		return n; /* trailers: ignored */
	while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
		len--;
	if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* A status line starts a new response (after a 1xx, all previous lines go). */
		size_t i = 5;
		int major = 0, minor = 0;
		long status = 0;

		br_buf_reset(&x->headers);
		if (i < len && p[i] >= '0' && p[i] <= '9')
			major = p[i++] - '0';
		if (i + 1 < len && p[i] == '.' && p[i + 1] >= '0' && p[i + 1] <= '9') {
			minor = p[i + 1] - '0';
			i += 2;
		}
		while (i < len && p[i] == ' ')
			i++;
		while (i < len && p[i] >= '0' && p[i] <= '9' && status < 1000)
			status = status * 10 + (p[i++] - '0');
		x->version = major * 10 + minor;
		x->status = status;
		x->resp_len = -1;
		x->resp_chunked = 0;
		return n;
	}
	if (len == 0) {
		/* End of a header block: a 1xx is interim, wait for the real response. */
		if (x->status >= 200 || x->status == 0) {
			x->headers_done = 1;
			if (x->state == BR_HTTP_S_PENDING)
				x->state = BR_HTTP_S_BODY;
		}
		return n;
	}
	if (p[0] == ' ' || p[0] == '\t') {
		/* obs-fold continuation: joins the previous value with one space */
		size_t s = 0;

		while (s < len && is_space(p[s]))
			s++;
		if (x->headers.len > 0 && x->headers.data[x->headers.len - 1] == '\n')
			x->headers.len--;
		if (br_buf_append_byte(&x->headers, ' ') != BR_OK ||
		    br_buf_append(&x->headers, p + s, len - s) != BR_OK ||
		    br_buf_append_byte(&x->headers, '\n') != BR_OK)
			goto nomem;
		return n;
	}
	if (len > 15 && (p[0] | 0x20) == 'c' && strncasecmp(p, "content-length:", 15) == 0) {
		size_t i = 15;
		int64_t v = 0;

		while (i < len && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i < len && p[i] >= '0' && p[i] <= '9') {
			while (i < len && p[i] >= '0' && p[i] <= '9' && v < INT64_MAX / 10 - 9)
				v = v * 10 + (p[i++] - '0');
			x->resp_len = v;
		}
	} else if (len > 18 && (p[0] | 0x20) == 't' && strncasecmp(p, "transfer-encoding:", 18) == 0) {
		x->resp_chunked = 1;
	}
	if (br_buf_append(&x->headers, p, len) != BR_OK ||
	    br_buf_append_byte(&x->headers, '\n') != BR_OK)
		goto nomem;
	return n;
nomem:
	x->err = BR_HTTP_ERR_NOMEM;
	return 0;
}

static int prereq_cb(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
	br_http_xfer *x = ud;

	(void)primary_ip;
	(void)local_ip;
	(void)primary_port;
	(void)local_port;
	if (x->t_ready < 0)
		x->t_ready = br_http_now_ms();
	return CURL_PREREQFUNC_OK;
}

/* ---- multi -------------------------------------------------------------------------- */

static int global_ready;

/* CURLMOPT_SOCKETFUNCTION: keeps m->fds equal to the sockets curl waits on and what it
 * waits for. Only copies numbers; answers -1 (curl then fails the multi call) when the
 * table cannot grow. */
static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	br_http_multi *m = userp;
	size_t i;

	(void)e;
	(void)socketp;
	for (i = 0; i < m->nfds && m->fds[i].fd != (int)s; i++)
		;
	if (what == CURL_POLL_REMOVE) {
		if (i < m->nfds)
			m->fds[i] = m->fds[--m->nfds];
		return 0;
	}
	if (i == m->nfds) {
		if (m->nfds == m->capfds) {
			size_t cap = m->capfds ? m->capfds * 2 : 8;
			br_http_fd *n = realloc(m->fds, cap * sizeof *n);

			if (!n)
				return -1;
			m->fds = n;
			m->capfds = cap;
		}
		m->fds[m->nfds++].fd = (int)s;
	}
	m->fds[i].events = ((what & CURL_POLL_IN) ? BR_HTTP_IN : 0) |
			   ((what & CURL_POLL_OUT) ? BR_HTTP_OUT : 0);
	return 0;
}

size_t br_http_multi_fds(const br_http_multi *m, const br_http_fd **fds)
{
	if (!m || m->nactive == 0) {
		if (fds)
			*fds = NULL;
		return 0;
	}
	if (fds)
		*fds = m->fds;
	return m->nfds;
}

int br_http_poll(const br_http_fd *fds, size_t n, long timeout_ms)
{
	struct pollfd stack[64], *p = stack;
	size_t i, k = 0;
	int r;

	if (timeout_ms < 0)
		timeout_ms = 0;
	if (timeout_ms > INT_MAX)
		timeout_ms = INT_MAX;
	if (n > 64) {
		p = malloc(n * sizeof *p);
		if (!p)
			return -1;
	}
	for (i = 0; i < n; i++) {
		if (fds[i].fd < 0 || !(fds[i].events & (BR_HTTP_IN | BR_HTTP_OUT)))
			continue;
		p[k].fd = fds[i].fd;
		p[k].events = (short)(((fds[i].events & BR_HTTP_IN) ? POLLIN : 0) |
				      ((fds[i].events & BR_HTTP_OUT) ? POLLOUT : 0));
		p[k].revents = 0;
		k++;
	}
	do
		r = poll(p, (nfds_t)k, (int)timeout_ms);
	while (r < 0 && errno == EINTR && timeout_ms == 0);
	if (r < 0 && errno == EINTR)
		r = 0; /* a signal ends the wait early, as a short timeout would */
	if (p != stack)
		free(p);
	return r;
}

struct br_http_pollset {
	int fd;
	br_http_fd *reg;          /* what is registered now */
	size_t nreg, capreg;
};

br_http_pollset *br_http_pollset_new(void)
{
#ifdef __linux__
	br_http_pollset *ps = calloc(1, sizeof *ps);

	if (!ps)
		return NULL;
	ps->fd = epoll_create1(EPOLL_CLOEXEC);
	if (ps->fd < 0) {
		free(ps);
		return NULL;
	}
	return ps;
#else
	return NULL;
#endif
}

int br_http_pollset_fd(const br_http_pollset *ps)
{
	return ps ? ps->fd : -1;
}

int br_http_pollset_sync(br_http_pollset *ps, const br_http_fd *fds, size_t n)
{
#ifdef __linux__
	size_t i, k;

	if (!ps)
		return -1;
	/* gone: removed (a closed socket has left the epoll set by itself: errors ignored) */
	for (k = 0; k < ps->nreg; k++) {
		for (i = 0; i < n && fds[i].fd != ps->reg[k].fd; i++)
			;
		if (i == n)
			epoll_ctl(ps->fd, EPOLL_CTL_DEL, ps->reg[k].fd, NULL);
	}
	if (n > ps->capreg) {
		br_http_fd *g = realloc(ps->reg, n * sizeof *g);

		if (!g)
			return -1;
		ps->reg = g;
		ps->capreg = n;
	}
	ps->nreg = 0;
	for (i = 0; i < n; i++) {
		struct epoll_event ev;

		memset(&ev, 0, sizeof ev);
		ev.events = ((fds[i].events & BR_HTTP_IN) ? EPOLLIN : 0) |
			    ((fds[i].events & BR_HTTP_OUT) ? EPOLLOUT : 0);
		ev.data.fd = fds[i].fd;
		/* MOD re-arms a socket still registered; ENOENT: new, or closed and reopened
		 * under the same number (the kernel dropped the old registration) */
		if (epoll_ctl(ps->fd, EPOLL_CTL_MOD, fds[i].fd, &ev) != 0 &&
		    (errno != ENOENT || epoll_ctl(ps->fd, EPOLL_CTL_ADD, fds[i].fd, &ev) != 0))
			return -1;
		ps->reg[ps->nreg++] = fds[i];
	}
	return 0;
#else
	(void)ps;
	(void)fds;
	(void)n;
	return -1;
#endif
}

void br_http_pollset_free(br_http_pollset *ps)
{
	if (!ps)
		return;
#ifdef __linux__
	close(ps->fd);
#endif
	free(ps->reg);
	free(ps);
}

br_http_multi *br_http_multi_new(void)
{
	br_http_multi *m;

	if (!global_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return NULL;
		global_ready = 1;
	}
	m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->cm = curl_multi_init();
	if (!m->cm) {
		free(m);
		return NULL;
	}
	curl_multi_setopt(m->cm, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(m->cm, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(m->cm, CURLMOPT_SOCKETDATA, m);
	return m;
}

static void xfer_release(br_http_xfer *x);

void br_http_multi_free(br_http_multi *m)
{
	if (!m)
		return;
	while (m->active)
		xfer_release(m->active);
	while (m->detached)
		xfer_release(m->detached);
	while (m->npool > 0)
		curl_easy_cleanup(m->pool[--m->npool]);
	curl_multi_cleanup(m->cm);
	free(m->fds);
	free(m);
}

void br_http_multi_stats(const br_http_multi *m, uint64_t *connections, uint64_t *transfers)
{
	uint64_t c = 0;
	const br_http_xfer *x;

	if (m) {
		c = m->connections;
		/* running transfers: count the connections they opened so far */
		for (x = m->active; x; x = x->next) {
			long n = 0;

			if (curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &n) == CURLE_OK && n > 0)
				c += (uint64_t)n;
		}
	}
	if (connections)
		*connections = c;
	if (transfers)
		*transfers = m ? m->transfers : 0;
}

static void collect(br_http_multi *m)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(m->cm, &left)) != NULL) {
		br_http_xfer *x = NULL;
		CURLcode rc;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		if (!x)
			continue;
		rc = msg->data.result; /* read before detach: msg dies with remove_handle */
		if (rc == CURLE_OK && !x->headers_done) {
			/* libcurl 7.88 reports OK for a connection closed in the middle of the
			 * response headers: that is no response at all. */
			fail(x, BR_HTTP_ERR_CONNECTION, CURLE_RECV_ERROR,
			     "connection closed before the end of the response headers");
		} else if (rc == CURLE_OK) {
			detach(x);
			x->state = BR_HTTP_S_DONE;
		} else if (x->err == BR_HTTP_ERR_NOMEM) {
			fail(x, BR_HTTP_ERR_NOMEM, rc, "out of memory while receiving");
		} else if (rc == CURLE_OPERATION_TIMEDOUT) {
			/* We never set CURLOPT_TIMEOUT(_MS): only the connect timeout is curl's. */
			char buf[128];

			snprintf(buf, sizeof buf, "no connection within %ld ms", x->to_connect);
			fail(x, BR_HTTP_ERR_TIMEOUT_CONNECT, rc, x->to_connect > 0 ? buf : NULL);
		} else {
			fail(x, BR_HTTP_ERR_CONNECTION, rc, NULL);
		}
	}
}

/* The earliest of x's deadlines that still applies, and which it is; -1 if none. */
static int64_t deadline(const br_http_xfer *x, br_http_err *which)
{
	int64_t d = -1, t;

	if (x->to_total > 0) {
		d = x->t_start + x->to_total;
		*which = BR_HTTP_ERR_TIMEOUT_TOTAL;
	}
	if (x->to_first > 0 && x->t_first < 0 && x->t_ready >= 0) {
		t = x->t_ready + x->to_first;
		if (d < 0 || t < d) {
			d = t;
			*which = BR_HTTP_ERR_TIMEOUT_FIRST_BYTE;
		}
	}
	/* Idle counts only while curl may read: a transfer paused on our full buffer is
	 * waiting for the caller, not for the peer. */
	if (x->to_idle > 0 && x->t_first >= 0 && !x->recv_paused) {
		t = x->t_last + x->to_idle;
		if (d < 0 || t < d) {
			d = t;
			*which = BR_HTTP_ERR_TIMEOUT_IDLE;
		}
	}
	return d;
}

static void expire(br_http_multi *m)
{
	int64_t now = br_http_now_ms();
	br_http_xfer *x = m->active, *next;

	for (; x; x = next) {
		br_http_err which = BR_HTTP_ERR_NONE;
		int64_t d = deadline(x, &which);
		char buf[128];

		next = x->next;
		if (d < 0 || now < d)
			continue;
		switch (which) {
		case BR_HTTP_ERR_TIMEOUT_TOTAL:
			snprintf(buf, sizeof buf, "transfer not complete within %ld ms", x->to_total);
			break;
		case BR_HTTP_ERR_TIMEOUT_FIRST_BYTE:
			snprintf(buf, sizeof buf, "no response byte within %ld ms", x->to_first);
			break;
		default:
			snprintf(buf, sizeof buf, "no data received for %ld ms", x->to_idle);
			break;
		}
		fail(x, which, 0, buf);
	}
}

static int64_t next_deadline(const br_http_multi *m)
{
	int64_t best = -1;
	const br_http_xfer *x;

	for (x = m->active; x; x = x->next) {
		br_http_err which;
		int64_t d = deadline(x, &which);

		if (d >= 0 && (best < 0 || d < best))
			best = d;
	}
	return best;
}

long br_http_multi_timeout(br_http_multi *m)
{
	long t = -1;
	int64_t d;

	const br_http_xfer *x;

	if (!m || curl_multi_timeout(m->cm, &t) != CURLM_OK)
		t = -1;
	if (!m)
		return -1;
	for (x = m->active; x; x = x->next)
		if (x->kick > 0)
			return 0; /* the next steps must nudge curl (see kick) */
	d = next_deadline(m);
	if (d >= 0) {
		int64_t left = d - br_http_now_ms();

		if (left < 0)
			left = 0;
		if (left > LONG_MAX)
			left = LONG_MAX;
		if (t < 0 || left < t)
			t = (long)left;
	}
	return t;
}

/* libcurl 7.88 can miss the end of an HTTP/2 response whose END_STREAM arrived before
 * the streamed upload ended: the stream is closed, the bytes are delivered, but curl
 * waits for socket activity that never comes. Toggling the receive pause makes curl
 * re-check the connection ("the data might've been read off the socket already") and
 * notice. Done in the steps right after the read callback signalled end of input. */
static void kick(br_http_xfer *x)
{
	int send = x->send_paused ? CURLPAUSE_SEND : 0;

	if (!x->attached || x->recv_paused)
		return;
	curl_easy_pause(x->easy, CURLPAUSE_RECV | send);
	curl_easy_pause(x->easy, send);
}

static void apply_pause(br_http_xfer *x);

/* 1 when the whole response has arrived as far as its own framing says: a status or a
 * method without a body, or all the bytes its Content-Length announced. */
static int response_complete(const br_http_xfer *x)
{
	if (!x->headers_done)
		return 0;
	if (x->no_body || x->status == 204 || x->status == 304)
		return 1;
	return !x->resp_chunked && x->resp_len >= 0 && x->received >= (uint64_t)x->resp_len;
}

/* A server may answer (an error, typically) before it has read a streamed request body.
 * curl then still waits for the rest of the body before it reports the transfer done
 * (HTTP/2: the stream only closes once both sides ended; HTTP/1.1: the upload keeps the
 * transfer open), so a caller reading the response would wait for ever. Once the
 * response is complete, the input is ended for the caller (queued input is dropped: the
 * exchange is over) and curl finishes: last chunk or END_STREAM. Returns how many. */
static int end_answered_uploads(br_http_multi *m)
{
	br_http_xfer *x;
	int n = 0;

	for (x = m->active; x; x = x->next) {
		if (!x->body_stream || x->input_closed || !response_complete(x))
			continue;
		x->input_closed = 1;
		x->input_ended = 1;
		x->input_off = 0;
		br_buf_reset(&x->input);
		if (x->send_paused) {
			x->send_paused = 0;
			apply_pause(x);
		}
		n++;
	}
	return n;
}

/* One perform of every transfer (curl_multi_socket_all: curl_multi_perform plus a report
 * of every socket's interest to on_socket) and its bookkeeping. */
static br_status perform(br_http_multi *m)
{
	int still = 0;

	if (curl_multi_socket_all(m->cm, &still) != CURLM_OK)
		return BR_HTTP_FAILED;
	collect(m);
	expire(m);
	if (end_answered_uploads(m) > 0) {
		m->events++;
		if (curl_multi_socket_all(m->cm, &still) != CURLM_OK)
			return BR_HTTP_FAILED;
		collect(m);
		expire(m);
	}
	return BR_OK;
}

br_status br_http_step(br_http_multi *m, long timeout_ms, int *running)
{
	uint64_t ev0;
	br_http_xfer *x;

	if (!m)
		return BR_INVAL;
	for (x = m->active; x; x = x->next) {
		if (x->kick > 0) {
			x->kick--;
			kick(x);
		}
	}
	ev0 = m->events;
	if (perform(m) != BR_OK)
		return BR_HTTP_FAILED;
	if (timeout_ms > 0 && m->events == ev0 && m->nactive > 0) {
		long wait = timeout_ms;
		int64_t d = next_deadline(m);

		if (d >= 0) {
			int64_t left = d - br_http_now_ms();

			if (left < wait)
				wait = left < 0 ? 0 : (long)left;
		}
		if (wait > INT_MAX)
			wait = INT_MAX;
		if (wait > 0 && curl_multi_poll(m->cm, NULL, 0, (int)wait, NULL) != CURLM_OK)
			return BR_HTTP_FAILED;
		if (perform(m) != BR_OK)
			return BR_HTTP_FAILED;
	}
	if (running)
		*running = m->nactive;
	return BR_OK;
}

/* ---- transfers ---------------------------------------------------------------------- */

/* RFC 9110 tchar: visible ASCII except delimiters. */
static int token_char(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')
		return 1;
	return c > 32 && c < 127 && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

/* Checks one request header (see br_http_header) and trims its value: curl would send
 * leading blanks. Returns the size of its curl line with the NUL ("Name: value", or
 * "Name;", curl's form of an empty header), or 0 when the header is invalid. */
static size_t header_line(const br_http_header *h, const char **value, size_t *value_len)
{
	const char *name = h->name, *v = h->value;
	size_t nl = h->name_len, vl = h->value_len, i;

	if (!name || nl == 0 || (vl > 0 && !v) || nl > SIZE_MAX / 4 || vl > SIZE_MAX / 4)
		return 0;
	for (i = 0; i < nl; i++)
		if (!token_char((unsigned char)name[i]))
			return 0;
	if (vl > 0 && (memchr(v, '\r', vl) || memchr(v, '\n', vl) || memchr(v, '\0', vl)))
		return 0;
	while (vl > 0 && (v[0] == ' ' || v[0] == '\t')) {
		v++;
		vl--;
	}
	while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	*value = v;
	*value_len = vl;
	return vl == 0 ? nl + 2 : nl + vl + 3;
}

int br_http_header_valid(const br_http_header *h)
{
	const char *v;
	size_t vl;

	return h && header_line(h, &v, &vl) > 0;
}

static int has_header(const br_http_opts *o, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < o->nheaders; i++)
		if (o->headers[i].name_len == n && o->headers[i].name &&
		    strncasecmp(o->headers[i].name, name, n) == 0)
			return 1;
	return 0;
}

/* curl's default headers that only the caller's own headers may bring back. */
static const char *const SUPPRESS[3] = { "Accept:", "Expect:", "Content-Type:" };

/* Builds the transfer's curl header list in one allocation, the nodes followed by their
 * lines (struct curl_slist is public and curl only reads the list, which lives until
 * the transfer is released; free() releases it). The caller's headers in order, then the
 * suppressions of curl's defaults. BR_BAD_HEADER or BR_NOMEM. */
static br_status build_headers(br_http_xfer *x, const br_http_opts *o)
{
	/* trimmed values of the first headers, so that each is checked once */
	struct {
		const char *v;
		size_t vl;
	} tv[32];
	int sup[3];
	size_t i, k, n, bytes = 0, slen[3];
	struct curl_slist *nodes;
	char *p;

	sup[0] = !has_header(o, "accept");
	sup[1] = !has_header(o, "expect");
	sup[2] = o->body && !has_header(o, "content-type");
	for (i = 0; i < o->nheaders; i++) {
		const char *v;
		size_t vl, l = header_line(&o->headers[i], &v, &vl);

		if (l == 0)
			return BR_BAD_HEADER;
		if (l > SIZE_MAX / 4 - bytes)
			return BR_NOMEM;
		bytes += l;
		if (i < sizeof tv / sizeof *tv) {
			tv[i].v = v;
			tv[i].vl = vl;
		}
	}
	n = o->nheaders;
	for (k = 0; k < 3; k++) {
		slen[k] = strlen(SUPPRESS[k]) + 1;
		if (sup[k]) {
			bytes += slen[k];
			n++;
		}
	}
	if (n == 0)
		return BR_OK;
	if (n > SIZE_MAX / 4 / sizeof *nodes)
		return BR_NOMEM;
	nodes = malloc(n * sizeof *nodes + bytes);
	if (!nodes)
		return BR_NOMEM;
	p = (char *)(nodes + n);
	for (i = 0; i < o->nheaders; i++) {
		const br_http_header *h = &o->headers[i];
		const char *v = NULL;
		size_t vl = 0;

		if (i < sizeof tv / sizeof *tv) {
			v = tv[i].v;
			vl = tv[i].vl;
		} else {
			(void)header_line(h, &v, &vl);
		}
		nodes[i].data = p;
		memcpy(p, h->name, h->name_len);
		p += h->name_len;
		if (vl == 0) {
			*p++ = ';';
		} else {
			*p++ = ':';
			*p++ = ' ';
			memcpy(p, v, vl);
			p += vl;
		}
		*p++ = '\0';
		nodes[i].next = &nodes[i + 1];
	}
	for (k = 0; k < 3; k++) {
		if (!sup[k])
			continue;
		nodes[i].data = p;
		memcpy(p, SUPPRESS[k], slen[k]);
		p += slen[k];
		nodes[i].next = &nodes[i + 1];
		i++;
	}
	nodes[n - 1].next = NULL;
	x->hdrs = nodes;
	return BR_OK;
}

/* An easy handle for a new transfer: a pooled one (reset when it was given back) or a
 * new one. */
static CURL *easy_take(br_http_multi *m)
{
	if (m->npool > 0)
		return m->pool[--m->npool];
	return curl_easy_init();
}

/* Takes back the easy handle of a released transfer: one whose transfer completed is
 * reset (no option, and no pointer to the transfer, survives) and kept for the next
 * transfer while the pool has room; any other is cleaned up. m may be NULL. */
static void easy_give(br_http_multi *m, CURL *e, int completed)
{
	if (m && completed && m->npool < BR_HTTP_POOL) {
		curl_easy_reset(e);
		m->pool[m->npool++] = e;
	} else {
		curl_easy_cleanup(e);
	}
}

static int h2c_reuse_broken(void)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

	return v && v->version_num < 0x080000;
}

#define SETOPT(opt, val) \
	do { \
		if (curl_easy_setopt(x->easy, opt, val) != CURLE_OK) { \
			st = BR_HTTP_INIT; \
			goto fail; \
		} \
	} while (0)

br_http_xfer *br_http_xfer_new(br_http_multi *m, const br_http_opts *o, br_status *status)
{
	br_http_xfer *x = NULL;
	br_status st = BR_INVAL;
	const char *method;
	int https;
	size_t i;

	if (!m || !o || !o->url)
		goto out;
	if (strncasecmp(o->url, "https://", 8) == 0)
		https = 1;
	else if (strncasecmp(o->url, "http://", 7) == 0)
		https = 0;
	else
		goto out;
	if ((o->body_stream && o->body) || (!o->body && o->body_len > 0))
		goto out;
	if (o->http_version != 0 && o->http_version != 1 && o->http_version != 2)
		goto out;
	method = o->method ? o->method : (o->body || o->body_stream ? "POST" : "GET");
	if (!method[0])
		goto out;
	for (i = 0; method[i]; i++)
		if (!token_char((unsigned char)method[i]))
			goto out;

	st = BR_NOMEM;
	x = calloc(1, sizeof *x);
	if (!x)
		goto out;
	x->t_start = br_http_now_ms();
	x->t_ready = x->t_first = x->t_end = -1;
	x->t_last = x->t_start;
	x->to_connect = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 0;
	x->to_first = o->first_byte_timeout_ms > 0 ? o->first_byte_timeout_ms : 0;
	x->to_idle = o->idle_timeout_ms > 0 ? o->idle_timeout_ms : 0;
	x->to_total = o->total_timeout_ms > 0 ? o->total_timeout_ms : 0;
	x->cap = o->buffer_cap ? o->buffer_cap : BR_HTTP_BUFFER_CAP;
	if (x->cap < BR_HTTP_BUFFER_CAP_MIN)
		x->cap = BR_HTTP_BUFFER_CAP_MIN;
	x->body_stream = o->body_stream;
	x->state = BR_HTTP_S_PENDING;

	x->resp_len = -1;
	x->no_body = strcmp(method, "HEAD") == 0;

	st = build_headers(x, o);
	if (st != BR_OK)
		goto fail;

	st = BR_HTTP_INIT;
	x->easy = easy_take(m);
	if (!x->easy)
		goto fail;
	SETOPT(CURLOPT_PRIVATE, (void *)x);
	SETOPT(CURLOPT_URL, o->url);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_ERRORBUFFER, x->errbuf);
	SETOPT(CURLOPT_HTTPHEADER, x->hdrs);
	SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(CURLOPT_WRITEDATA, (void *)x);
	SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
	SETOPT(CURLOPT_HEADERDATA, (void *)x);
	SETOPT(CURLOPT_PREREQFUNCTION, prereq_cb);
	SETOPT(CURLOPT_PREREQDATA, (void *)x);
	if (x->to_connect > 0)
		SETOPT(CURLOPT_CONNECTTIMEOUT_MS, x->to_connect);
	if (o->http_version == 2) {
		SETOPT(CURLOPT_HTTP_VERSION, https ? (long)CURL_HTTP_VERSION_2TLS
						   : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
		if (!https && h2c_reuse_broken()) {
			/* libcurl before 8.0.0 breaks a reused prior-knowledge connection
			 * ("Error in the HTTP2 framing layer", curl issue #10634, fixed by
			 * PR #10643): give each such transfer its own connection. */
			SETOPT(CURLOPT_FRESH_CONNECT, 1L);
			SETOPT(CURLOPT_FORBID_REUSE, 1L);
		} else {
			SETOPT(CURLOPT_PIPEWAIT, 1L);
		}
	} else {
		SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	}
	if (o->no_verify) {
		SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
		SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (o->cainfo)
		SETOPT(CURLOPT_CAINFO, o->cainfo);
	if (o->capath)
		SETOPT(CURLOPT_CAPATH, o->capath);

	if (o->body_stream) {
		SETOPT(CURLOPT_UPLOAD, 1L);
		SETOPT(CURLOPT_READFUNCTION, read_cb);
		SETOPT(CURLOPT_READDATA, (void *)x);
		SETOPT(CURLOPT_INFILESIZE_LARGE, (curl_off_t)-1);
		SETOPT(CURLOPT_CUSTOMREQUEST, method);
	} else if (o->body) {
		const uint8_t *b = o->body;

		if (!o->body_borrow && o->body_len > 0) {
			x->body_copy = malloc(o->body_len);
			if (!x->body_copy) {
				st = BR_NOMEM;
				goto fail;
			}
			memcpy(x->body_copy, o->body, o->body_len);
			b = x->body_copy;
		}
		SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
		SETOPT(CURLOPT_POSTFIELDS, o->body_len > 0 ? (const char *)b : "");
		if (strcmp(method, "POST") != 0)
			SETOPT(CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "GET") == 0) {
		SETOPT(CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		SETOPT(CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "POST") == 0) {
		SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
		SETOPT(CURLOPT_POSTFIELDS, "");
	} else {
		SETOPT(CURLOPT_CUSTOMREQUEST, method);
	}

	if (curl_multi_add_handle(m->cm, x->easy) != CURLM_OK) {
		st = BR_HTTP_INIT;
		goto fail;
	}
	x->multi = m;
	x->attached = 1;
	list_push(&m->active, x);
	m->nactive++;
	m->transfers++;
	if (status)
		*status = BR_OK;
	return x;
fail:
	if (x->easy)
		curl_easy_cleanup(x->easy);
	free(x->hdrs);
	free(x->body_copy);
	free(x);
	x = NULL;
out:
	if (status)
		*status = st;
	return NULL;
}

#undef SETOPT

/* Closes x and unlinks it from its multi: everything but the struct is released. */
static void xfer_release(br_http_xfer *x)
{
	br_http_multi *m = x->multi;

	if (m) {
		detach(x);
		list_unlink(&m->detached, x);
		x->multi = NULL;
	}
	if (x->easy) {
		easy_give(m, x->easy, x->state == BR_HTTP_S_DONE);
		x->easy = NULL;
	}
	free(x->hdrs);
	x->hdrs = NULL;
	free(x->body_copy);
	x->body_copy = NULL;
	br_buf_free(&x->input);
	br_buf_free(&x->headers);
	br_buf_free(&x->body);
	x->input_off = 0;
	x->state = BR_HTTP_S_CLOSED;
}

void br_http_xfer_close(br_http_xfer *x)
{
	if (x && x->state != BR_HTTP_S_CLOSED)
		xfer_release(x);
}

void br_http_xfer_free(br_http_xfer *x)
{
	if (!x)
		return;
	br_http_xfer_close(x);
	free(x);
}

br_http_state br_http_xfer_state(const br_http_xfer *x)
{
	return x->state;
}

long br_http_xfer_status(const br_http_xfer *x)
{
	return x->status;
}

int br_http_xfer_version(const br_http_xfer *x)
{
	return x->version;
}

const char *br_http_xfer_headers(const br_http_xfer *x, size_t *len)
{
	if (!x->headers_done || x->state == BR_HTTP_S_CLOSED) {
		*len = 0;
		return NULL;
	}
	*len = x->headers.len;
	return x->headers.data ? (const char *)x->headers.data : "";
}

int br_http_header_next(const char **p, const char *end, const char **name, size_t *name_len,
			const char **value, size_t *value_len)
{
	while (*p < end) {
		const char *line = *p, *eol = memchr(line, '\n', (size_t)(end - line));
		const char *colon;

		if (!eol)
			eol = end;
		*p = eol < end ? eol + 1 : end;
		colon = memchr(line, ':', (size_t)(eol - line));
		if (!colon || colon == line)
			continue;
		*name = line;
		*name_len = (size_t)(colon - line);
		colon++;
		while (colon < eol && (*colon == ' ' || *colon == '\t'))
			colon++;
		while (eol > colon && is_space(eol[-1]))
			eol--;
		*value = colon;
		*value_len = (size_t)(eol - colon);
		return 1;
	}
	return 0;
}

int64_t br_http_xfer_content_length(const br_http_xfer *x)
{
	return x->resp_len;
}

size_t br_http_xfer_body(const br_http_xfer *x, const uint8_t **p)
{
	*p = x->body.data;
	return x->body.len;
}

static void apply_pause(br_http_xfer *x)
{
	int bits = (x->recv_paused ? CURLPAUSE_RECV : 0) | (x->send_paused ? CURLPAUSE_SEND : 0);

	if (x->attached)
		curl_easy_pause(x->easy, bits);
}

void br_http_xfer_consume(br_http_xfer *x, size_t n)
{
	if (n > x->body.len)
		n = x->body.len;
	br_buf_consume(&x->body, n);
	if (x->recv_paused && x->body.len <= x->cap / 2) {
		x->recv_paused = 0;
		x->t_last = br_http_now_ms(); /* paused time is not idle time */
		apply_pause(x);               /* may deliver held bytes into write_cb now */
	}
}

int br_http_xfer_eof(const br_http_xfer *x)
{
	return x->state == BR_HTTP_S_DONE && x->body.len == 0;
}

br_status br_http_xfer_send(br_http_xfer *x, const uint8_t *p, size_t n)
{
	if (!x->body_stream || x->input_closed || !x->attached)
		return BR_HTTP_STATE;
	if (n == 0)
		return BR_OK;
	if (br_buf_append(&x->input, p, n) != BR_OK)
		return BR_NOMEM;
	if (x->send_paused) {
		x->send_paused = 0;
		apply_pause(x);
	}
	return BR_OK;
}

br_status br_http_xfer_close_input(br_http_xfer *x)
{
	if (!x->body_stream)
		return BR_HTTP_STATE;
	if (x->input_closed)
		return BR_OK;
	x->input_closed = 1;
	if (x->send_paused) {
		x->send_paused = 0;
		apply_pause(x);
	}
	return BR_OK;
}

int br_http_xfer_input_ended(const br_http_xfer *x)
{
	return x->input_ended;
}

size_t br_http_xfer_pending_input(const br_http_xfer *x)
{
	return x->input.len - x->input_off;
}

br_http_err br_http_xfer_error(const br_http_xfer *x, int *curl_code, const char **message)
{
	if (curl_code)
		*curl_code = x->state == BR_HTTP_S_FAILED ? x->curl_code : 0;
	if (message)
		*message = x->state == BR_HTTP_S_FAILED ? x->errbuf : "";
	return x->state == BR_HTTP_S_FAILED ? x->err : BR_HTTP_ERR_NONE;
}

void br_http_xfer_info(const br_http_xfer *x, br_http_info *info)
{
	int64_t end = x->t_end >= 0 ? x->t_end : br_http_now_ms();

	info->total = (double)(end - x->t_start) / 1000.0;
	info->connect = x->t_ready >= 0 ? (double)(x->t_ready - x->t_start) / 1000.0 : -1;
	info->first_byte = x->t_first >= 0 ? (double)(x->t_first - x->t_start) / 1000.0 : -1;
	info->buffer_cap = x->cap;
	info->buffer_peak = x->peak;
	info->num_connects = x->num_connects;
	info->received = x->received;
	info->sent_stream = x->sent_stream;
}
