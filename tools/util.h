/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmstream: messages, exit codes, number parsing and formatting, block
 * devices.
 */
#ifndef DMSTREAM_UTIL_H
#define DMSTREAM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Exit codes (documented in dmstream(8)). */
enum {
	EXIT_OK = 0,		/* success; complete; metadata clean */
	EXIT_USAGE = 1,		/* bad command line */
	EXIT_FAIL = 2,		/* the operation failed: missing device, dm or I/O error */
	EXIT_METADATA = 3,	/* metadata damaged, or holding something else */
	EXIT_COPY_FAILED = 4,	/* the copy cannot complete: ro/fail mode, stalled */
	EXIT_TIMEOUT = 5,	/* timed out or interrupted */
	EXIT_INCOMPLETE = 6,	/* finish: the copy is not complete */
	EXIT_ORIGIN_STALE = 7,	/* abort: the origin may lack writes (one-way, degraded) */
};

extern const char *progname;
extern int verbose;

void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sizes: "4096", "64k", "1M", "128s" (sectors). Powers of 1024. */
int parse_size(const char *s, uint64_t *bytes);
/* Rates: a size per second ("50M/s", "50M"); "0", "none", "unlimited" = 0. */
int parse_rate_bytes_per_s(const char *s, uint64_t *bytes_per_s);

/*
 * A rate as the kernel takes it: parse_rate_bytes_per_s()'s bytes per
 * second rounded up to KiB/s, 0 (no limit) staying 0. Returns -1 when @s is
 * no rate, -2 when it is above STREAM_MAX_RATE_KIB (stream-interface.h).
 */
int parse_rate_kib(const char *s, uint64_t *kib_per_s);
/* A decimal number, no suffix. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *v);
/* Seconds, may be fractional ("2.5"). */
int parse_seconds(const char *s, double *sec);

/* "12.5 MiB" into buf. */
const char *fmt_bytes(uint64_t bytes, char *buf, size_t len);
/* The same for a number of 512-byte sectors, however large. */
const char *fmt_sectors(uint64_t sectors, char *buf, size_t len);
/* "1:02:03", "2:03" or "--:--" for negative. */
const char *fmt_duration(double sec, char *buf, size_t len);

double now_monotonic(void);

/* A block device by path or "major:minor". */
struct blockdev {
	char arg[256];		/* as given */
	char path[256];		/* a path that opens it (/dev/block/M:m when given as M:m) */
	unsigned int major, minor;
	uint64_t size;		/* bytes */
	unsigned int lbs;	/* logical block size */
};

/* Resolves and measures @arg. Prints an error and returns -1 on failure. */
int blockdev_get(const char *arg, struct blockdev *bd);
/* 1 when someone holds @bd open exclusively (mounted, in a dm table...). */
int blockdev_busy(const struct blockdev *bd);
/* "major:minor" in buf. */
const char *devt_str(unsigned int major, unsigned int minor, char *buf, size_t len);
int parse_devt(const char *s, unsigned int *major, unsigned int *minor);

/* Where temporary files go: $TMPDIR, else /tmp. */
const char *tmp_dir(void);
/*
 * An unlinked temporary file in tmp_dir(), open for writing and reading
 * back; NULL (message printed) on failure.
 */
FILE *xtmpfile(void);

/* Aligned allocation for O_DIRECT buffers. */
void *xmalloc_aligned(size_t size);
void *xcalloc(size_t n, size_t size);
char *xstrdup(const char *s);

#endif /* DMSTREAM_UTIL_H */
