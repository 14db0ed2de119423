// SPDX-License-Identifier: GPL-2.0
/*
 * dmstream: messages, number parsing and formatting, block devices.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "stream-interface.h"
#include "util.h"

const char *progname = "dmstream";
int verbose;

/*---------------------------------------------------------------------------*/
/* Messages: all to stderr, prefixed with the program name. */
static void vmsg(const char *kind, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: %s", progname, kind);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

void warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("warning: ", fmt, ap);
	va_end(ap);
}

void info(const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

/*---------------------------------------------------------------------------*/
/* Numbers */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *v)
{
	char *end;
	unsigned long long x;

	if (!s || !isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || *end || x < min || x > max)
		return -1;
	*v = x;
	return 0;
}

/* The multiplier of a unit suffix, or 0 when it is not one. */
static uint64_t unit_multiplier(const char *u)
{
	static const struct {
		const char *name;
		unsigned int shift;
	} units[] = {
		{ "", 0 }, { "b", 0 }, { "s", 9 },
		{ "k", 10 }, { "kb", 10 }, { "kib", 10 },
		{ "m", 20 }, { "mb", 20 }, { "mib", 20 },
		{ "g", 30 }, { "gb", 30 }, { "gib", 30 },
		{ "t", 40 }, { "tb", 40 }, { "tib", 40 },
	};
	size_t i;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcasecmp(u, units[i].name))
			return 1ULL << units[i].shift;
	return 0;
}

int parse_size(const char *s, uint64_t *bytes)
{
	char *end;
	unsigned long long x;
	uint64_t mult;

	if (!s || !isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno)
		return -1;
	mult = unit_multiplier(end);
	if (!mult || (x && UINT64_MAX / mult < x))
		return -1;
	*bytes = x * mult;
	return 0;
}

int parse_rate_bytes_per_s(const char *s, uint64_t *bytes_per_s)
{
	char buf[64];
	size_t n;

	if (!s)
		return -1;
	if (!strcasecmp(s, "none") || !strcasecmp(s, "unlimited")) {
		*bytes_per_s = 0;
		return 0;
	}
	n = strlen(s);
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n + 1);
	if (n > 2 && !strcasecmp(buf + n - 2, "/s"))
		buf[n - 2] = '\0';
	return parse_size(buf, bytes_per_s);
}

int parse_rate_kib(const char *s, uint64_t *kib_per_s)
{
	uint64_t bps, kib;

	if (parse_rate_bytes_per_s(s, &bps))
		return -1;
	/* Rounded up without (bps + 1023), which wraps near 2^64. */
	kib = bps / 1024 + (bps % 1024 != 0);
	if (kib > STREAM_MAX_RATE_KIB)
		return -2;
	*kib_per_s = kib;
	return 0;
}

int parse_seconds(const char *s, double *sec)
{
	char *end;
	double x;

	if (!s || !(isdigit((unsigned char)s[0]) || s[0] == '.'))
		return -1;
	errno = 0;
	x = strtod(s, &end);
	if (errno || *end || !isfinite(x) || x < 0 || x > 1e9)
		return -1;
	*sec = x;
	return 0;
}

const char *fmt_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	unsigned int u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (!u)
		snprintf(buf, len, "%" PRIu64 " B", bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

const char *fmt_sectors(uint64_t sectors, char *buf, size_t len)
{
	/* 2^51 sectors are 1 EiB. */
	if (sectors > UINT64_MAX / 512)
		snprintf(buf, len, "%.1f EiB", (double)sectors / (double)(1ULL << 51));
	else
		fmt_bytes(sectors * 512, buf, len);
	return buf;
}

const char *fmt_duration(double sec, char *buf, size_t len)
{
	unsigned long long s;

	if (sec < 0 || !isfinite(sec) || sec > 99 * 3600.0 * 24) {
		snprintf(buf, len, "--:--");
		return buf;
	}
	s = (unsigned long long)(sec + 0.5);
	if (s >= 3600)
		snprintf(buf, len, "%llu:%02llu:%02llu", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, len, "%llu:%02llu", s / 60, s % 60);
	return buf;
}

double now_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*---------------------------------------------------------------------------*/
/* Block devices */
const char *devt_str(unsigned int major, unsigned int minor, char *buf, size_t len)
{
	snprintf(buf, len, "%u:%u", major, minor);
	return buf;
}

int parse_devt(const char *s, unsigned int *major, unsigned int *minor)
{
	unsigned int a, b;
	char c;

	if (!s || !isdigit((unsigned char)s[0]) ||
	    sscanf(s, "%u:%u%c", &a, &b, &c) != 2)
		return -1;
	*major = a;
	*minor = b;
	return 0;
}

/* /dev/<DEVNAME> of a block device number, from sysfs (no udev needed). */
static int devt_path(unsigned int major, unsigned int minor, char *path, size_t len)
{
	char sys[96], line[256];
	FILE *f;
	int r = -1;

	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/uevent", major, minor);
	f = fopen(sys, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "DEVNAME=", 8)) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(path, len, "/dev/%s", line + 8);
			r = 0;
			break;
		}
	}
	fclose(f);
	return r;
}

int blockdev_get(const char *arg, struct blockdev *bd)
{
	struct stat st;
	uint64_t size;
	int fd, lbs;

	memset(bd, 0, sizeof(*bd));
	snprintf(bd->arg, sizeof(bd->arg), "%s", arg);

	if (!parse_devt(arg, &bd->major, &bd->minor)) {
		if (devt_path(bd->major, bd->minor, bd->path, sizeof(bd->path))) {
			err("%s: no such block device", arg);
			return -1;
		}
	} else {
		snprintf(bd->path, sizeof(bd->path), "%s", arg);
	}

	if (stat(bd->path, &st)) {
		err("%s: %s", bd->path, strerror(errno));
		return -1;
	}
	if (!S_ISBLK(st.st_mode)) {
		err("%s: not a block device", bd->path);
		return -1;
	}
	bd->major = major(st.st_rdev);
	bd->minor = minor(st.st_rdev);

	fd = open(bd->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err("%s: %s", bd->path, strerror(errno));
		return -1;
	}
	if (ioctl(fd, BLKGETSIZE64, &size) || ioctl(fd, BLKSSZGET, &lbs)) {
		err("%s: cannot read the device size: %s", bd->path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	bd->size = size;
	bd->lbs = lbs;
	return 0;
}

int blockdev_busy(const struct blockdev *bd)
{
	int fd = open(bd->path, O_RDONLY | O_EXCL | O_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return errno == EBUSY;
}

/*---------------------------------------------------------------------------*/
/* Temporary files */
const char *tmp_dir(void)
{
	const char *dir = getenv("TMPDIR");

	return dir && *dir ? dir : "/tmp";
}

FILE *xtmpfile(void)
{
	const char *dir = tmp_dir();
	char path[4096];
	FILE *f;
	int fd;

	/* Nameless from the start where the file system can; else unlinked. */
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(path, sizeof(path), "%s/dmstream.XXXXXX", dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0) {
		err("cannot create a temporary file in %s: %s", dir, strerror(errno));
		return NULL;
	}
	f = fdopen(fd, "w+");
	if (!f) {
		err("cannot create a temporary file in %s: %s", dir, strerror(errno));
		close(fd);
	}
	return f;
}

/*---------------------------------------------------------------------------*/
/* Memory: running out is not worth unwinding for in a command line tool. */
static void oom(void)
{
	err("out of memory");
	exit(EXIT_FAIL);
}

void *xmalloc_aligned(size_t size)
{
	void *p;

	if (posix_memalign(&p, 4096, size))
		oom();
	memset(p, 0, size);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		oom();
	return p;
}
