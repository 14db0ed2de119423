// SPDX-License-Identifier: GPL-2.0
/*
 * dmstream: reading and checking a dm-stream metadata device offline, with
 * the on-disk format of dm-stream/stream-format.h and the rules the module
 * applies when it loads the metadata (dm-stream/stream-metadata.c).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <isa-l/crc.h>
#include <stdarg.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stream-format.h"
#include "stream-interface.h"
#include "meta.h"
#include "util.h"

/* Bitmap blocks read at once during a scan (two slots each). */
#define SCAN_BATCH	128

_Static_assert(sizeof(struct stream_superblock_disk) == 96, "superblock layout");
_Static_assert(sizeof(struct stream_bitmap_disk) == STREAM_BITMAP_HDR_SIZE, "bitmap header layout");
_Static_assert(sizeof(struct stream_device_identity_disk) == 520, "device identity layout");
_Static_assert(sizeof(struct stream_identity_disk) == 2480, "identity record layout");
_Static_assert(STREAM_IDENTITY_OFFSET + sizeof(struct stream_identity_disk) <= STREAM_BLOCK_SIZE,
	       "the identity record fits in the superblock block");

/*---------------------------------------------------------------------------*/
/* Checksums */

/*
 * The kernel's crc32c(~0, p, len): CRC32C seeded with all ones, without the
 * final inversion. ISA-L's crc32_iscsi() has the same convention (the
 * self-test below pins it).
 */
static uint32_t crc32c_raw(const void *p, size_t len)
{
	return crc32_iscsi((unsigned char *)p, (int)len, 0xffffffffU);
}

int meta_crc_selftest(void)
{
	/* Standard CRC32C("123456789") is 0xe3069283; the kernel's raw form
	 * is its complement. */
	static const char vec[] = "123456789";

	if (crc32c_raw(vec, 9) != (uint32_t)~0xe3069283U) {
		err("internal error: crc32_iscsi() does not match the kernel's crc32c()");
		return -1;
	}
	return 0;
}

uint32_t meta_crc32c(const void *p, size_t len)
{
	return crc32c_raw(p, len);
}

uint32_t meta_crc32c_more(uint32_t crc, const void *p, size_t len)
{
	return crc32_iscsi((unsigned char *)p, (int)len, crc);
}

static uint32_t block_csum(const void *block, uint32_t xor)
{
	return crc32c_raw((const char *)block + 4, STREAM_BLOCK_SIZE - 4) ^ xor;
}

/* ceil(@n / @d) for @d > 0, without the overflow of (n + d - 1) / d. */
static uint64_t div_round_up(uint64_t n, uint64_t d)
{
	return n / d + (n % d != 0);
}

/*---------------------------------------------------------------------------*/
/* Device access */
/* What a file that cannot hold metadata is, for the message. */
static const char *file_kind(mode_t mode)
{
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISSOCK(mode))
		return "a socket";
	return "not a regular file";
}

static bool type_ok(const char *path, const struct stat *st)
{
	if (S_ISBLK(st->st_mode) || S_ISREG(st->st_mode))
		return true;
	err("%s: %s, not a block device or a regular file", path, file_kind(st->st_mode));
	return false;
}

/*
 * Only block devices and regular files are opened: the type is checked
 * before the open, since opening a FIFO waits for a writer and opening some
 * character devices acts (a tape rewinds). The open itself is O_NONBLOCK,
 * in case the path changes in between, and the type checked again.
 */
int meta_open(const char *path, bool rw, bool *in_use, uint64_t *size)
{
	int mode = (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK;
	struct stat st;
	int fd, fl;

	*in_use = false;
	if (stat(path, &st)) {
		err("%s: %s", path, strerror(errno));
		return -1;
	}
	if (!type_ok(path, &st))
		return -1;
	fd = open(path, mode | O_EXCL | O_DIRECT);
	if (fd < 0 && errno == EBUSY) {
		*in_use = true;
		fd = open(path, mode | O_DIRECT);
	}
	if (fd < 0 && errno == EINVAL)	/* a file on tmpfs, say */
		fd = open(path, mode);
	if (fd < 0) {
		err("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st)) {
		err("%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!type_ok(path, &st)) {
		close(fd);
		return -1;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK)) {
		err("%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size)) {
			err("%s: cannot read the device size: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
	} else {
		*size = st.st_size;
	}
	return fd;
}

static int read_blocks(int fd, uint64_t first, unsigned int nr, void *buf)
{
	size_t len = (size_t)nr * STREAM_BLOCK_SIZE;
	off_t off = (off_t)first * STREAM_BLOCK_SIZE;
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, (char *)buf + done, len - done, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err("cannot read metadata block %" PRIu64 ": %s",
			    first + done / STREAM_BLOCK_SIZE, strerror(errno));
			return -1;
		}
		if (n == 0) {
			err("metadata block %" PRIu64 " is past the end of the device",
			    first + done / STREAM_BLOCK_SIZE);
			return -1;
		}
		done += n;
	}
	return 0;
}

int meta_read_block(int fd, uint64_t block, void *buf)
{
	return read_blocks(fd, block, 1, buf);
}

int meta_wipe(int fd)
{
	void *zero = xmalloc_aligned(STREAM_BLOCK_SIZE);
	ssize_t n;
	int r = 0;

	n = pwrite(fd, zero, STREAM_BLOCK_SIZE, 0);
	if (n != STREAM_BLOCK_SIZE || fsync(fd)) {
		err("cannot clear the metadata superblock: %s",
		    n < 0 ? strerror(errno) : "short write");
		r = -1;
	}
	free(zero);
	return r;
}

static int write_blocks(int fd, uint64_t first, unsigned int nr, const void *buf)
{
	size_t len = (size_t)nr * STREAM_BLOCK_SIZE, done = 0;
	off_t off = (off_t)first * STREAM_BLOCK_SIZE;
	ssize_t n;

	while (done < len) {
		n = pwrite(fd, (const char *)buf + done, len - done, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err("cannot write metadata block %" PRIu64 ": %s",
			    first + done / STREAM_BLOCK_SIZE, n < 0 ? strerror(errno) : "short write");
			return -1;
		}
		done += n;
	}
	return 0;
}

static int sync_dev(int fd)
{
	if (fsync(fd)) {
		err("cannot flush the metadata device: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Bitmap slot of transaction 0 at @location for bitmap block @index: the
 * kernel's bitmap_pack(), its bits from @seed (NULL: none copied).
 */
static void slot_pack_fresh(void *block, uint64_t location, uint64_t index,
			    const struct seed *seed)
{
	struct stream_bitmap_disk *d = block;
	const size_t bytes = STREAM_BITS_PER_BLOCK / 8;
	uint64_t first = index * bytes, total;

	memset(block, 0, STREAM_BLOCK_SIZE);
	d->magic = htole32(STREAM_BITMAP_MAGIC);
	d->blocknr = htole64(location);
	d->transaction_id = htole64(0);
	if (seed) {
		/* Bits past nr_regions are zero in the seed too. */
		total = (seed->nr_regions + 7) / 8;
		if (first < total)
			memcpy((char *)block + STREAM_BITMAP_HDR_SIZE, seed->bits + first,
			       total - first < bytes ? total - first : bytes);
	}
	d->csum = htole32(block_csum(block, STREAM_BITMAP_CSUM_XOR));
}

/* The kernel's sb_pack() for transaction 0, nothing copied, flags 0. */
static void sb_pack_fresh(void *block, const struct meta_geometry *geo,
			  const struct stream_identity_disk *id, uint64_t nr_copied)
{
	struct stream_superblock_disk *d = block;
	uint64_t nr_regions = div_round_up(geo->target_size, geo->region_size);

	memset(block, 0, STREAM_BLOCK_SIZE);
	d->flags = htole32(0);
	d->blocknr = htole64(STREAM_SB_BLOCK);
	d->magic = htole64(STREAM_MAGIC);
	d->version = htole32(STREAM_VERSION);
	d->block_size = htole32(STREAM_BLOCK_SIZE);
	d->region_size = htole32(geo->region_size);
	d->target_size = htole64(geo->target_size);
	d->nr_regions = htole64(nr_regions);
	d->origin_size = htole64(geo->origin_size);
	d->dest_size = htole64(geo->dest_size);
	d->nr_bitmap_blocks = htole64(stream_nr_bitmap_blocks(nr_regions));
	d->transaction_id = htole64(0);
	d->nr_copied = htole64(nr_copied);
	if (id)
		memcpy((char *)block + STREAM_IDENTITY_OFFSET, id, sizeof(*id));
	d->csum = htole32(block_csum(block, STREAM_SB_CSUM_XOR));
}

int meta_format(int fd, const struct meta_geometry *geo, const struct stream_identity_disk *id,
		const struct seed *seed)
{
	uint64_t nr_regions, nr_blocks, i;
	uint8_t *buf = xmalloc_aligned((size_t)SCAN_BATCH * 2 * STREAM_BLOCK_SIZE);
	unsigned int k, batch;
	int r = -1;

	if (!geo->region_size || !geo->target_size) {
		err("internal error: formatting metadata for an empty geometry");
		goto out;
	}
	nr_regions = div_round_up(geo->target_size, geo->region_size);
	nr_blocks = stream_nr_bitmap_blocks(nr_regions);
	if (seed && seed->nr_regions != nr_regions) {
		err("internal error: a seed of %" PRIu64 " regions for %" PRIu64, seed->nr_regions,
		    nr_regions);
		goto out;
	}
	/* No valid superblock while the slots are written. */
	memset(buf, 0, STREAM_BLOCK_SIZE);
	if (write_blocks(fd, STREAM_SB_BLOCK, 1, buf) || sync_dev(fd))
		goto out;
	for (i = 0; i < nr_blocks; i += batch) {
		batch = nr_blocks - i < SCAN_BATCH ? nr_blocks - i : SCAN_BATCH;
		/* Both slots alike: either one the kernel picks holds the seed. */
		for (k = 0; k < 2 * batch; k++)
			slot_pack_fresh(buf + (size_t)k * STREAM_BLOCK_SIZE,
					stream_bitmap_location(i, 0) + k, i + k / 2, seed);
		if (write_blocks(fd, stream_bitmap_location(i, 0), 2 * batch, buf))
			goto out;
	}
	if (sync_dev(fd))
		goto out;
	sb_pack_fresh(buf, geo, id, seed ? seed->nr_set : 0);
	if (write_blocks(fd, STREAM_SB_BLOCK, 1, buf) || sync_dev(fd))
		goto out;
	r = 0;
out:
	free(buf);
	return r;
}

int meta_write_identity(int fd, const struct meta_sb *expect,
			const struct stream_identity_disk *id)
{
	void *block = xmalloc_aligned(STREAM_BLOCK_SIZE);
	struct stream_superblock_disk *d = block;
	int r = -1;

	if (meta_read_block(fd, STREAM_SB_BLOCK, block))
		goto out;
	if (le32toh(d->csum) != expect->csum || le64toh(d->transaction_id) !=
	    expect->transaction_id || le32toh(d->flags) != expect->flags) {
		err("the metadata superblock changed while it was being read: is the stream "
		    "active?");
		goto out;
	}
	memcpy((char *)block + STREAM_IDENTITY_OFFSET, id, sizeof(*id));
	d->csum = htole32(block_csum(block, STREAM_SB_CSUM_XOR));
	if (write_blocks(fd, STREAM_SB_BLOCK, 1, block) || sync_dev(fd))
		goto out;
	r = 0;
out:
	free(block);
	return r;
}

/*---------------------------------------------------------------------------*/
/* Superblock */
static bool all_zero(const void *p, size_t len)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (c[i])
			return false;
	return true;
}

static void sb_unpack(const void *block, struct meta_sb *sb)
{
	const struct stream_superblock_disk *d = block;

	memset(sb, 0, sizeof(*sb));
	sb->csum = le32toh(d->csum);
	sb->csum_calc = block_csum(block, STREAM_SB_CSUM_XOR);
	sb->flags = le32toh(d->flags);
	sb->blocknr = le64toh(d->blocknr);
	sb->magic = le64toh(d->magic);
	sb->version = le32toh(d->version);
	sb->block_size = le32toh(d->block_size);
	sb->region_size = le32toh(d->region_size);
	sb->reserved0 = le32toh(d->reserved0);
	sb->target_size = le64toh(d->target_size);
	sb->nr_regions = le64toh(d->nr_regions);
	sb->origin_size = le64toh(d->origin_size);
	sb->dest_size = le64toh(d->dest_size);
	sb->nr_bitmap_blocks = le64toh(d->nr_bitmap_blocks);
	sb->transaction_id = le64toh(d->transaction_id);
	sb->nr_copied = le64toh(d->nr_copied);
	sb->blank = all_zero(block, STREAM_BLOCK_SIZE);
	sb->tail_zero = all_zero((const char *)block + sizeof(*d),
				 STREAM_IDENTITY_OFFSET - sizeof(*d));
	memcpy(&sb->identity, (const char *)block + STREAM_IDENTITY_OFFSET, sizeof(sb->identity));
	sb->has_identity = !all_zero(&sb->identity, sizeof(sb->identity));
	sb->identity_tail_zero =
		all_zero((const char *)block + STREAM_IDENTITY_OFFSET + sizeof(sb->identity),
			 STREAM_BLOCK_SIZE - STREAM_IDENTITY_OFFSET - sizeof(sb->identity));
}

int meta_read_sb(int fd, struct meta_sb *sb)
{
	void *block = xmalloc_aligned(STREAM_BLOCK_SIZE);
	int r;

	r = meta_read_block(fd, STREAM_SB_BLOCK, block);
	if (!r)
		sb_unpack(block, sb);
	free(block);
	return r;
}

/* In the order and words of the module's sb_check(). */
const char *meta_sb_header_problem(const struct meta_sb *sb)
{
	if (sb->magic != STREAM_MAGIC)
		return "Metadata device holds something else: bad superblock magic";
	if (sb->csum != sb->csum_calc)
		return "Metadata superblock checksum mismatch";
	if (sb->blocknr != STREAM_SB_BLOCK)
		return "Metadata superblock has a wrong block number";
	if (sb->version != STREAM_VERSION)
		return "Unsupported metadata version";
	if (sb->block_size != STREAM_BLOCK_SIZE)
		return "Unsupported metadata block size";
	return NULL;
}

const char *meta_sb_geometry_mismatch(const struct meta_sb *sb, const struct meta_geometry *geo)
{
	if (sb->region_size != geo->region_size)
		return "Metadata was formatted for another region size";
	if (sb->target_size != geo->target_size)
		return "Metadata was formatted for another target length";
	if (sb->origin_size != geo->origin_size)
		return "Metadata was formatted for another origin size";
	if (sb->dest_size != geo->dest_size)
		return "Metadata was formatted for another destination size";
	return NULL;
}

/*---------------------------------------------------------------------------*/
/* Identity record */
/*
 * A string field of @len bytes is sound when it holds a NUL, only zero
 * bytes after it, and printable ASCII before it (and newlines, with
 * @newlines). Returns NULL or what is wrong.
 */
static const char *id_string_problem(const char *field, size_t len, bool newlines)
{
	const char *nul = memchr(field, 0, len);
	const char *c;

	if (!nul)
		return "is not NUL-terminated";
	for (c = field; c < nul; c++)
		if ((*c < 0x20 || *c > 0x7e) && !(newlines && *c == '\n'))
			return "holds a byte that is not printable ASCII";
	if (!all_zero(nul, field + len - nul))
		return "has bytes after its NUL";
	return NULL;
}

#define ID_FIELD(s, f)	{ #f, (s)->f, sizeof((s)->f) }

static const char *dev_identity_problem(const char *role,
					const struct stream_device_identity_disk *d,
					uint64_t sb_size, char *buf, size_t len)
{
	const struct { const char *name; const char *p; size_t len; } strs[] = {
		ID_FIELD(d, dm_name), ID_FIELD(d, dm_uuid), ID_FIELD(d, wwn),
		ID_FIELD(d, serial), ID_FIELD(d, part_uuid), ID_FIELD(d, fs_uuid),
	};
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		why = id_string_problem(strs[i].p, strs[i].len, false);
		if (why) {
			snprintf(buf, len, "identity record: %s %s %s", role, strs[i].name, why);
			return buf;
		}
	}
	if (le64toh(d->size) != sb_size) {
		snprintf(buf, len, "identity record: %s size %" PRIu64
			 " sectors is not the superblock's %" PRIu64, role, (uint64_t)le64toh(d->size),
			 sb_size);
		return buf;
	}
	return NULL;
}

const char *meta_identity_problem(const struct stream_identity_disk *id,
				  const struct meta_sb *sb, char *buf, size_t len)
{
	const struct { const char *name; const char *p; size_t len; } strs[] = {
		ID_FIELD(id, name), ID_FIELD(id, uuid),
	};
	uint32_t checked = le32toh(id->sample_checked) | le32toh(id->sample_wanted);
	uint64_t sector;
	const char *why;
	size_t i;

	if (le32toh(id->magic) != STREAM_IDENTITY_MAGIC) {
		snprintf(buf, len, "identity record: bad magic 0x%08" PRIx32 " (expected 0x%08x)",
			 le32toh(id->magic), STREAM_IDENTITY_MAGIC);
		return buf;
	}
	if (le32toh(id->options) & ~(STREAM_ID_OPT_MIRROR | STREAM_ID_OPT_NO_DISCARD_PASSDOWN |
				      STREAM_ID_OPT_MERGE | STREAM_ID_OPT_ROLLBACK |
				      STREAM_ID_OPT_COPY_ON_READ | STREAM_ID_OPT_SKIP_ZEROES)) {
		snprintf(buf, len, "identity record: unknown options 0x%" PRIx32,
			 le32toh(id->options));
		return buf;
	}
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		why = id_string_problem(strs[i].p, strs[i].len, false);
		if (why) {
			snprintf(buf, len, "identity record: stream %s %s", strs[i].name, why);
			return buf;
		}
	}
	if (!id->name[0]) {
		snprintf(buf, len, "identity record: the stream's name is empty");
		return buf;
	}
	why = id_string_problem(id->origin_table, sizeof(id->origin_table), true);
	if (why) {
		snprintf(buf, len, "identity record: origin_table %s", why);
		return buf;
	}
	if (le32toh(id->max_inflight) && (le32toh(id->max_inflight) < STREAM_MIN_MAX_INFLIGHT ||
					  le32toh(id->max_inflight) > STREAM_MAX_MAX_INFLIGHT)) {
		snprintf(buf, len, "identity record: max_inflight %" PRIu32 " is out of range",
			 le32toh(id->max_inflight));
		return buf;
	}
	if (checked & ~((1U << STREAM_NR_SAMPLES) - 1)) {
		snprintf(buf, len, "identity record: sample_checked or sample_wanted 0x%" PRIx32
			 " names samples past the %u there are", checked, STREAM_NR_SAMPLES);
		return buf;
	}
	for (i = 0; i < STREAM_NR_SAMPLES; i++) {
		sector = le64toh(id->sample_sector[i]);
		if ((checked & (1U << i)) && (sector > sb->origin_size ||
					      sb->origin_size - sector < STREAM_SAMPLE_SECTORS)) {
			snprintf(buf, len, "identity record: sample %zu at sector %" PRIu64
				 " is past the origin's end (%" PRIu64 " sectors)", i, sector,
				 sb->origin_size);
			return buf;
		}
	}
	if (dev_identity_problem("origin", &id->origin, sb->origin_size, buf, len) ||
	    dev_identity_problem("destination", &id->dest, sb->dest_size, buf, len))
		return buf;
	return NULL;
}

/*---------------------------------------------------------------------------*/
/* Scan */
struct scan {
	const struct meta_scan_ops *ops;
	struct meta_scan_result *res;
	/* The run of regions being built for ops->range. */
	bool run_open;
	bool run_copied;
	uint64_t run_first;
};

static void __attribute__((format(printf, 3, 4)))
problem(struct scan *s, enum meta_severity sev, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	switch (sev) {
	case META_FATAL:
		s->res->fatal++;
		break;
	case META_NONFATAL:
		s->res->nonfatal++;
		break;
	case META_NOTE:
		s->res->notes++;
		break;
	}
	if (s->ops && s->ops->problem)
		s->ops->problem(s->ops->ctx, sev, msg);
}

static bool is_power_of_2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/*
 * The largest block device, in sectors: its size in bytes is a loff_t. No
 * origin or destination can be larger, so no table matches a superblock
 * that says so.
 */
#define MAX_DEVICE_SECTORS	((uint64_t)INT64_MAX >> 9)


/* The origin's or destination's recorded size: the target fits, a device could. */
static void check_dev_size(struct scan *s, const char *role, uint64_t size, uint64_t target_size)
{
	if (size < target_size)
		problem(s, META_FATAL, "superblock: %s size %" PRIu64
			" sectors is below the target length %" PRIu64, role, size, target_size);
	else if (size > MAX_DEVICE_SECTORS)
		problem(s, META_FATAL, "superblock: %s size %" PRIu64
			" sectors is larger than any block device", role, size);
}

/*
 * The region size, the target length, the number of regions and of bitmap
 * blocks agree. Returns false when the bitmap cannot be located from them.
 */
static bool check_region_count(struct scan *s, const struct meta_sb *sb)
{
	bool region_ok = sb->region_size >= STREAM_MIN_REGION_SECTORS &&
			 sb->region_size <= STREAM_MAX_REGION_SECTORS &&
			 is_power_of_2(sb->region_size);
	bool regions_ok = sb->nr_regions >= 1 && sb->nr_regions <= STREAM_MAX_REGIONS;
	bool usable = region_ok && regions_ok;
	uint64_t expected = 0;

	if (!region_ok)
		problem(s, META_FATAL,
			"superblock: region size %" PRIu32 " is not a power of two from %u to %u sectors",
			sb->region_size, STREAM_MIN_REGION_SECTORS, STREAM_MAX_REGION_SECTORS);
	if (!sb->target_size) {
		problem(s, META_FATAL, "superblock: the target length is 0 sectors");
		usable = false;
	} else if (region_ok) {
		expected = div_round_up(sb->target_size, sb->region_size);
		if (expected > STREAM_MAX_REGIONS) {
			problem(s, META_FATAL, "superblock: a target of %" PRIu64 " sectors in regions "
				"of %" PRIu32 " makes %" PRIu64 " regions, above the limit of %llu",
				sb->target_size, sb->region_size, expected,
				(unsigned long long)STREAM_MAX_REGIONS);
			usable = false;
		} else if (regions_ok && sb->nr_regions != expected) {
			problem(s, META_FATAL, "superblock geometry is inconsistent: %" PRIu64
				" regions for %" PRIu64 " sectors in regions of %" PRIu32
				" (expected %" PRIu64 ")", sb->nr_regions, sb->target_size,
				sb->region_size, expected);
			usable = false;
		}
	}
	if (!regions_ok) {
		/* Unless just said of the same count. */
		if (sb->nr_regions != expected)
			problem(s, META_FATAL, "superblock: %" PRIu64 " regions: expected 1 to %llu",
				sb->nr_regions, (unsigned long long)STREAM_MAX_REGIONS);
	/* nr_regions is at most 2^31 here: no overflow below. */
	} else if (sb->nr_bitmap_blocks != stream_nr_bitmap_blocks(sb->nr_regions)) {
		problem(s, META_FATAL,
			"superblock geometry is inconsistent: %" PRIu64 " bitmap blocks for %" PRIu64
			" regions (expected %llu)", sb->nr_bitmap_blocks, sb->nr_regions,
			(unsigned long long)stream_nr_bitmap_blocks(sb->nr_regions));
		usable = false;
	}
	return usable;
}

/*
 * The geometry checks that need no table: every superblock the module
 * accepts satisfies them, whatever table it is loaded with (the table's
 * region size and length must equal the superblock's, the origin's and
 * destination's sizes too; see stream_ctr() and sb_check()). Returns false
 * when the bitmap cannot be located from these numbers.
 */
static bool check_geometry(struct scan *s, const struct meta_sb *sb, uint64_t dev_bytes)
{
	bool usable = check_region_count(s, sb);
	uint64_t needed;

	check_dev_size(s, "origin", sb->origin_size, sb->target_size);
	check_dev_size(s, "destination", sb->dest_size, sb->target_size);
	if (sb->nr_copied > sb->nr_regions)
		problem(s, META_FATAL, "superblock copied count %" PRIu64
			" is above the number of regions %" PRIu64, sb->nr_copied, sb->nr_regions);
	/* The kernel compares slot ids as signed 64-bit numbers. */
	if (sb->transaction_id > INT64_MAX)
		problem(s, META_FATAL, "superblock transaction id %" PRIu64 " is out of range",
			sb->transaction_id);

	if (usable) {
		needed = stream_metadata_blocks(sb->nr_regions);
		if (dev_bytes / STREAM_BLOCK_SIZE < needed) {
			problem(s, META_FATAL, "metadata device too small: %llu sectors needed, %"
				PRIu64 " given", (unsigned long long)needed * STREAM_BLOCK_SECTORS,
				dev_bytes >> 9);
			usable = false;
		}
	}
	return usable;
}

/* In the words of the module's identity_check(). */
const char *meta_identity_kernel_problem(const struct meta_sb *sb, uint64_t origin_size)
{
	const struct stream_identity_disk *id = &sb->identity;
	uint32_t checked = le32toh(id->sample_checked) | le32toh(id->sample_wanted);
	unsigned int i;

	if (le32toh(id->magic) != STREAM_IDENTITY_MAGIC)
		return !sb->has_identity && sb->identity_tail_zero ? NULL :
		       "Metadata identity record is corrupt (bad magic)";
	if (checked >> STREAM_NR_SAMPLES)
		return "Metadata identity record names samples that do not exist";
	for (i = 0; i < STREAM_NR_SAMPLES; i++) {
		uint64_t sector = le64toh(id->sample_sector[i]);

		if ((checked & (1U << i)) &&
		    (sector > origin_size || origin_size - sector < STREAM_SAMPLE_SECTORS))
			return "Metadata identity record has an origin sample past the origin's end";
	}
	return NULL;
}

static void check_sb_extras(struct scan *s, const struct meta_sb *sb)
{
	char buf[256];
	const char *p;

	if (sb->flags & STREAM_SB_FLAG_NEEDS_CHECK)
		problem(s, META_NOTE, "superblock: the needs-check flag is set");
	if (sb->flags & STREAM_SB_FLAG_ORIGIN_STALE)
		problem(s, META_NOTE, "superblock: the origin is stale (%s)",
			sb->flags & STREAM_SB_FLAG_ORIGIN_FAILED ? "a write to it failed" :
			"it may miss acknowledged writes");
	else if (sb->flags & STREAM_SB_FLAG_ORIGIN_FAILED)
		problem(s, META_NONFATAL, "superblock: origin-failed flag without origin-stale");
	/* The module refuses flags it does not know. */
	if (sb->flags & ~STREAM_SB_FLAGS_KNOWN)
		problem(s, META_FATAL, "superblock: unknown flags 0x%" PRIx32,
			sb->flags & ~STREAM_SB_FLAGS_KNOWN);
	if ((sb->flags & (STREAM_SB_FLAG_ORIGIN_STALE | STREAM_SB_FLAG_ORIGIN_FAILED)) ==
	    STREAM_SB_FLAG_ORIGIN_FAILED)
		problem(s, META_FATAL, "superblock: the origin-failed flag without origin-stale");
	p = meta_identity_kernel_problem(sb, sb->origin_size);
	if (p)
		problem(s, META_FATAL, "%s", p);
	if (sb->reserved0)
		problem(s, META_NONFATAL, "superblock: reserved field is 0x%" PRIx32 ", not 0",
			sb->reserved0);
	if (!sb->tail_zero)
		problem(s, META_NONFATAL, "superblock: bytes after the fields are not zero");
	/* What only dmstream reads: warnings. */
	if (!p && sb->has_identity && meta_identity_problem(&sb->identity, sb, buf, sizeof(buf)))
		problem(s, META_NONFATAL, "%s", buf);
	if (!p && !sb->identity_tail_zero)
		problem(s, META_NONFATAL, "superblock: bytes after the identity record are not zero");
}

static void slot_check(const void *block, uint64_t location, struct meta_slot_info *si)
{
	const struct stream_bitmap_disk *d = block;

	memset(si, 0, sizeof(*si));
	si->location = location;
	si->transaction_id = le64toh(d->transaction_id);
	if (all_zero(block, STREAM_BLOCK_SIZE))
		si->why = "all zero";
	else if (le32toh(d->magic) != STREAM_BITMAP_MAGIC)
		si->why = "bad magic";
	else if (le32toh(d->csum) != block_csum(block, STREAM_BITMAP_CSUM_XOR))
		si->why = "checksum mismatch";
	else if (le64toh(d->blocknr) != location)
		si->why = "wrong block number";
	else
		si->valid = true;
}

static void range_emit(struct scan *s, bool copied, uint64_t first, uint64_t last)
{
	if (s->run_open && s->run_copied == copied)
		return;		/* extends the open run */
	if (s->run_open && s->ops && s->ops->range)
		s->ops->range(s->ops->ctx, s->run_copied, s->run_first, first - 1);
	s->run_open = true;
	s->run_copied = copied;
	s->run_first = first;
	(void)last;
}

static void range_close(struct scan *s, uint64_t end)
{
	if (s->run_open && s->ops && s->ops->range)
		s->ops->range(s->ops->ctx, s->run_copied, s->run_first, end - 1);
	s->run_open = false;
}

static bool bit_test(const uint8_t *bits, uint64_t n)
{
	return bits[n / 8] & (1U << (n % 8));
}

/* Counts the bits of one bitmap block (@nr regions of it) and emits runs. */
static uint64_t scan_bits(struct scan *s, const uint8_t *bits, uint64_t first_region, uint64_t nr)
{
	uint64_t i = 0, count = 0, w;

	while (i < nr) {
		/* Whole 64-bit words of one value go at once. */
		if (!(i % 64) && i + 64 <= nr) {
			memcpy(&w, bits + i / 8, 8);
			w = le64toh(w);
			if (!w || w == ~0ULL) {
				count += w ? 64 : 0;
				range_emit(s, w != 0, first_region + i, first_region + i + 63);
				i += 64;
				continue;
			}
		}
		if (bit_test(bits, i)) {
			count++;
			range_emit(s, true, first_region + i, first_region + i);
		} else {
			range_emit(s, false, first_region + i, first_region + i);
		}
		i++;
	}
	return count;
}

static bool tail_clear(const uint8_t *bits, uint64_t from)
{
	uint64_t i;

	for (i = from; i < STREAM_BITS_PER_BLOCK; i++)
		if (bit_test(bits, i))
			return false;
	return true;
}

/* Picks a block's slot as the module does; returns the slot or -1. */
static int pick_slot(struct meta_slot_info si[2], uint64_t committed)
{
	int64_t id[2];
	unsigned int i;

	for (i = 0; i < 2; i++) {
		id[i] = -1;
		if (!si[i].valid)
			continue;
		if (si[i].transaction_id > committed || committed > INT64_MAX)
			si[i].future = true;
		else
			id[i] = (int64_t)si[i].transaction_id;
	}
	if (id[0] < 0 && id[1] < 0)
		return -1;
	return id[1] > id[0] ? 1 : 0;
}

/*
 * Bitmap block @index, its two slots at @pair: which slot the kernel would
 * use, what is wrong with either, the runs of its regions. Returns the
 * copied regions it holds.
 */
static uint64_t scan_block(struct scan *s, const struct meta_sb *sb, uint64_t index,
			   const uint8_t *pair)
{
	uint64_t first = index * STREAM_BITS_PER_BLOCK, nr = sb->nr_regions - first, j, count;
	struct meta_slot_info si[2];
	const uint8_t *bits;
	int used;

	if (nr > STREAM_BITS_PER_BLOCK)
		nr = STREAM_BITS_PER_BLOCK;
	for (j = 0; j < 2; j++)
		slot_check(pair + j * STREAM_BLOCK_SIZE, stream_bitmap_location(index, j), &si[j]);
	used = pick_slot(si, sb->transaction_id);
	if (s->ops && s->ops->block)
		s->ops->block(s->ops->ctx, index, si, used);

	for (j = 0; j < 2; j++) {
		if (si[j].future)
			problem(s, META_NOTE, "bitmap block %" PRIu64 ", slot %" PRIu64
				" (block %" PRIu64 "): transaction %" PRIu64
				" is above the committed %" PRIu64
				", left by an interrupted commit: ignored",
				index, j, si[j].location, si[j].transaction_id,
				sb->transaction_id);
		else if (!si[j].valid && used >= 0)
			problem(s, META_NONFATAL, "bitmap block %" PRIu64 ", slot %" PRIu64
				" (block %" PRIu64 "): %s; not in use (slot %d, transaction %"
				PRIu64 ", is)", index, j, si[j].location, si[j].why,
				used, si[used].transaction_id);
	}
	if (used < 0) {
		problem(s, META_FATAL, "bitmap block %" PRIu64
			" has no valid slot (slot 0: %s, slot 1: %s): the kernel refuses it",
			index,
			si[0].valid ? "from an uncommitted transaction" : si[0].why,
			si[1].valid ? "from an uncommitted transaction" : si[1].why);
		/* Its regions count as uncopied in the runs: one run at once,
		 * not one call per region. */
		range_emit(s, false, first, first + nr - 1);
		return 0;
	}
	bits = pair + used * STREAM_BLOCK_SIZE + STREAM_BITMAP_HDR_SIZE;
	count = scan_bits(s, bits, first, nr);
	if (nr < STREAM_BITS_PER_BLOCK && !tail_clear(bits, nr))
		problem(s, META_FATAL, "bitmap block %" PRIu64
			": bits set past the last region (%" PRIu64 ")",
			index, sb->nr_regions - 1);
	return count;
}

static int scan_bitmap(struct scan *s, int fd, const struct meta_sb *sb)
{
	uint64_t nr_blocks = sb->nr_bitmap_blocks, i, count = 0;
	uint8_t *buf = xmalloc_aligned((size_t)SCAN_BATCH * 2 * STREAM_BLOCK_SIZE);
	unsigned int k, batch;

	for (i = 0; i < nr_blocks; i += batch) {
		batch = nr_blocks - i < SCAN_BATCH ? nr_blocks - i : SCAN_BATCH;
		if (read_blocks(fd, stream_bitmap_location(i, 0), 2 * batch, buf)) {
			free(buf);
			return -1;
		}
		for (k = 0; k < batch; k++)
			count += scan_block(s, sb, i + k, buf + 2 * k * STREAM_BLOCK_SIZE);
	}
	range_close(s, sb->nr_regions);
	free(buf);

	s->res->bits_set = count;
	s->res->bitmap_scanned = true;
	if (count != sb->nr_copied)
		problem(s, META_FATAL, "the bitmap holds %" PRIu64
			" copied regions, the superblock says %" PRIu64, count, sb->nr_copied);
	return 0;
}

int meta_scan(int fd, uint64_t dev_bytes, bool sb_only, const struct meta_scan_ops *ops,
	      struct meta_scan_result *res)
{
	struct scan s = { .ops = ops, .res = res };
	struct meta_sb *sb = &res->sb;
	const char *p;
	bool usable;

	memset(res, 0, sizeof(*res));
	if (dev_bytes < STREAM_BLOCK_SIZE) {
		problem(&s, META_FATAL, "device too small to hold a superblock (%" PRIu64 " bytes)",
			dev_bytes);
		return 0;
	}
	if (meta_read_sb(fd, sb))
		return -1;
	if (sb->blank)
		return 0;

	p = meta_sb_header_problem(sb);
	if (p && sb->magic != STREAM_MAGIC) {
		problem(&s, META_FATAL, "%s (0x%" PRIx64 ", expected 0x%llx)", p, sb->magic,
			(unsigned long long)STREAM_MAGIC);
		return 0;
	}
	if (p && sb->csum != sb->csum_calc)
		problem(&s, META_FATAL, "%s (on disk 0x%08" PRIx32 ", computed 0x%08" PRIx32 ")",
			p, sb->csum, sb->csum_calc);
	else if (p)
		problem(&s, META_FATAL, "%s", p);
	/* Another version or block size: nothing more can be read safely. */
	if (sb->version != STREAM_VERSION || sb->block_size != STREAM_BLOCK_SIZE) {
		if (sb->csum != sb->csum_calc || sb->blocknr != STREAM_SB_BLOCK)
			problem(&s, META_FATAL, "version %" PRIu32 ", block size %" PRIu32
				": this tool reads version %u with %u-byte blocks",
				sb->version, sb->block_size, STREAM_VERSION, STREAM_BLOCK_SIZE);
		return 0;
	}
	usable = check_geometry(&s, sb, dev_bytes);
	check_sb_extras(&s, sb);
	res->sb_valid = !res->fatal;
	if (sb_only || !usable)
		return 0;
	return scan_bitmap(&s, fd, sb);
}
