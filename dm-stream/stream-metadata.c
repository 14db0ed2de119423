// SPDX-License-Identifier: GPL-2.0
/*
 * dm-stream metadata: superblock and two-slot bitmap blocks on dm-bufio.
 * See stream-metadata.h for the concurrency contract and stream-format.h
 * for the on-disk layout.
 */
#include <linux/bitmap.h>
#include <linux/crc32c.h>
#include <linux/dm-bufio.h>
#include <linux/device-mapper.h>
#include <linux/err.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "stream-format.h"
#include "stream-metadata.h"

#define DM_MSG_PREFIX "stream metadata"

#define WORDS_PER_BLOCK	(STREAM_BITS_PER_BLOCK / BITS_PER_LONG)

/*
 * dm_bufio_write_dirty_buffers() writes every dirty buffer, waits for them
 * and then flushes the device: each call below is a durability point.
 */

/*
 * Open metadata, by device. A table reload constructs the new instance
 * while the old one still runs: both must use the same in-core bitmap, or
 * the new one would start from a superblock that misses the old one's last
 * changes. Protected by open_lock.
 */
static DEFINE_MUTEX(open_lock);
static LIST_HEAD(open_list);

struct stream_metadata {
	/* On open_list, shared by the table instances of one dm device. */
	struct list_head list;
	dev_t dev;
	const void *owner;
	unsigned int refs;

	struct dm_bufio_client *bufio;
	struct stream_geometry geo;
	u64 nr_bitmap_blocks;
	u64 total_blocks;

	/* The last committed transaction. */
	u64 transaction_id;

	/* Regions copied, in core: one bit per region, rounded up to a block. */
	unsigned long *copied;
	unsigned long nr_copied;
	/* nr_copied as packed by the last pre_commit. */
	unsigned long nr_copied_packed;

	/* Per bitmap block: changed since pre_commit, packed, slot in use. */
	unsigned long *dirty;
	unsigned long *packed;
	unsigned long *slot;
};

/*---------------------------------------------------------------------------*/
/* Checksums and pack/unpack */
static u32 block_csum(const void *block, u32 xor)
{
	return crc32c(~(u32)0, block + sizeof(__le32), STREAM_BLOCK_SIZE - sizeof(__le32)) ^ xor;
}

static void sb_pack(struct stream_metadata *md, struct stream_superblock_disk *sb,
		    u64 transaction_id, unsigned long nr_copied)
{
	memset(sb, 0, STREAM_BLOCK_SIZE);
	sb->flags = cpu_to_le32(0);
	sb->blocknr = cpu_to_le64(STREAM_SB_BLOCK);
	sb->magic = cpu_to_le64(STREAM_MAGIC);
	sb->version = cpu_to_le32(STREAM_VERSION);
	sb->block_size = cpu_to_le32(STREAM_BLOCK_SIZE);
	sb->region_size = cpu_to_le32(md->geo.region_size);
	sb->target_size = cpu_to_le64(md->geo.target_size);
	sb->nr_regions = cpu_to_le64(md->geo.nr_regions);
	sb->origin_size = cpu_to_le64(md->geo.origin_size);
	sb->dest_size = cpu_to_le64(md->geo.dest_size);
	sb->nr_bitmap_blocks = cpu_to_le64(md->nr_bitmap_blocks);
	sb->transaction_id = cpu_to_le64(transaction_id);
	sb->nr_copied = cpu_to_le64(nr_copied);
	sb->csum = cpu_to_le32(block_csum(sb, STREAM_SB_CSUM_XOR));
}

/*
 * Checks a superblock read from disk against the geometry we were given.
 * Returns a message for the user, or NULL when it matches.
 */
static const char *sb_check(struct stream_metadata *md, struct stream_superblock_disk *sb)
{
	const struct stream_geometry *geo = &md->geo;

	if (le64_to_cpu(sb->magic) != STREAM_MAGIC)
		return "Metadata device holds something else: bad superblock magic";
	if (le32_to_cpu(sb->csum) != block_csum(sb, STREAM_SB_CSUM_XOR))
		return "Metadata superblock checksum mismatch";
	if (le64_to_cpu(sb->blocknr) != STREAM_SB_BLOCK)
		return "Metadata superblock has a wrong block number";
	if (le32_to_cpu(sb->version) != STREAM_VERSION)
		return "Unsupported metadata version";
	if (le32_to_cpu(sb->block_size) != STREAM_BLOCK_SIZE)
		return "Unsupported metadata block size";
	if (le32_to_cpu(sb->region_size) != geo->region_size)
		return "Metadata was formatted for another region size";
	if (le64_to_cpu(sb->target_size) != geo->target_size)
		return "Metadata was formatted for another target length";
	if (le64_to_cpu(sb->origin_size) != geo->origin_size)
		return "Metadata was formatted for another origin size";
	if (le64_to_cpu(sb->dest_size) != geo->dest_size)
		return "Metadata was formatted for another destination size";
	if (le64_to_cpu(sb->nr_regions) != geo->nr_regions ||
	    le64_to_cpu(sb->nr_bitmap_blocks) != md->nr_bitmap_blocks)
		return "Metadata superblock geometry is inconsistent";
	if (le64_to_cpu(sb->nr_copied) > geo->nr_regions)
		return "Metadata superblock copied count is out of range";
	return NULL;
}

static void bitmap_pack(struct stream_metadata *md, u64 index, u64 location,
			struct stream_bitmap_disk *disk, u64 transaction_id)
{
	const unsigned long *src = md->copied + index * WORDS_PER_BLOCK;
	unsigned int i;

	disk->magic = cpu_to_le32(STREAM_BITMAP_MAGIC);
	disk->blocknr = cpu_to_le64(location);
	disk->transaction_id = cpu_to_le64(transaction_id);
	for (i = 0; i < WORDS_PER_BLOCK; i++) {
#if BITS_PER_LONG == 64
		((__le64 *)disk->bits)[i] = cpu_to_le64(src[i]);
#else
		((__le32 *)disk->bits)[i] = cpu_to_le32(src[i]);
#endif
	}
	disk->csum = cpu_to_le32(block_csum(disk, STREAM_BITMAP_CSUM_XOR));
}

static void bitmap_unpack(struct stream_metadata *md, u64 index,
			  const struct stream_bitmap_disk *disk)
{
	unsigned long *dst = md->copied + index * WORDS_PER_BLOCK;
	unsigned int i;

	for (i = 0; i < WORDS_PER_BLOCK; i++) {
#if BITS_PER_LONG == 64
		dst[i] = le64_to_cpu(((const __le64 *)disk->bits)[i]);
#else
		dst[i] = le32_to_cpu(((const __le32 *)disk->bits)[i]);
#endif
	}
}

/* The transaction id of a valid slot read from @location, or -1. */
static s64 bitmap_slot_check(const struct stream_bitmap_disk *disk, u64 location)
{
	if (le32_to_cpu(disk->magic) != STREAM_BITMAP_MAGIC ||
	    le32_to_cpu(disk->csum) != block_csum(disk, STREAM_BITMAP_CSUM_XOR) ||
	    le64_to_cpu(disk->blocknr) != location)
		return -1;
	return le64_to_cpu(disk->transaction_id) & S64_MAX;
}

/*---------------------------------------------------------------------------*/
/* Load and format */
static int write_block(struct stream_metadata *md, u64 block, const void *data)
{
	struct dm_buffer *b;
	void *p;

	p = dm_bufio_new(md->bufio, block, &b);
	if (IS_ERR(p))
		return PTR_ERR(p);
	memcpy(p, data, STREAM_BLOCK_SIZE);
	dm_bufio_mark_buffer_dirty(b);
	dm_bufio_release(b);
	return 0;
}

/* Writes every bitmap slot empty, then the superblock of transaction 0. */
static int format(struct stream_metadata *md)
{
	struct stream_bitmap_disk *disk;
	unsigned int s;
	u64 i;
	int r = 0;

	disk = kzalloc(STREAM_BLOCK_SIZE, GFP_KERNEL);
	if (!disk)
		return -ENOMEM;

	for (i = 0; i < md->nr_bitmap_blocks && !r; i++) {
		for (s = 0; s < 2 && !r; s++) {
			u64 loc = stream_bitmap_location(i, s);

			bitmap_pack(md, i, loc, disk, 0);
			r = write_block(md, loc, disk);
		}
		/* Keep memory bounded on large devices. */
		if (!r && (i % 256) == 255)
			r = dm_bufio_write_dirty_buffers(md->bufio);
	}
	if (!r)
		r = dm_bufio_write_dirty_buffers(md->bufio);
	if (!r) {
		sb_pack(md, (struct stream_superblock_disk *)disk, 0, 0);
		r = write_block(md, STREAM_SB_BLOCK, disk);
	}
	if (!r)
		r = dm_bufio_write_dirty_buffers(md->bufio);
	kfree(disk);
	md->transaction_id = 0;
	return r;
}

/*
 * Picks, for bitmap block @index, the valid slot with the highest transaction
 * id not above the committed one. A valid slot from a later (uncommitted)
 * transaction is marked dirty so that the next commit overwrites it before
 * any superblock could make it current.
 */
static int load_bitmap_block(struct stream_metadata *md, u64 index, const char **error)
{
	s64 id[2] = { -1, -1 };
	struct dm_buffer *b;
	unsigned int s, best;
	void *p;

	for (s = 0; s < 2; s++) {
		p = dm_bufio_read(md->bufio, stream_bitmap_location(index, s), &b);
		if (IS_ERR(p)) {
			*error = "Cannot read a metadata bitmap block";
			return PTR_ERR(p);
		}
		id[s] = bitmap_slot_check(p, stream_bitmap_location(index, s));
		dm_bufio_release(b);
		if (id[s] > (s64)md->transaction_id) {
			id[s] = -1;
			__set_bit(index, md->dirty);
		}
	}
	if (id[0] < 0 && id[1] < 0) {
		DMERR("bitmap block %llu: no valid slot", index);
		*error = "Metadata bitmap block corrupt (checksum mismatch in both slots)";
		return -EILSEQ;
	}
	best = id[1] > id[0] ? 1 : 0;
	p = dm_bufio_read(md->bufio, stream_bitmap_location(index, best), &b);
	if (IS_ERR(p)) {
		*error = "Cannot read a metadata bitmap block";
		return PTR_ERR(p);
	}
	bitmap_unpack(md, index, p);
	dm_bufio_release(b);
	if (best)
		__set_bit(index, md->slot);
	return 0;
}

static int load(struct stream_metadata *md, struct stream_superblock_disk *sb,
		const char **error)
{
	unsigned long total_bits = md->nr_bitmap_blocks * STREAM_BITS_PER_BLOCK;
	u64 i;
	int r;

	*error = sb_check(md, sb);
	if (*error)
		return -EINVAL;
	md->transaction_id = le64_to_cpu(sb->transaction_id);

	dm_bufio_prefetch(md->bufio, 1, 2 * md->nr_bitmap_blocks);
	for (i = 0; i < md->nr_bitmap_blocks; i++) {
		r = load_bitmap_block(md, i, error);
		if (r)
			return r;
	}

	if (find_next_bit(md->copied, total_bits, md->geo.nr_regions) != total_bits) {
		*error = "Metadata bitmap has bits set past the last region";
		return -EILSEQ;
	}
	md->nr_copied = bitmap_weight(md->copied, md->geo.nr_regions);
	if (md->nr_copied != le64_to_cpu(sb->nr_copied)) {
		DMERR("bitmap holds %lu copied regions, superblock says %llu",
		      md->nr_copied, le64_to_cpu(sb->nr_copied));
		*error = "Metadata bitmap disagrees with the superblock's copied count";
		return -EILSEQ;
	}
	return 0;
}

static bool block_is_zero(const void *p)
{
	return !memchr_inv(p, 0, STREAM_BLOCK_SIZE);
}

static int open_or_format(struct stream_metadata *md, const char **error)
{
	struct stream_superblock_disk *sb;
	struct dm_buffer *b;
	void *p;
	int r;

	p = dm_bufio_read(md->bufio, STREAM_SB_BLOCK, &b);
	if (IS_ERR(p)) {
		*error = "Cannot read the metadata superblock";
		return PTR_ERR(p);
	}
	sb = kmemdup(p, STREAM_BLOCK_SIZE, GFP_KERNEL);
	dm_bufio_release(b);
	if (!sb) {
		*error = "Cannot allocate memory for the superblock";
		return -ENOMEM;
	}

	if (block_is_zero(sb)) {
		r = format(md);
		if (r)
			*error = "Cannot format the metadata device";
	} else {
		r = load(md, sb, error);
	}
	kfree(sb);
	return r;
}

static void md_destroy(struct stream_metadata *md);

static struct stream_metadata *md_create(struct block_device *bdev,
					 const struct stream_geometry *geo,
					 char **error)
{
	unsigned long words;
	struct stream_metadata *md;
	sector_t dev_sectors = bdev_nr_sectors(bdev);
	u64 needed;
	const char *err = NULL;
	int r;

	md = kzalloc(sizeof(*md), GFP_KERNEL);
	if (!md) {
		*error = "Cannot allocate metadata";
		return ERR_PTR(-ENOMEM);
	}
	md->geo = *geo;
	md->nr_bitmap_blocks = stream_nr_bitmap_blocks(geo->nr_regions);
	md->total_blocks = dev_sectors / STREAM_BLOCK_SECTORS;

	needed = stream_metadata_blocks(geo->nr_regions);
	if (md->total_blocks < needed) {
		/* The constructor checked this and said how much is needed. */
		*error = "Metadata device too small";
		r = -EINVAL;
		goto bad;
	}

	words = md->nr_bitmap_blocks * WORDS_PER_BLOCK;
	md->copied = kvcalloc(words, sizeof(unsigned long), GFP_KERNEL);
	md->dirty = bitmap_zalloc(md->nr_bitmap_blocks, GFP_KERNEL);
	md->packed = bitmap_zalloc(md->nr_bitmap_blocks, GFP_KERNEL);
	md->slot = bitmap_zalloc(md->nr_bitmap_blocks, GFP_KERNEL);
	if (!md->copied || !md->dirty || !md->packed || !md->slot) {
		*error = "Cannot allocate the in-core bitmap";
		r = -ENOMEM;
		goto bad;
	}

	md->bufio = dm_bufio_client_create(bdev, STREAM_BLOCK_SIZE, 1, 0, NULL, NULL, 0);
	if (IS_ERR(md->bufio)) {
		*error = "Cannot create the metadata buffer cache";
		r = PTR_ERR(md->bufio);
		md->bufio = NULL;
		goto bad;
	}

	r = open_or_format(md, &err);
	if (r) {
		*error = (char *)err;
		goto bad;
	}
	return md;

bad:
	md_destroy(md);
	return ERR_PTR(r);
}

struct stream_metadata *stream_md_open(struct block_device *bdev,
				       const struct stream_geometry *geo,
				       const void *owner, char **error)
{
	struct stream_metadata *md;

	mutex_lock(&open_lock);
	list_for_each_entry(md, &open_list, list) {
		if (md->dev != bdev->bd_dev)
			continue;
		if (md->owner != owner) {
			*error = "Metadata device is in use by another stream device";
			md = ERR_PTR(-EBUSY);
		} else if (memcmp(&md->geo, geo, sizeof(*geo))) {
			*error = "Metadata device is in use with another geometry: suspend and remove first";
			md = ERR_PTR(-EBUSY);
		} else {
			md->refs++;
		}
		goto out;
	}

	md = md_create(bdev, geo, error);
	if (!IS_ERR(md)) {
		md->dev = bdev->bd_dev;
		md->owner = owner;
		md->refs = 1;
		list_add(&md->list, &open_list);
	}
out:
	mutex_unlock(&open_lock);
	return md;
}

void stream_md_close(struct stream_metadata *md)
{
	mutex_lock(&open_lock);
	if (!--md->refs) {
		list_del(&md->list);
		md_destroy(md);
	}
	mutex_unlock(&open_lock);
}

static void md_destroy(struct stream_metadata *md)
{
	if (md->bufio)
		dm_bufio_client_destroy(md->bufio);
	bitmap_free(md->slot);
	bitmap_free(md->packed);
	bitmap_free(md->dirty);
	kvfree(md->copied);
	kfree(md);
}

/*---------------------------------------------------------------------------*/
/* The in-core bitmap */
bool stream_md_is_copied(struct stream_metadata *md, unsigned long region)
{
	return test_bit(region, md->copied);
}

unsigned long stream_md_next_uncopied(struct stream_metadata *md, unsigned long start)
{
	return find_next_zero_bit(md->copied, md->geo.nr_regions, start);
}

unsigned long stream_md_next_copied(struct stream_metadata *md, unsigned long start,
				    unsigned long end)
{
	return find_next_bit(md->copied, end, start);
}

unsigned long stream_md_nr_copied(struct stream_metadata *md)
{
	return READ_ONCE(md->nr_copied);
}

unsigned long stream_md_set_copied(struct stream_metadata *md, unsigned long start,
				   unsigned long nr)
{
	unsigned long r, set = 0;

	for (r = start; r < start + nr; r++) {
		if (!test_and_set_bit(r, md->copied)) {
			__set_bit(r / STREAM_BITS_PER_BLOCK, md->dirty);
			set++;
		}
	}
	/* Pairs with READ_ONCE() in stream_md_nr_copied(). */
	WRITE_ONCE(md->nr_copied, md->nr_copied + set);
	return set;
}

bool stream_md_changed(struct stream_metadata *md)
{
	return !bitmap_empty(md->dirty, md->nr_bitmap_blocks) ||
	       !bitmap_empty(md->packed, md->nr_bitmap_blocks);
}

/*---------------------------------------------------------------------------*/
/* Commit */
int stream_md_pre_commit(struct stream_metadata *md)
{
	struct dm_buffer *b;
	unsigned long i;
	void *p;

	for_each_set_bit(i, md->dirty, md->nr_bitmap_blocks) {
		u64 loc = stream_bitmap_location(i, !test_bit(i, md->slot));

		p = dm_bufio_new(md->bufio, loc, &b);
		if (IS_ERR(p))
			return PTR_ERR(p);
		bitmap_pack(md, i, loc, p, md->transaction_id + 1);
		dm_bufio_mark_buffer_dirty(b);
		dm_bufio_release(b);
		__clear_bit(i, md->dirty);
		__set_bit(i, md->packed);
	}
	/*
	 * Only the worker sets bits, and it is the caller: the count matches
	 * the bits just packed.
	 */
	md->nr_copied_packed = md->nr_copied;
	return 0;
}

int stream_md_commit(struct stream_metadata *md)
{
	struct dm_buffer *b;
	void *p;
	int r;

	r = dm_bufio_write_dirty_buffers(md->bufio);
	if (r)
		return r;

	p = dm_bufio_new(md->bufio, STREAM_SB_BLOCK, &b);
	if (IS_ERR(p))
		return PTR_ERR(p);
	sb_pack(md, p, md->transaction_id + 1, md->nr_copied_packed);
	dm_bufio_mark_buffer_dirty(b);
	dm_bufio_release(b);

	r = dm_bufio_write_dirty_buffers(md->bufio);
	if (r)
		return r;

	md->transaction_id++;
	bitmap_xor(md->slot, md->slot, md->packed, md->nr_bitmap_blocks);
	bitmap_zero(md->packed, md->nr_bitmap_blocks);
	return 0;
}

void stream_md_abort_commit(struct stream_metadata *md)
{
	/* Pack those blocks again at the next attempt. */
	bitmap_or(md->dirty, md->dirty, md->packed, md->nr_bitmap_blocks);
	bitmap_zero(md->packed, md->nr_bitmap_blocks);
}

u64 stream_md_used_blocks(struct stream_metadata *md)
{
	return stream_metadata_blocks(md->geo.nr_regions);
}

u64 stream_md_total_blocks(struct stream_metadata *md)
{
	return md->total_blocks;
}
