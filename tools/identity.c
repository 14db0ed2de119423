// SPDX-License-Identifier: GPL-2.0
/*
 * dmstream: the identity of a block device (size, dm name and uuid, udev's
 * WWN, serial, PARTUUID and filesystem uuid), the origin samples, and
 * finding a device again by its recorded identity.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream-format.h"
#include "stream-interface.h"
#include "dm.h"
#include "identity.h"
#include "meta.h"
#include "util.h"

void ident_set(char *field, size_t len, const char *value)
{
	size_t n = strlen(value), i;

	memset(field, 0, len);
	if (n >= len)
		return;
	for (i = 0; i < n; i++)
		if (value[i] < 0x20 || value[i] > 0x7e)
			return;
	memcpy(field, value, n);
}

/* The first line of a small sysfs file, without its newline; -1 when absent. */
static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	int r = -1;

	if (!f)
		return -1;
	if (fgets(buf, len, f)) {
		buf[strcspn(buf, "\n")] = '\0';
		r = 0;
	}
	fclose(f);
	return r;
}

/* What udev recorded for the device: the E: lines we use. */
static void udev_data(unsigned int major, unsigned int minor, struct stream_device_identity_disk *d)
{
	char path[64], line[512], wwn[256] = "", wwn_ext[256] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/run/udev/data/b%u:%u", major, minor);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *v;

		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "E:", 2) || !(v = strchr(line, '=')))
			continue;
		*v++ = '\0';
		if (!strcmp(line + 2, "ID_WWN_WITH_EXTENSION"))
			snprintf(wwn_ext, sizeof(wwn_ext), "%s", v);
		else if (!strcmp(line + 2, "ID_WWN"))
			snprintf(wwn, sizeof(wwn), "%s", v);
		else if (!strcmp(line + 2, "ID_SERIAL"))
			IDENT_SET(d->serial, v);
		else if (!strcmp(line + 2, "ID_PART_ENTRY_UUID"))
			IDENT_SET(d->part_uuid, v);
		else if (!strcmp(line + 2, "ID_FS_UUID"))
			IDENT_SET(d->fs_uuid, v);
	}
	fclose(f);
	IDENT_SET(d->wwn, wwn_ext[0] ? wwn_ext : wwn);
}

int ident_collect(unsigned int major, unsigned int minor, struct stream_device_identity_disk *d)
{
	char path[96], buf[256];
	uint64_t size;

	memset(d, 0, sizeof(*d));
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/size", major, minor);
	if (read_line(path, buf, sizeof(buf)) || sscanf(buf, "%" SCNu64, &size) != 1)
		return -1;
	d->size = htole64(size);
	d->major = htole32(major);
	d->minor = htole32(minor);
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/dm/name", major, minor);
	if (!read_line(path, buf, sizeof(buf)))
		IDENT_SET(d->dm_name, buf);
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/dm/uuid", major, minor);
	if (!read_line(path, buf, sizeof(buf)))
		IDENT_SET(d->dm_uuid, buf);
	udev_data(major, minor, d);
	return 0;
}

/*---------------------------------------------------------------------------*/
/* Origin samples */
static int open_direct(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);

	if (fd < 0 && errno == EINVAL)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		err("%s: %s", path, strerror(errno));
	return fd;
}

/* The CRC32C of the sample at @sector, into *@csum. */
static int sample_csum(int fd, const char *path, uint64_t sector, void *buf, uint32_t *csum)
{
	size_t len = STREAM_SAMPLE_SECTORS * 512, done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, (char *)buf + done, len - done, (off_t)(sector * 512 + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err("%s: cannot read sector %" PRIu64 ": %s", path, sector,
			    n < 0 ? strerror(errno) : "past the end");
			return -1;
		}
		done += n;
	}
	*csum = meta_crc32c(buf, len);
	return 0;
}

/* Sector 0, the last 4 KiB, evenly between: 4 KiB aligned. */
static uint64_t sample_at(uint64_t size, unsigned int i)
{
	uint64_t sector = (size - STREAM_SAMPLE_SECTORS) * i / (STREAM_NR_SAMPLES - 1);

	return sector & ~(uint64_t)(STREAM_SAMPLE_SECTORS - 1);
}

void ident_want_samples(uint64_t size, struct stream_identity_disk *id)
{
	unsigned int i;

	id->sample_checked = 0;
	id->sample_wanted = 0;
	for (i = 0; i < STREAM_NR_SAMPLES; i++) {
		id->sample_sector[i] = 0;
		id->sample_csum[i] = 0;
	}
	if (size < STREAM_SAMPLE_SECTORS)
		return;
	for (i = 0; i < STREAM_NR_SAMPLES; i++)
		id->sample_sector[i] = htole64(sample_at(size, i));
	id->sample_wanted = htole32((1U << STREAM_NR_SAMPLES) - 1);
}

int ident_take_samples(const char *path, uint64_t size, struct stream_identity_disk *id)
{
	uint32_t csum, checked = 0;
	unsigned int i;
	int fd, r = 0;
	void *buf;

	ident_want_samples(size, id);
	id->sample_wanted = 0;
	if (size < STREAM_SAMPLE_SECTORS)
		return 0;
	fd = open_direct(path);
	if (fd < 0)
		return -1;
	buf = xmalloc_aligned(STREAM_SAMPLE_SECTORS * 512);
	for (i = 0; i < STREAM_NR_SAMPLES && !r; i++) {
		r = sample_csum(fd, path, le64toh(id->sample_sector[i]), buf, &csum);
		id->sample_csum[i] = htole32(csum);
		checked |= 1U << i;
	}
	if (!r)
		id->sample_checked = htole32(checked);
	free(buf);
	close(fd);
	return r;
}

int ident_check_samples(const char *path, const struct stream_identity_disk *id)
{
	uint32_t checked = le32toh(id->sample_checked), csum;
	unsigned int i;
	int fd, r = -1;
	void *buf;

	if (!checked)
		return -1;
	fd = open_direct(path);
	if (fd < 0)
		return -2;
	buf = xmalloc_aligned(STREAM_SAMPLE_SECTORS * 512);
	for (i = 0; i < STREAM_NR_SAMPLES && r == -1; i++) {
		if (!(checked & (1U << i)))
			continue;
		if (sample_csum(fd, path, le64toh(id->sample_sector[i]), buf, &csum))
			r = -2;
		else if (csum != le32toh(id->sample_csum[i]))
			r = i;
	}
	free(buf);
	close(fd);
	return r;
}

/*---------------------------------------------------------------------------*/
/* Scan and match */
static bool dm_is_stream(const char *name)
{
	struct dmx_table t;
	bool r = false;

	if (dmx_table(name, &t))
		return false;
	r = t.nr >= 1 && !strcmp(t.t[0].type, STREAM_TARGET_NAME);
	dmx_table_free(&t);
	return r;
}

int ident_scan(struct ident_dev **devs)
{
	DIR *dir = opendir("/sys/class/block");
	struct ident_dev *v = NULL, *d;
	struct dirent *e;
	int n = 0, cap = 0;
	char path[320], buf[64];

	if (!dir) {
		err("/sys/class/block: %s", strerror(errno));
		return -1;
	}
	while ((e = readdir(dir))) {
		unsigned int major, minor;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/block/%s/dev", e->d_name);
		if (read_line(path, buf, sizeof(buf)) || parse_devt(buf, &major, &minor))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 32;
			v = realloc(v, cap * sizeof(*v));
			if (!v) {
				err("out of memory");
				exit(EXIT_FAIL);
			}
		}
		d = &v[n];
		memset(d, 0, sizeof(*d));
		if (ident_collect(major, minor, &d->id))
			continue;
		snprintf(d->path, sizeof(d->path), "/dev/%.240s", e->d_name);
		d->major = major;
		d->minor = minor;
		d->is_stream = d->id.dm_name[0] && dm_is_stream(d->id.dm_name);
		n++;
	}
	closedir(dir);
	*devs = v;
	return n;
}

/* Two recorded strings agree unless both are known and differ. */
static bool agree(const char *a, const char *b)
{
	return !a[0] || !b[0] || !strcmp(a, b);
}

int ident_match(const struct ident_dev *devs, int nr, const struct stream_device_identity_disk *want,
		unsigned int skip_major, unsigned int skip_minor, int *match, int max,
		char *what, size_t what_len, bool *weak)
{
	const struct { const char *name; size_t off; } keys[] = {
		{ "dm uuid", offsetof(struct stream_device_identity_disk, dm_uuid) },
		{ "WWN", offsetof(struct stream_device_identity_disk, wwn) },
		{ "serial", offsetof(struct stream_device_identity_disk, serial) },
		{ "PARTUUID", offsetof(struct stream_device_identity_disk, part_uuid) },
		{ "fs uuid", offsetof(struct stream_device_identity_disk, fs_uuid) },
	};
	const size_t nkeys = sizeof(keys) / sizeof(keys[0]);
	uint64_t size = le64toh(want->size);
	size_t k, key = nkeys, j;
	int i, n = 0;

	for (k = 0; k < nkeys && key == nkeys; k++)
		if (((const char *)want + keys[k].off)[0])
			key = k;
	*weak = key == nkeys;
	if (*weak)
		snprintf(what, what_len, "device %u:%u of %" PRIu64 " sectors (no dm uuid, WWN, "
			 "serial, PARTUUID or fs uuid recorded)", le32toh(want->major),
			 le32toh(want->minor), size);
	else
		snprintf(what, what_len, "%s %s, %" PRIu64 " sectors", keys[key].name,
			 (const char *)want + keys[key].off, size);

	for (i = 0; i < nr; i++) {
		const struct ident_dev *d = &devs[i];
		bool ok = true;

		if (d->is_stream || (d->major == skip_major && d->minor == skip_minor) ||
		    le64toh(d->id.size) != size)
			continue;
		if (*weak) {
			ok = d->major == le32toh(want->major) && d->minor == le32toh(want->minor);
		} else {
			ok = !strcmp((const char *)&d->id + keys[key].off,
				     (const char *)want + keys[key].off);
			for (j = key + 1; j < nkeys && ok; j++)
				ok = agree((const char *)&d->id + keys[j].off,
					   (const char *)want + keys[j].off);
		}
		if (ok && n < max)
			match[n] = i;
		n += ok;
	}
	return n;
}

json_object *identity_dev_json(const struct stream_device_identity_disk *d)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "size", json_object_new_uint64(le64toh(d->size)));
	json_object_object_add(o, "major", json_object_new_uint64(le32toh(d->major)));
	json_object_object_add(o, "minor", json_object_new_uint64(le32toh(d->minor)));
	json_object_object_add(o, "dm_name", json_object_new_string(d->dm_name));
	json_object_object_add(o, "dm_uuid", json_object_new_string(d->dm_uuid));
	json_object_object_add(o, "wwn", json_object_new_string(d->wwn));
	json_object_object_add(o, "serial", json_object_new_string(d->serial));
	json_object_object_add(o, "part_uuid", json_object_new_string(d->part_uuid));
	json_object_object_add(o, "fs_uuid", json_object_new_string(d->fs_uuid));
	return o;
}
