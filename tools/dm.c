// SPDX-License-Identifier: GPL-2.0
/*
 * dmstream: device-mapper calls through libdevmapper, the cryptsetup way:
 * load the new table, then suspend and resume; udev cookies on every call
 * that sends a uevent.
 */
#include <errno.h>
#include <fcntl.h>
#include <libdevmapper.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dm.h"
#include "util.h"

/* libdevmapper's log levels (not in its header). */
#define DMX_LOG_LEVEL_MASK	7
#define DMX_LOG_ERR		3
#define DMX_LOG_WARN		4

/* Hides libdevmapper's messages for calls expected to fail. */
static int quiet;

static void dm_logger(int level, const char *file, int line, int dm_errno_or_class,
		      const char *f, ...)
{
	va_list ap;
	int lvl = level & DMX_LOG_LEVEL_MASK;

	(void)file;
	(void)line;
	(void)dm_errno_or_class;
	if (quiet && lvl > 0)
		return;
	if (lvl > DMX_LOG_WARN + verbose)
		return;
	fprintf(stderr, "%s: %s", progname, lvl == DMX_LOG_WARN ? "warning: " : "");
	va_start(ap, f);
	vfprintf(stderr, f, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void dmx_init(void)
{
	dm_log_with_errno_init(dm_logger);
	if (verbose > 1)
		dm_log_init_verbose(verbose);
	/*
	 * Without udev, libdevmapper makes the /dev/mapper nodes itself; say
	 * so explicitly when udev is absent or the user asked to bypass it.
	 * (libdevmapper's own check of a running udev is the same file.)
	 */
	if (getenv("DM_DISABLE_UDEV") || access("/run/udev/control", F_OK))
		dm_udev_set_sync_support(0);
}

/*---------------------------------------------------------------------------*/
/* Tasks */
static struct dm_task *task(int type, const char *name)
{
	struct dm_task *dmt = dm_task_create(type);

	if (!dmt) {
		err("cannot create a device-mapper task");
		return NULL;
	}
	if (name && !dm_task_set_name(dmt, name)) {
		dm_task_destroy(dmt);
		return NULL;
	}
	return dmt;
}

/* Runs @dmt with a udev cookie and waits for udev (or makes the nodes). */
static int run_with_cookie(struct dm_task *dmt, uint16_t udev_flags)
{
	uint32_t cookie = 0;
	int r;

	if (!dm_task_set_cookie(dmt, &cookie, udev_flags))
		return 0;
	r = dm_task_run(dmt);
	/* Always: the cookie's semaphore must go, even after a failure. */
	(void)dm_udev_wait(cookie);
	return r;
}

static int add_targets(struct dm_task *dmt, const struct dmx_table *tbl)
{
	unsigned int i;

	for (i = 0; i < tbl->nr; i++)
		if (!dm_task_add_target(dmt, tbl->t[i].start, tbl->t[i].len, tbl->t[i].type,
					tbl->t[i].params))
			return -1;
	return 0;
}

static void fill_info(struct dm_task *dmt, struct dmx_info *info)
{
	struct dm_info di;
	const char *s;

	memset(info, 0, sizeof(*info));
	if (!dm_task_get_info(dmt, &di) || !di.exists)
		return;
	info->exists = true;
	info->suspended = di.suspended;
	info->live_table = di.live_table;
	info->inactive_table = di.inactive_table;
	info->read_only = di.read_only;
	info->open_count = di.open_count;
	info->event_nr = di.event_nr;
	info->major = di.major;
	info->minor = di.minor;
	s = dm_task_get_name(dmt);
	if (s)
		snprintf(info->name, sizeof(info->name), "%s", s);
	s = dm_task_get_uuid(dmt);
	if (s)
		snprintf(info->uuid, sizeof(info->uuid), "%s", s);
}

int dmx_info(const char *name, struct dmx_info *info)
{
	struct dm_task *dmt = task(DM_DEVICE_INFO, name);
	int r = -1;

	if (!dmt)
		return -1;
	if (dm_task_run(dmt)) {
		fill_info(dmt, info);
		r = 0;
	}
	dm_task_destroy(dmt);
	return r;
}

int dmx_info_devno(unsigned int major, unsigned int minor, struct dmx_info *info)
{
	struct dm_task *dmt = task(DM_DEVICE_INFO, NULL);
	int r = -1;

	if (!dmt)
		return -1;
	if (dm_task_set_major(dmt, major) && dm_task_set_minor(dmt, minor)) {
		quiet++;
		if (dm_task_run(dmt)) {
			fill_info(dmt, info);
			r = 0;
		} else {
			/* Not a dm device. */
			memset(info, 0, sizeof(*info));
			r = 0;
		}
		quiet--;
	}
	dm_task_destroy(dmt);
	return r;
}

/*---------------------------------------------------------------------------*/
/* Tables */
void dmx_table_add(struct dmx_table *tbl, uint64_t start, uint64_t len, const char *type,
		   const char *params)
{
	struct dmx_target *t;

	t = realloc(tbl->t, (tbl->nr + 1) * sizeof(*t));
	if (!t) {
		err("out of memory");
		exit(EXIT_FAIL);
	}
	tbl->t = t;
	t += tbl->nr++;
	t->start = start;
	t->len = len;
	t->type = xstrdup(type);
	t->params = xstrdup(params ? params : "");
}

void dmx_table_free(struct dmx_table *tbl)
{
	unsigned int i;

	for (i = 0; i < tbl->nr; i++) {
		free(tbl->t[i].type);
		free(tbl->t[i].params);
	}
	free(tbl->t);
	tbl->t = NULL;
	tbl->nr = 0;
}

void dmx_table_one(struct dmx_table *tbl, uint64_t len, const char *type, const char *fmt, ...)
{
	char params[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(params, sizeof(params), fmt, ap);
	va_end(ap);
	memset(tbl, 0, sizeof(*tbl));
	dmx_table_add(tbl, 0, len, type, params);
}

uint64_t dmx_table_len(const struct dmx_table *tbl)
{
	uint64_t len = 0;
	unsigned int i;

	for (i = 0; i < tbl->nr; i++)
		len += tbl->t[i].len;
	return len;
}

static int get_lines(int type, const char *name, struct dmx_table *tbl)
{
	struct dm_task *dmt = task(type, name);
	uint64_t start, len;
	char *ttype, *params;
	void *next = NULL;
	int r = -1;

	memset(tbl, 0, sizeof(*tbl));
	if (!dmt)
		return -1;
	if (!dm_task_run(dmt))
		goto out;
	do {
		next = dm_get_next_target(dmt, next, &start, &len, &ttype, &params);
		if (ttype)
			dmx_table_add(tbl, start, len, ttype, params);
	} while (next);
	r = 0;
out:
	dm_task_destroy(dmt);
	return r;
}

int dmx_table(const char *name, struct dmx_table *tbl)
{
	return get_lines(DM_DEVICE_TABLE, name, tbl);
}

int dmx_status(const char *name, struct dmx_table *tbl)
{
	return get_lines(DM_DEVICE_STATUS, name, tbl);
}

/*---------------------------------------------------------------------------*/
/* Create, load, suspend, resume, clear, remove, message */
int dmx_create(const char *name, const char *uuid, const struct dmx_table *tbl, bool ro,
	       bool hidden)
{
	uint16_t flags = hidden ? DM_UDEV_DISABLE_SUBSYSTEM_RULES_FLAG |
				  DM_UDEV_DISABLE_DISK_RULES_FLAG |
				  DM_UDEV_DISABLE_OTHER_RULES_FLAG : 0;
	struct dm_task *dmt = task(DM_DEVICE_CREATE, name);
	int r = -1;

	if (!dmt)
		return -1;
	if (uuid && !dm_task_set_uuid(dmt, uuid))
		goto out;
	if (ro && !dm_task_set_ro(dmt))
		goto out;
	if (add_targets(dmt, tbl))
		goto out;
	/* libdevmapper creates, loads and resumes, and removes on failure. */
	if (run_with_cookie(dmt, flags))
		r = 0;
out:
	dm_task_destroy(dmt);
	return r;
}

int dmx_load_ro(const char *name, const struct dmx_table *tbl, bool ro)
{
	struct dm_task *dmt = task(DM_DEVICE_RELOAD, name);
	int r = -1;

	if (!dmt)
		return -1;
	if ((!ro || dm_task_set_ro(dmt)) && !add_targets(dmt, tbl) && dm_task_run(dmt))
		r = 0;
	dm_task_destroy(dmt);
	return r;
}

int dmx_load(const char *name, const struct dmx_table *tbl)
{
	return dmx_load_ro(name, tbl, false);
}

/*
 * Runs a task that needs nothing but the device's name. Resume and remove
 * send a uevent, so they carry a udev cookie.
 */
static int run_plain(int type, const char *name)
{
	bool uevent = type == DM_DEVICE_RESUME || type == DM_DEVICE_REMOVE;
	struct dm_task *dmt = task(type, name);
	int r = -1;

	if (!dmt)
		return -1;
	/* libdevmapper retries a remove a few times while the device is busy. */
	if (type == DM_DEVICE_REMOVE && !dm_task_retry_remove(dmt))
		goto out;
	if (uevent ? run_with_cookie(dmt, 0) : dm_task_run(dmt))
		r = 0;
out:
	dm_task_destroy(dmt);
	return r;
}

/* Suspend flushes and freezes a file system on top (no skip_lockfs). */
int dmx_suspend(const char *name)
{
	return run_plain(DM_DEVICE_SUSPEND, name);
}

int dmx_resume(const char *name)
{
	return run_plain(DM_DEVICE_RESUME, name);
}

int dmx_clear(const char *name)
{
	return run_plain(DM_DEVICE_CLEAR, name);
}

int dmx_remove(const char *name)
{
	return run_plain(DM_DEVICE_REMOVE, name);
}

int dmx_message(const char *name, const char *msg)
{
	struct dm_task *dmt = task(DM_DEVICE_TARGET_MSG, name);
	int r = -1;

	if (!dmt)
		return -1;
	if (dm_task_set_sector(dmt, 0) && dm_task_set_message(dmt, msg) && dm_task_run(dmt))
		r = 0;
	dm_task_destroy(dmt);
	return r;
}

/*---------------------------------------------------------------------------*/
/* Events and versions */
int dmx_wait_event(const char *name, uint32_t event_nr)
{
	struct dm_task *dmt = task(DM_DEVICE_WAITEVENT, name);
	int r = -1, e;

	if (!dmt)
		return -1;
	if (!dm_task_set_event_nr(dmt, event_nr))
		goto out;
	quiet++;
	if (dm_task_run(dmt)) {
		r = 0;
	} else {
		e = dm_task_get_errno(dmt);
		if (e == EINTR)
			r = 1;
		else
			err("%s: waiting for an event failed: %s", name,
			    e == ENXIO ? "the device went away" : strerror(e));
	}
	quiet--;
out:
	dm_task_destroy(dmt);
	return r;
}

int dmx_target_version(const char *target, uint32_t version[3])
{
	struct dm_task *dmt = task(DM_DEVICE_LIST_VERSIONS, NULL);
	struct dm_versions *v, *last;
	int r = -1;

	if (!dmt)
		return -1;
	if (!dm_task_run(dmt))
		goto out;
	r = 0;
	v = dm_task_get_versions(dmt);
	do {
		last = v;
		if (!strcmp(v->name, target)) {
			memcpy(version, v->version, sizeof(v->version));
			r = 1;
			break;
		}
		v = (struct dm_versions *)((char *)v + v->next);
	} while (last != v);
out:
	dm_task_destroy(dmt);
	return r;
}

/*---------------------------------------------------------------------------*/
/* Kernel log */
static int kmsg_fd = -1;

void dmx_kmsg_mark(void)
{
	if (kmsg_fd >= 0)
		close(kmsg_fd);
	kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg_fd >= 0 && lseek(kmsg_fd, 0, SEEK_END) < 0) {
		close(kmsg_fd);
		kmsg_fd = -1;
	}
}

char *dmx_kmsg_reason(void)
{
	char rec[2048], *msg, *p, *out = NULL, *tmp;
	size_t outlen = 0;
	ssize_t n;

	if (kmsg_fd < 0)
		return NULL;
	for (;;) {
		n = read(kmsg_fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)	/* overwritten: go on */
			continue;
		if (n <= 0)
			break;
		rec[n] = '\0';
		msg = strchr(rec, ';');
		if (!msg)
			continue;
		msg++;
		msg[strcspn(msg, "\n")] = '\0';
		/* "device-mapper: table: 253:2: stream: <the constructor's error>" */
		p = strstr(msg, "device-mapper: table: ");
		if (p) {
			p += strlen("device-mapper: table: ");
			p += strcspn(p, " ");
			p += strspn(p, " ");
		} else {
			/* "device-mapper: stream: ...", "...: stream metadata: ..." */
			p = strstr(msg, "device-mapper: stream");
			if (!p)
				continue;
			p += strlen("device-mapper: ");
		}
		if (!*p || !strncmp(p, "error adding target", 19))
			continue;
		tmp = realloc(out, outlen + strlen(p) + 3);
		if (!tmp)
			break;
		out = tmp;
		if (outlen) {
			memcpy(out + outlen, "; ", 2);
			outlen += 2;
		}
		strcpy(out + outlen, p);
		outlen += strlen(p);
	}
	close(kmsg_fd);
	kmsg_fd = -1;
	return out;
}
