/* Throughput check for the event-stream decoder and CRC-32 (not a fuzz target; lives
 * here because it links the same sources). Build and run:
 *   cc -O2 -Icsrc csrc/fuzz/bench_eventstream.c csrc/br_eventstream.c csrc/br_crc32.c \
 *      csrc/br_buf.c csrc/br_errors.c -lz -o build/bench_eventstream && build/bench_eventstream
 * Prints decoded events/s for 300-byte ConverseStream-like frames (3 string headers) fed
 * in 16 KiB and 1 KiB slices, and CRC-32 GB/s (fast path, portable path, zlib) on 1 MB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include "br_eventstream.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double decode_all(const uint8_t *s, size_t n, size_t slice, size_t *events)
{
	br_es_decoder *d = br_es_decoder_new(0);
	br_es_message m;
	size_t pos, count = 0;
	volatile size_t sink = 0;
	double t = now();

	for (pos = 0; pos < n; pos += slice) {
		size_t len = n - pos < slice ? n - pos : slice;
		br_status st;
		br_es_decoder_feed(d, s + pos, len);
		while ((st = br_es_decoder_next(d, &m)) == BR_OK) {
			sink += m.payload_len + m.nheaders;
			count++;
		}
		if (st != BR_AGAIN) {
			fprintf(stderr, "decode error %s\n", br_status_name(st));
			exit(1);
		}
	}
	t = now() - t;
	br_es_decoder_free(d);
	*events = count;
	return t;
}

int main(void)
{
	enum { N = 200000, MB = 1 << 20 };
	br_es_header h[3] = {
		{":event-type", 11, BR_ES_STRING, 17, (const uint8_t *)"contentBlockDelta", 0},
		{":content-type", 13, BR_ES_STRING, 16, (const uint8_t *)"application/json", 0},
		{":message-type", 13, BR_ES_STRING, 5, (const uint8_t *)"event", 0},
	};
	br_buf stream = BR_BUF_INIT;
	uint8_t payload[197];
	uint8_t *big;
	size_t i, events, slices[] = {16384, 1024};
	double t;
	volatile uint32_t sink = 0;
	int r, R = 2000;

	memset(payload, 'x', sizeof payload);
	for (i = 0; i < N; i++)
		br_es_encode(&stream, h, 3, payload, sizeof payload);
	printf("crc32 path: %s; frame size %zu bytes\n", br_crc32_impl(), stream.len / N);
	for (r = 0; r < 3; r++)
		for (i = 0; i < 2; i++) {
			t = decode_all(stream.data, stream.len, slices[i], &events);
			printf("decode, %5zu-byte slices: %.2f M events/s (%.2f GB/s)\n", slices[i],
			       (double)events / t / 1e6, (double)stream.len / t / 1e9);
		}
	big = malloc(MB);
	for (i = 0; i < MB; i++)
		big[i] = (uint8_t)(i * 2654435761u >> 13);
	t = now();
	for (r = 0; r < R; r++) sink += (uint32_t)crc32(0, big, MB);
	printf("crc32 zlib:     %.2f GB/s\n", (double)R * MB / (now() - t) / 1e9);
	t = now();
	for (r = 0; r < R; r++) sink += br_crc32(0, big, MB);
	printf("crc32 br:       %.2f GB/s\n", (double)R * MB / (now() - t) / 1e9);
	t = now();
	for (r = 0; r < R / 4; r++) sink += br_crc32_portable(0, big, MB);
	printf("crc32 portable: %.2f GB/s\n", (double)(R / 4) * MB / (now() - t) / 1e9);
	free(big);
	br_buf_free(&stream);
	return 0;
}
