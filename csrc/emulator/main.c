/* bedrock-emulator: an offline Amazon Bedrock Runtime on loopback. This file reads the
 * command line, sets up keys and TLS, listens, prints the port, accepts connections
 * (one thread each) and shuts down cleanly on SIGTERM/SIGINT. See docs/emulator.md. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define MAX_WORDS 64

emu_config emu_cfg = { "us-east-1", NULL, 0, 0, 0 };
srv_config srv_cfg;

static volatile sig_atomic_t stopping;
static int wake_pipe[2] = { -1, -1 };

int srv_stopping(void)
{
	return stopping != 0;
}

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
	if (wake_pipe[1] >= 0) {
		int saved = errno;
		ssize_t r = write(wake_pipe[1], "x", 1);
		(void)r;
		errno = saved;
	}
}

static void usage(FILE *f)
{
	fputs("usage: bedrock-emulator [options]\n"
	      "  --port N                 port on the listen address (0: a free one; printed first)\n"
	      "  --host ADDR              listen address (default 127.0.0.1)\n"
	      "  --tls CERT KEY           serve HTTPS (ALPN h2, http/1.1) with these PEM files\n"
	      "  --key ID:SECRET[:TOKEN]  accept this access key (repeatable)\n"
	      "  --bearer TOKEN           accept this Bedrock API key (repeatable)\n"
	      "  --no-auth                accept every request without checking credentials\n"
	      "  --event-delay MS         pause between stream events (default 0)\n"
	      "  --async-ms MS            time a StartAsyncInvoke job takes (default 2000)\n"
	      "  --cred-ttl S             lifetime of issued credentials (default 3600)\n"
	      "  --cred-seed S            derive issued credentials from S and the request (tests)\n"
	      "  --container-token T      Authorization required on the container endpoint\n"
	      "  --sso-token T            x-amz-sso_bearer_token accepted by the SSO endpoint\n"
	      "  --sso-refresh-token T    refresh token accepted by SSO-OIDC CreateToken\n"
	      "  --login-refresh-token T  refresh token accepted by sign-in CreateOAuth2Token\n"
	      "  --web-identity-token T   WebIdentityToken accepted by AssumeRoleWithWebIdentity\n"
	      "  --role-name NAME         IMDS role name (default bedrock-emulator-role)\n"
	      "  --account-id ID          account id in ARNs (default 123456789012)\n"
	      "  --region R               default region (default us-east-1)\n"
	      "  --guardrail-word W       a word the guardrail blocks (repeatable)\n"
	      "  --skew S                 allowed SigV4 clock skew in seconds (default 300)\n"
	      "  --verbose                one line per request on standard error\n",
	      f);
}

/* Parses the command line into the configs; 0, or -1 after printing why. */
static int parse_args(int argc, char **argv, int *port, const char **host,
		      const char **words, size_t *nwords)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int more = i + 1 < argc;
#define NEXT() (argv[++i]) /* only after checking `more` */
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--port") == 0 && more) {
			*port = atoi(NEXT());
		} else if (strcmp(a, "--host") == 0 && more) {
			*host = NEXT();
		} else if (strcmp(a, "--tls") == 0 && i + 2 < argc) {
			srv_cfg.tls_cert = argv[++i];
			srv_cfg.tls_key = argv[++i];
		} else if (strcmp(a, "--key") == 0 && more) {
			char *spec = strdup(NEXT());
			char *c1 = spec ? strchr(spec, ':') : NULL;
			char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
			int bad = !c1 || c1 == spec || !c1[1];
			if (!bad) {
				*c1 = '\0';
				if (c2) *c2 = '\0';
				bad = srv_auth_add_key(spec, c1 + 1, c2 ? c2 + 1 : NULL) != 0;
			}
			free(spec);
			if (bad) {
				fprintf(stderr, "bedrock-emulator: --key wants ID:SECRET[:TOKEN]\n");
				return -1;
			}
		} else if (strcmp(a, "--bearer") == 0 && more) {
			if (srv_auth_add_bearer(NEXT()) != 0) return -1;
		} else if (strcmp(a, "--no-auth") == 0) {
			srv_cfg.no_auth = 1;
		} else if (strcmp(a, "--event-delay") == 0 && more) {
			srv_cfg.event_delay_ms = atoi(NEXT());
		} else if (strcmp(a, "--async-ms") == 0 && more) {
			const char *v = NEXT();
			char *end = NULL;
			long ms = strtol(v, &end, 10);
			if (!*v || *end || ms < 0) {
				fprintf(stderr, "bedrock-emulator: --async-ms wants milliseconds >= 0\n");
				return -1;
			}
			emu_cfg.async_ms = ms;
			emu_cfg.async_ms_set = 1;
		} else if (strcmp(a, "--cred-ttl") == 0 && more) {
			srv_cfg.cred_ttl = atol(NEXT());
		} else if (strcmp(a, "--cred-seed") == 0 && more) {
			srv_cfg.cred_seed = NEXT();
		} else if (strcmp(a, "--container-token") == 0 && more) {
			srv_cfg.container_token = NEXT();
		} else if (strcmp(a, "--sso-token") == 0 && more) {
			srv_cfg.sso_token = NEXT();
		} else if (strcmp(a, "--sso-refresh-token") == 0 && more) {
			srv_cfg.sso_refresh_token = NEXT();
		} else if (strcmp(a, "--login-refresh-token") == 0 && more) {
			srv_cfg.login_refresh_token = NEXT();
		} else if (strcmp(a, "--web-identity-token") == 0 && more) {
			srv_cfg.web_identity_token = NEXT();
		} else if (strcmp(a, "--role-name") == 0 && more) {
			srv_cfg.role_name = NEXT();
		} else if (strcmp(a, "--account-id") == 0 && more) {
			srv_cfg.account_id = NEXT();
		} else if (strcmp(a, "--region") == 0 && more) {
			emu_cfg.default_region = NEXT();
		} else if (strcmp(a, "--guardrail-word") == 0 && more) {
			if (*nwords < MAX_WORDS) words[(*nwords)++] = NEXT();
		} else if (strcmp(a, "--skew") == 0 && more) {
			srv_cfg.skew_seconds = atoi(NEXT());
		} else if (strcmp(a, "--verbose") == 0) {
			srv_cfg.verbose = 1;
		} else {
			fprintf(stderr, "bedrock-emulator: unknown or incomplete option %s\n", a);
			usage(stderr);
			return -1;
		}
#undef NEXT
	}
	return 0;
}

/* With no key or token on the command line, the emulator's own environment supplies
 * them, the way an SDK started from the same shell would find them. */
static void keys_from_env(void)
{
	const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
	const char *token = getenv("AWS_SESSION_TOKEN"), *bearer = getenv("AWS_BEARER_TOKEN_BEDROCK");
	if (id && *id && secret && *secret) srv_auth_add_key(id, secret, token);
	if (bearer && *bearer) srv_auth_add_bearer(bearer);
}

static int listen_on(const char *host, int port, int *bound)
{
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "bedrock-emulator: bad --host %s (IPv4 address)\n", host);
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0) return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	socklen_t sl = sizeof sa;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 512) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
		fprintf(stderr, "bedrock-emulator: cannot listen on %s:%d: %s\n", host, port, strerror(errno));
		close(fd);
		return -1;
	}
	*bound = ntohs(sa.sin_port);
	return fd;
}

int main(int argc, char **argv)
{
	int port = 0, bound = 0, lfd = -1, rc = 1;
	const char *host = "127.0.0.1";
	const char *words[MAX_WORDS];
	size_t nwords = 0;
	SSL_CTX *ctx = NULL;

	srv_cfg.cred_ttl = 3600;
	srv_cfg.role_name = "bedrock-emulator-role";
	srv_cfg.account_id = "123456789012";
	srv_cfg.skew_seconds = 300;
	if (parse_args(argc, argv, &port, &host, words, &nwords) != 0) goto out;
	emu_cfg.guardrail_words = nwords ? words : NULL;
	emu_cfg.nguardrail_words = nwords;
	if (srv_auth_nkeys() == 0) keys_from_env();
	if (srv_auth_nkeys() == 0 && !srv_cfg.no_auth)
		fprintf(stderr, "bedrock-emulator: no keys configured (--key, --bearer, AWS_* env): "
				"only credentials issued by the credential endpoints will be accepted\n");
	if (srv_cfg.tls_cert && !(ctx = srv_tls_new(srv_cfg.tls_cert, srv_cfg.tls_key))) goto out;

	signal(SIGPIPE, SIG_IGN);
	if (pipe(wake_pipe) != 0) goto out;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	if ((lfd = listen_on(host, port, &bound)) < 0) goto out;
	printf("%d\n", bound);
	fflush(stdout);

	while (!stopping) {
		struct pollfd pfd[2] = { { lfd, POLLIN, 0 }, { wake_pipe[0], POLLIN, 0 } };
		int n = poll(pfd, 2, -1);
		if (n < 0) {
			if (errno == EINTR) continue;
			break;
		}
		if (pfd[1].revents) break;
		if (pfd[0].revents & POLLIN) {
			int fd = accept(lfd, NULL, NULL);
			if (fd >= 0) {
				fcntl(fd, F_SETFD, FD_CLOEXEC);
				srv_conn_start(fd, ctx);
			}
		}
	}
	rc = 0;
out:
	if (lfd >= 0) close(lfd);
	/* Threads still running after the grace period keep using the shared state, so it
	 * is freed only when every connection has ended. */
	if (srv_conn_shutdown_all(3000) == 0) {
		srv_faults_cleanup();
		srv_stats_cleanup();
		srv_auth_cleanup();
		SSL_CTX_free(ctx);
	}
	if (wake_pipe[0] >= 0) close(wake_pipe[0]);
	if (wake_pipe[1] >= 0) close(wake_pipe[1]);
	return rc;
}
