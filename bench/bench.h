/* Shared by the C benchmarks: a monotonic clock, medians, file loading and the one-line
 * figure format every benchmark prints. Header-only so each bench program stays one file. */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MAX_PASSES 32

/* Seconds since an arbitrary start; CLOCK_MONOTONIC, nanosecond resolution. */
static inline double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds used by this process (user + system), for figures that must not count the
 * time spent waiting on another process or on a busy machine's run queue. */
static inline double bench_cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median of n values (n <= BENCH_MAX_PASSES); v is left unchanged. */
static inline double bench_median(const double *v, int n)
{
	double s[BENCH_MAX_PASSES];
	if (n <= 0) return 0.0;
	if (n > BENCH_MAX_PASSES) n = BENCH_MAX_PASSES;
	memcpy(s, v, (size_t)n * sizeof *s);
	qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
	return (n % 2) ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/* Reads a whole file; exits with a message on failure (benchmarks have no recovery). */
static inline uint8_t *bench_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p;
	long n;
	if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "bench: cannot read %s\n", path);
		exit(2);
	}
	p = malloc((size_t)n + 1);
	if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "bench: cannot read %s\n", path);
		exit(2);
	}
	fclose(f);
	*len = (size_t)n;
	return p;
}

/* Appends "key value" to the file named by $BENCH_FIGURES (when set), so that later
 * benchmarks of the same run (the Lua ones) can state ratios to figures measured here. */
static inline void bench_record(const char *key, double value)
{
	const char *path = getenv("BENCH_FIGURES");
	FILE *f;
	if (!path || !*path || !(f = fopen(path, "a"))) return;
	fprintf(f, "%s %.9g\n", key, value);
	fclose(f);
}

/* Keeps a computed value alive so the optimiser cannot drop the work that made it. */
static volatile uint64_t bench_sink;

#endif
