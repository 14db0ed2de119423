/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmstream: the identity of a block device, for the identity record of
 * stream-format.h, and finding a device again by its recorded identity.
 *
 * Everything comes from sysfs and udev's database (/run/udev/data), all of
 * it optional: a device without udev data is known by its size and, for a
 * dm device, its name and uuid.
 */
#ifndef DMSTREAM_IDENTITY_H
#define DMSTREAM_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "stream-format.h"

/* A block device of this machine, as a scan finds it. */
struct ident_dev {
	char path[256];		/* /dev/<kernel name> */
	unsigned int major, minor;
	bool is_stream;		/* a dm device whose table is a stream */
	struct stream_device_identity_disk id;
};

/*
 * Copies @value into string field @field of @len bytes, NUL-padded; stores
 * "" when it does not fit or is not printable ASCII (an unknown value is
 * better than a wrong one).
 */
void ident_set(char *field, size_t len, const char *value);
#define IDENT_SET(field, value)	ident_set((field), sizeof(field), (value))

/* Fills @d for device @major:@minor. Returns 0, or -1 when sysfs lacks it. */
int ident_collect(unsigned int major, unsigned int minor, struct stream_device_identity_disk *d);

/*
 * Asks for the origin samples of an origin of @size sectors: their sectors
 * (0, the last 4 KiB, six evenly between, 4 KiB aligned), all of them in
 * sample_wanted, none checked. The kernel takes them at the stream's first
 * resume (stream-format.h).
 */
void ident_want_samples(uint64_t size, struct stream_identity_disk *id);

/*
 * Takes the origin samples of @id now, from @path (an origin of @size
 * sectors, not changing: rebind) with O_DIRECT: the same sectors, their
 * CRC32C, all of them checked, none wanted. Returns 0 or -1 (message
 * printed).
 */
int ident_take_samples(const char *path, uint64_t size, struct stream_identity_disk *id);

/*
 * Compares the checked samples of @id with what @path holds. Returns the
 * number of the first sample that differs, -1 when all match, -2 on a read
 * error (message printed).
 */
int ident_check_samples(const char *path, const struct stream_identity_disk *id);

/*
 * Every block device of the machine (/sys/class/block), with its identity;
 * *@devs freed by the caller. Returns the number found, or -1.
 */
int ident_scan(struct ident_dev **devs);

/*
 * The devices of @devs that recorded identity @want names: by the first of
 * dm uuid, WWN, serial, PARTUUID and fs uuid that it holds, the other
 * recorded ones agreeing, and the same size; without any of those, by the
 * recorded major:minor and size (*@weak set). Stream devices and @skip
 * (major:minor, e.g. the metadata device) never match. Stores up to @max
 * indexes in @match; returns how many matched. @what gets the key looked
 * for, for messages.
 */
int ident_match(const struct ident_dev *devs, int nr, const struct stream_device_identity_disk *want,
		unsigned int skip_major, unsigned int skip_minor, int *match, int max,
		char *what, size_t what_len, bool *weak);

/* A recorded device identity as `dump --json` and `list --json` print it. */
json_object *identity_dev_json(const struct stream_device_identity_disk *d);

#endif /* DMSTREAM_IDENTITY_H */
