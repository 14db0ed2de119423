/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmstream: the device-mapper calls, through libdevmapper.
 *
 * Every call that makes the kernel send a uevent (create, resume, remove)
 * carries a udev cookie and waits for it, so /dev/mapper nodes exist when
 * it returns, with or without udev (without udev, or with DM_DISABLE_UDEV
 * set, libdevmapper makes the nodes itself). Errors are printed; functions
 * return 0 on success and -1 on failure unless said otherwise.
 */
#ifndef DMSTREAM_DM_H
#define DMSTREAM_DM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dmx_info {
	bool exists;
	bool suspended;
	bool live_table;
	bool inactive_table;
	bool read_only;
	int open_count;
	uint32_t event_nr;
	unsigned int major, minor;
	char name[128];
	char uuid[129];
};

struct dmx_target {
	uint64_t start, len;	/* sectors */
	char *type;
	char *params;
};

struct dmx_table {
	unsigned int nr;
	struct dmx_target *t;
};

/* Sets up logging and udev synchronisation. */
void dmx_init(void);

/* Info by name (exists is false when there is no such device). */
int dmx_info(const char *name, struct dmx_info *info);
/* Info by device number; exists is false when it is not a dm device. */
int dmx_info_devno(unsigned int major, unsigned int minor, struct dmx_info *info);

/* The live table (DM_DEVICE_TABLE) or the status lines (DM_DEVICE_STATUS). */
int dmx_table(const char *name, struct dmx_table *tbl);
int dmx_status(const char *name, struct dmx_table *tbl);
void dmx_table_add(struct dmx_table *tbl, uint64_t start, uint64_t len, const char *type,
		   const char *params);
/* A new table of one target from sector 0, its parameters formatted. */
void dmx_table_one(struct dmx_table *tbl, uint64_t len, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void dmx_table_free(struct dmx_table *tbl);
uint64_t dmx_table_len(const struct dmx_table *tbl);

/* Create with a table and resume; @ro maps it read-only; @hidden keeps udev's
 * subsystem, disk and other rules (blkid, LVM scans) away from it. */
int dmx_create(const char *name, const char *uuid, const struct dmx_table *tbl, bool ro,
	       bool hidden);
int dmx_load(const char *name, const struct dmx_table *tbl);
/* The same, the table read-only when @ro (writes to the device then fail). */
int dmx_load_ro(const char *name, const struct dmx_table *tbl, bool ro);
int dmx_suspend(const char *name);
int dmx_resume(const char *name);
int dmx_clear(const char *name);
/* Retries a little while the device is briefly held (udev, blkid). */
int dmx_remove(const char *name);
int dmx_message(const char *name, const char *msg);

/*
 * Sleeps until the device's event counter differs from @event_nr. Returns 0
 * after an event, 1 when a signal interrupted the wait, -1 on error (the
 * device went away, say).
 */
int dmx_wait_event(const char *name, uint32_t event_nr);

/* 1 and the version when the kernel has @target, 0 when not, -1 on error. */
int dmx_target_version(const char *target, uint32_t version[3]);

/*
 * Kernel log access, to explain a refused table: mark before the ioctl,
 * then fetch the device-mapper lines logged since (NULL when none or when
 * /dev/kmsg cannot be read). The caller frees the string.
 */
void dmx_kmsg_mark(void);
char *dmx_kmsg_reason(void);

#endif /* DMSTREAM_DM_H */
