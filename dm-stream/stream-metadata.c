// SPDX-License-Identifier: GPL-2.0
/*
 * dm-stream metadata: superblock and two-slot bitmap blocks on dm-bufio.
 * See stream-metadata.h for the concurrency contract and stream-format.h
 * for the on-disk layout.
 */
#include <linux/bio.h>
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
#define SB_TAIL_SIZE	(STREAM_BLOCK_SIZE - STREAM_IDENTITY_OFFSET)
#define SAMPLE_BYTES	(STREAM_SAMPLE_SECTORS << SECTOR_SHIFT)

/*
 * dm_bufio_write_dirty_buffers() writes every dirty buffer, waits for them
 * and then flushes the device: each call below is a durability point.
 */

/*
 * Open metadata, by device. A table reload constructs the new instance
 * while the old one still runs: both must use the same in-core bitmap, or
 * the new one would start from a superblock that misses the old one's last
 * changes. Protected by open_lock, which is never held across I/O: a device
 * being opened is on the list with opening set, and other openers are
 * refused until it is done.
 */
static DEFINE_MUTEX(open_lock);
static LIST_HEAD(open_list);

/* A table holding a reference. */
struct md_holder {
	struct list_head list;
	const void *table;
};

struct stream_metadata {
	/* On open_list, shared by the table instances of one dm device. */
	struct list_head list;
	dev_t dev;
	const void *owner;
	struct list_head holders;
	bool opening;

	struct dm_bufio_client *bufio;
	struct stream_geometry geo;
	u64 nr_bitmap_blocks;
	u64 total_blocks;

	/* Read locklessly by map and status; raised by the worker only. */
	enum stream_mode mode;

	/* The last committed transaction. */
	u64 transaction_id;

	/*
	 * STREAM_SB_FLAG_* and the identity's sample_checked, in core: read
	 * locklessly (READ_ONCE), changed by the worker only (WRITE_ONCE),
	 * and then sb_dirty until the next commit. The superblock block after
	 * STREAM_IDENTITY_OFFSET is kept in sb_tail, whose sample_checked and
	 * sample_wanted are stale: the ones here count. Only
	 * stream_md_take_samples() writes sb_tail (sample_csum).
	 */
	u32 sb_flags;
	u32 committed_flags;	/* sb_flags as on disk (worker only) */
	u32 sample_checked;
	u32 sample_wanted;
	/*
	 * sample_checked as the last commit wrote it (worker only): a sample
	 * unchecked in core stays a hit until its uncheck is on disk.
	 */
	u32 committed_checked;
	bool sb_dirty;
	u8 *sb_tail;

	/* Regions copied, in core: one bit per region, rounded up to a block. */
	unsigned long *copied;
	unsigned long nr_copied;

	/*
	 * One bit per word of copied: a bit of that word was set since the
	 * last commit. map reads it: a clear bit means committed.
	 */
	unsigned long *dirty;
	unsigned long nr_dirty;
	/*
	 * Per bitmap block: its unused slot must be rewritten at the next
	 * commit (it may hold a later transaction), although no region of
	 * the block changed.
	 */
	unsigned long *rewrite;
	unsigned long nr_rewrite;
	/* Per bitmap block: the slot in use. */
	unsigned long *slot;
};

static struct stream_identity_disk *identity(struct stream_metadata *md)
{
	return (struct stream_identity_disk *)md->sb_tail;
}

/*---------------------------------------------------------------------------*/
/* Checksums and pack/unpack */
static u32 block_csum(const void *block, u32 xor)
{
	return crc32c(~(u32)0, block + sizeof(__le32), STREAM_BLOCK_SIZE - sizeof(__le32)) ^ xor;
}

static void sb_pack(struct stream_metadata *md, struct stream_superblock_disk *sb,
		    u64 transaction_id, unsigned long nr_copied)
{
	struct stream_identity_disk *id;

	memset(sb, 0, STREAM_BLOCK_SIZE);
	memcpy((u8 *)sb + STREAM_IDENTITY_OFFSET, md->sb_tail, SB_TAIL_SIZE);
	id = (void *)sb + STREAM_IDENTITY_OFFSET;
	if (le32_to_cpu(id->magic) == STREAM_IDENTITY_MAGIC) {
		id->sample_checked = cpu_to_le32(md->sample_checked);
		id->sample_wanted = cpu_to_le32(md->sample_wanted);
	}
	sb->flags = cpu_to_le32(md->sb_flags);
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
 * The identity record is written by dmstream(8): user data. All zero means
 * none; otherwise every checked sample must lie within the origin.
 */
static const char *identity_check(struct stream_metadata *md,
				  const struct stream_identity_disk *id)
{
	u32 used = le32_to_cpu(id->sample_checked) | le32_to_cpu(id->sample_wanted);
	unsigned int i;

	if (le32_to_cpu(id->magic) != STREAM_IDENTITY_MAGIC)
		return memchr_inv(id, 0, SB_TAIL_SIZE) ?
		       "Metadata identity record is corrupt (bad magic)" : NULL;
	if (used & ~GENMASK(STREAM_NR_SAMPLES - 1, 0))
		return "Metadata identity record names samples that do not exist";
	for (i = 0; i < STREAM_NR_SAMPLES; i++) {
		u64 sector = le64_to_cpu(id->sample_sector[i]);

		if (!(used & BIT(i)))
			continue;
		if (sector > md->geo.origin_size ||
		    md->geo.origin_size - sector < STREAM_SAMPLE_SECTORS)
			return "Metadata identity record has an origin sample past the origin's end";
	}
	return NULL;
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
	/* Slot ids not above it are compared as s64: see slot_id(). */
	if (le64_to_cpu(sb->transaction_id) > S64_MAX)
		return "Metadata superblock transaction id is out of range";
	if (le32_to_cpu(sb->flags) & ~STREAM_SB_FLAGS_KNOWN)
		return "Metadata superblock has flags this kernel module does not know";
	if ((le32_to_cpu(sb->flags) &
	     (STREAM_SB_FLAG_ORIGIN_STALE | STREAM_SB_FLAG_ORIGIN_FAILED)) ==
	    STREAM_SB_FLAG_ORIGIN_FAILED)
		return "Metadata superblock says the origin failed but not that it is stale";
	return identity_check(md, (void *)sb + STREAM_IDENTITY_OFFSET);
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
/* A slot read from @location is valid: checksum, magic and block number. */
static bool bitmap_slot_check(const struct stream_bitmap_disk *disk, u64 location)
{
	return le32_to_cpu(disk->magic) == STREAM_BITMAP_MAGIC &&
	       le32_to_cpu(disk->csum) == block_csum(disk, STREAM_BITMAP_CSUM_XOR) &&
	       le64_to_cpu(disk->blocknr) == location;
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

static void mark_block_rewrite(struct stream_metadata *md, u64 index)
{
	if (!test_and_set_bit(index, md->rewrite))
		md->nr_rewrite++;
}

/*
 * The transaction id of slot @s of bitmap block @index, or -1 when it is
 * unreadable, invalid or from a transaction after the committed one. A
 * valid slot from a later (uncommitted) transaction makes the block dirty,
 * so that the next commit overwrites it before any superblock could make
 * it current.
 */
static s64 slot_id(struct stream_metadata *md, u64 index, unsigned int s, bool *read_error)
{
	u64 loc = stream_bitmap_location(index, s);
	struct dm_buffer *b;
	bool valid;
	u64 id;
	void *p;

	p = dm_bufio_read(md->bufio, loc, &b);
	if (IS_ERR(p)) {
		DMWARN("cannot read bitmap block %llu slot %u (%ld): using the other slot",
		       index, s, PTR_ERR(p));
		*read_error = true;
		/* It may hold a later transaction: overwrite it at the next commit. */
		mark_block_rewrite(md, index);
		return -1;
	}
	valid = bitmap_slot_check(p, loc);
	id = le64_to_cpu(((struct stream_bitmap_disk *)p)->transaction_id);
	dm_bufio_release(b);
	if (!valid)
		return -1;
	if (id > md->transaction_id) {
		mark_block_rewrite(md, index);
		return -1;
	}
	/* At most the superblock's id, which sb_check() keeps within s64. */
	return id;
}

/*
 * Picks, for bitmap block @index, the valid slot with the highest transaction
 * id not above the committed one. A slot that cannot be read counts as
 * invalid: the other one may still serve.
 */
static int load_bitmap_block(struct stream_metadata *md, u64 index, const char **error)
{
	bool read_error = false;
	struct dm_buffer *b;
	unsigned int best;
	s64 id[2];
	void *p;

	id[0] = slot_id(md, index, 0, &read_error);
	id[1] = slot_id(md, index, 1, &read_error);
	if (id[0] < 0 && id[1] < 0) {
		DMERR("bitmap block %llu: no valid slot", index);
		*error = read_error ?
			"Cannot read a metadata bitmap block (no readable, valid slot)" :
			"Metadata bitmap block corrupt (checksum mismatch in both slots)";
		return read_error ? -EIO : -EILSEQ;
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
	md->sb_flags = le32_to_cpu(sb->flags);
	md->committed_flags = md->sb_flags;
	memcpy(md->sb_tail, (u8 *)sb + STREAM_IDENTITY_OFFSET, SB_TAIL_SIZE);
	if (le32_to_cpu(identity(md)->magic) == STREAM_IDENTITY_MAGIC) {
		md->sample_checked = le32_to_cpu(identity(md)->sample_checked);
		md->committed_checked = md->sample_checked;
		/* A checked sample was taken: it is not wanted any more. */
		md->sample_wanted = le32_to_cpu(identity(md)->sample_wanted) &
				    ~md->sample_checked;
	}

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

static void md_destroy(struct stream_metadata *md)
{
	/*
	 * dm-bufio writes dirty buffers here. After a failed commit they can
	 * only be slots packed for the failed transaction: the superblock on
	 * disk is older, so a load ignores them and rewrites them first.
	 */
	if (md->bufio)
		dm_bufio_client_destroy(md->bufio);
	kfree(md->sb_tail);
	bitmap_free(md->slot);
	bitmap_free(md->rewrite);
	kvfree(md->dirty);
	kvfree(md->copied);
	kfree(md);
}

static struct stream_metadata *md_alloc(struct block_device *bdev,
					const struct stream_geometry *geo,
					char **error)
{
	unsigned long words;
	struct stream_metadata *md;

	md = kzalloc(sizeof(*md), GFP_KERNEL);
	if (!md) {
		*error = "Cannot allocate metadata";
		return ERR_PTR(-ENOMEM);
	}
	INIT_LIST_HEAD(&md->holders);
	md->geo = *geo;
	md->nr_bitmap_blocks = stream_nr_bitmap_blocks(geo->nr_regions);
	md->total_blocks = bdev_nr_sectors(bdev) / STREAM_BLOCK_SECTORS;

	if (md->total_blocks < stream_metadata_blocks(geo->nr_regions)) {
		/* The constructor checked this and said how much is needed. */
		*error = "Metadata device too small";
		kfree(md);
		return ERR_PTR(-EINVAL);
	}

	words = md->nr_bitmap_blocks * WORDS_PER_BLOCK;
	md->copied = kvcalloc(words, sizeof(unsigned long), GFP_KERNEL);
	/* One bit per word: over 4 MiB, more than kmalloc gives, at 2^31 regions. */
	md->dirty = kvcalloc(BITS_TO_LONGS(words), sizeof(unsigned long), GFP_KERNEL);
	md->slot = bitmap_zalloc(md->nr_bitmap_blocks, GFP_KERNEL);
	md->rewrite = bitmap_zalloc(md->nr_bitmap_blocks, GFP_KERNEL);
	md->sb_tail = kzalloc(SB_TAIL_SIZE, GFP_KERNEL);
	if (!md->copied || !md->dirty || !md->slot || !md->rewrite || !md->sb_tail) {
		*error = "Cannot allocate the in-core bitmap";
		md_destroy(md);
		return ERR_PTR(-ENOMEM);
	}
	return md;
}

/* Reads (or formats) the metadata. Blocks on I/O; no locks held. */
static int md_read(struct stream_metadata *md, struct block_device *bdev, char **error)
{
	const char *err = NULL;
	int r;

	md->bufio = dm_bufio_client_create(bdev, STREAM_BLOCK_SIZE, 1, 0, NULL, NULL, 0);
	if (IS_ERR(md->bufio)) {
		*error = "Cannot create the metadata buffer cache";
		r = PTR_ERR(md->bufio);
		md->bufio = NULL;
		return r;
	}

	r = open_or_format(md, &err);
	if (r)
		*error = (char *)err;
	return r;
}

static bool same_geometry(const struct stream_geometry *a, const struct stream_geometry *b)
{
	return a->region_size == b->region_size && a->target_size == b->target_size &&
	       a->origin_size == b->origin_size && a->dest_size == b->dest_size &&
	       a->nr_regions == b->nr_regions;
}

/* An open metadata for @md_owner, for one more table. Called with open_lock held. */
static int __md_share(struct stream_metadata *md, const struct stream_geometry *geo,
		      const void *md_owner, const void *table, char **error)
{
	struct md_holder *h;

	if (md->opening) {
		*error = "Metadata device is being opened by another table: try again";
		return -EBUSY;
	}
	if (md->owner != md_owner) {
		*error = "Metadata device is in use by another stream device";
		return -EBUSY;
	}
	list_for_each_entry(h, &md->holders, list) {
		if (h->table == table) {
			*error = "Metadata device is used twice in one table";
			return -EBUSY;
		}
	}
	if (!same_geometry(&md->geo, geo)) {
		*error = "Metadata device is in use with another geometry: suspend and remove first";
		return -EBUSY;
	}
	return 0;
}

struct stream_metadata *stream_md_open(struct block_device *bdev,
				       const struct stream_geometry *geo,
				       const void *md_owner, const void *table,
				       char **error)
{
	struct stream_metadata *md;
	struct md_holder *h;
	int r;

	h = kzalloc(sizeof(*h), GFP_KERNEL);
	if (!h) {
		*error = "Cannot allocate metadata";
		return ERR_PTR(-ENOMEM);
	}
	h->table = table;

	mutex_lock(&open_lock);
	list_for_each_entry(md, &open_list, list) {
		if (md->dev != bdev->bd_dev)
			continue;
		r = __md_share(md, geo, md_owner, table, error);
		if (!r)
			list_add(&h->list, &md->holders);
		mutex_unlock(&open_lock);
		if (r) {
			kfree(h);
			return ERR_PTR(r);
		}
		return md;
	}

	md = md_alloc(bdev, geo, error);
	if (IS_ERR(md)) {
		mutex_unlock(&open_lock);
		kfree(h);
		return md;
	}
	md->dev = bdev->bd_dev;
	md->owner = md_owner;
	md->opening = true;
	list_add(&h->list, &md->holders);
	list_add(&md->list, &open_list);
	mutex_unlock(&open_lock);

	/* Formatting may write hundreds of MiB: not under open_lock. */
	r = md_read(md, bdev, error);

	mutex_lock(&open_lock);
	if (r)
		list_del(&md->list);
	else
		md->opening = false;
	mutex_unlock(&open_lock);
	if (r) {
		kfree(h);
		md_destroy(md);
		return ERR_PTR(r);
	}
	return md;
}

void stream_md_close(struct stream_metadata *md, const void *table)
{
	struct md_holder *h;
	bool last;

	mutex_lock(&open_lock);
	list_for_each_entry(h, &md->holders, list) {
		if (h->table == table)
			break;
	}
	if (!WARN_ON(list_entry_is_head(h, &md->holders, list))) {
		list_del(&h->list);
		kfree(h);
	}
	last = list_empty(&md->holders);
	if (last)
		list_del(&md->list);
	mutex_unlock(&open_lock);

	/* Nobody can find it any more: tear it down without the lock. */
	if (last)
		md_destroy(md);
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
		if (!test_bit(r, md->copied) && !test_and_set_bit(r / BITS_PER_LONG, md->dirty))
			md->nr_dirty++;
	}
	/*
	 * A copied bit is never seen without its dirty bit until a commit
	 * clears that: pairs with smp_rmb() in stream_md_is_committed().
	 */
	smp_wmb();
	for (r = start; r < start + nr; r++) {
		if (!test_and_set_bit(r, md->copied))
			set++;
	}
	/* Pairs with READ_ONCE() in stream_md_nr_copied(). */
	WRITE_ONCE(md->nr_copied, md->nr_copied + set);
	return set;
}

bool stream_md_changed(struct stream_metadata *md)
{
	return md->nr_dirty || md->nr_rewrite || md->sb_dirty;
}

bool stream_md_is_committed(struct stream_metadata *md, unsigned long region)
{
	if (!test_bit(region, md->copied))
		return false;
	/* Pairs with smp_wmb() in stream_md_set_copied(). */
	smp_rmb();
	return !test_bit(region / BITS_PER_LONG, md->dirty);
}

/*---------------------------------------------------------------------------*/
/* Modes */
enum stream_mode stream_md_mode(struct stream_metadata *md)
{
	/* Pairs with WRITE_ONCE() in stream_md_degrade(). */
	return READ_ONCE(md->mode);
}

bool stream_md_degrade(struct stream_metadata *md, enum stream_mode mode)
{
	if (mode <= md->mode)
		return false;
	WRITE_ONCE(md->mode, mode);
	return true;
}

/*---------------------------------------------------------------------------*/
/* The origin: stale flag and samples */
bool stream_md_origin_stale(struct stream_metadata *md)
{
	return READ_ONCE(md->sb_flags) & STREAM_SB_FLAG_ORIGIN_STALE;
}

bool stream_md_origin_stale_committed(struct stream_metadata *md)
{
	return md->committed_flags & STREAM_SB_FLAG_ORIGIN_STALE;
}

bool stream_md_origin_failed(struct stream_metadata *md)
{
	return READ_ONCE(md->sb_flags) & STREAM_SB_FLAG_ORIGIN_FAILED;
}

static bool set_sb_flags(struct stream_metadata *md, u32 flags)
{
	if (flags == md->sb_flags)
		return false;
	WRITE_ONCE(md->sb_flags, flags);
	md->sb_dirty = true;
	return true;
}

bool stream_md_set_origin_stale(struct stream_metadata *md, bool failed)
{
	return set_sb_flags(md, md->sb_flags | STREAM_SB_FLAG_ORIGIN_STALE |
				(failed ? STREAM_SB_FLAG_ORIGIN_FAILED : 0));
}

int stream_md_clear_origin_stale(struct stream_metadata *md)
{
	if (!stream_md_origin_stale(md))
		return 0;
	if (md->nr_copied)
		return -EBUSY;
	set_sb_flags(md, md->sb_flags &
			 ~(STREAM_SB_FLAG_ORIGIN_STALE | STREAM_SB_FLAG_ORIGIN_FAILED));
	return 0;
}

static bool sample_overlaps(struct stream_metadata *md, unsigned int i,
			    sector_t sector, sector_t nr_sectors)
{
	u64 start = le64_to_cpu(identity(md)->sample_sector[i]);

	return sector < start + STREAM_SAMPLE_SECTORS && start < sector + nr_sectors;
}

bool stream_md_sample_hit(struct stream_metadata *md, sector_t sector, sector_t nr_sectors)
{
	/* Unchecked in core is not enough: the origin may change once it is on disk. */
	unsigned long checked = READ_ONCE(md->sample_checked) | READ_ONCE(md->committed_checked);
	unsigned int i;

	for_each_set_bit(i, &checked, STREAM_NR_SAMPLES) {
		if (sample_overlaps(md, i, sector, nr_sectors))
			return true;
	}
	return false;
}

void stream_md_uncheck_samples(struct stream_metadata *md, sector_t sector,
			       sector_t nr_sectors)
{
	unsigned long checked = md->sample_checked;
	unsigned int i;

	for_each_set_bit(i, &checked, STREAM_NR_SAMPLES) {
		if (sample_overlaps(md, i, sector, nr_sectors))
			__clear_bit(i, &checked);
	}
	if (checked != md->sample_checked) {
		WRITE_ONCE(md->sample_checked, checked);
		md->sb_dirty = true;
	}
}

/* Reads @nr_sectors at @sector of @bdev into @page. */
static int read_sectors(struct block_device *bdev, sector_t sector, struct page *page,
			unsigned int bytes)
{
	struct bio bio;
	struct bio_vec bvec;
	int r;

	bio_init(&bio, bdev, &bvec, 1, REQ_OP_READ);
	bio.bi_iter.bi_sector = sector;
	__bio_add_page(&bio, page, bytes, 0);
	r = submit_bio_wait(&bio);
	bio_uninit(&bio);
	return r;
}

/* The CRC32C of origin sample @i, read from @origin into @page, or an error. */
static int sample_csum(struct stream_metadata *md, struct block_device *origin,
		       struct page *page, unsigned int i, u32 *csum)
{
	int r;

	r = read_sectors(origin, le64_to_cpu(identity(md)->sample_sector[i]), page,
			 SAMPLE_BYTES);
	if (!r)
		*csum = crc32c(~(u32)0, page_address(page), SAMPLE_BYTES);
	return r;
}

int stream_md_take_samples(struct stream_metadata *md, struct block_device *origin)
{
	unsigned long wanted = md->sample_wanted;
	struct page *page;
	unsigned int i;
	u32 csum;
	int r = 0;

	if (!wanted)
		return 0;
	/* The device may be suspended (preresume): no reclaim through it. */
	page = alloc_page(GFP_NOIO);
	if (!page)
		return -ENOMEM;
	for_each_set_bit(i, &wanted, STREAM_NR_SAMPLES) {
		r = sample_csum(md, origin, page, i, &csum);
		if (r)
			break;
		identity(md)->sample_csum[i] = cpu_to_le32(csum);
		/* The checksum before the bit: pairs with smp_load_acquire() in check_origin. */
		smp_store_release(&md->sample_checked, md->sample_checked | BIT(i));
		md->sample_wanted &= ~BIT(i);
		md->sb_dirty = true;
	}
	__free_page(page);
	return r;
}

int stream_md_check_origin(struct stream_metadata *md, struct block_device *origin,
			   char **error)
{
	/* Pairs with smp_store_release() in take_samples. */
	unsigned long checked = smp_load_acquire(&md->sample_checked);
	const struct stream_identity_disk *id = identity(md);
	struct page *page;
	unsigned int i;
	int r = 0;

	if (!checked)
		return 0;
	page = alloc_page(GFP_KERNEL);
	if (!page) {
		*error = "Cannot allocate memory to check the origin";
		return -ENOMEM;
	}
	for_each_set_bit(i, &checked, STREAM_NR_SAMPLES) {
		u64 sector = le64_to_cpu(id->sample_sector[i]);
		u32 csum;

		/*
		 * An unreadable sample cannot serve wrong data either: the
		 * check is about content, so it is skipped, not fatal (a
		 * failing origin must not keep its copied regions hostage).
		 */
		r = sample_csum(md, origin, page, i, &csum);
		if (r) {
			DMWARN("origin sample %u at sector %llu cannot be read (%d): not checked",
			       i, sector, r);
			r = 0;
			continue;
		}
		/*
		 * A table reload shares the metadata with a live mirror table,
		 * which may have unchecked this sample and written there since.
		 */
		if (csum != le32_to_cpu(id->sample_csum[i]) &&
		    (READ_ONCE(md->sample_checked) & BIT(i))) {
			DMERR("origin sample %u at sector %llu: crc32c 0x%08x, recorded 0x%08x",
			      i, sector, csum, le32_to_cpu(id->sample_csum[i]));
			*error = "Origin is not the device recorded in the metadata (its content differs): after a deliberate move, run dmstream rebind";
			r = -EINVAL;
			break;
		}
	}
	__free_page(page);
	return r;
}

/*---------------------------------------------------------------------------*/
/* Commit */

/* The first block from @index on with a dirty word or a slot to rewrite. */
static u64 next_dirty_block(struct stream_metadata *md, u64 index)
{
	unsigned long nr_words = md->nr_bitmap_blocks * WORDS_PER_BLOCK;
	unsigned long w = find_next_bit(md->dirty, nr_words, index * WORDS_PER_BLOCK);
	unsigned long r = find_next_bit(md->rewrite, md->nr_bitmap_blocks, index);

	return min_t(u64, w / WORDS_PER_BLOCK, r);
}

/* Packs every block with a dirty word or a slot to rewrite, as @id. */
static int pack_dirty_blocks(struct stream_metadata *md, u64 id)
{
	struct dm_buffer *b;
	u64 index;
	void *p;

	for (index = next_dirty_block(md, 0); index < md->nr_bitmap_blocks;
	     index = next_dirty_block(md, index + 1)) {
		u64 loc = stream_bitmap_location(index, !test_bit(index, md->slot));

		p = dm_bufio_new(md->bufio, loc, &b);
		if (IS_ERR(p))
			return PTR_ERR(p);
		bitmap_pack(md, index, loc, p, id);
		dm_bufio_mark_buffer_dirty(b);
		dm_bufio_release(b);
	}
	return 0;
}

/* The slots just written are in use now; nothing is dirty. */
static void commit_done(struct stream_metadata *md)
{
	unsigned long nr_words = md->nr_bitmap_blocks * WORDS_PER_BLOCK;
	u64 index;

	for (index = next_dirty_block(md, 0); index < md->nr_bitmap_blocks;
	     index = next_dirty_block(md, index + 1))
		__change_bit(index, md->slot);
	/* map may read these concurrently: a clear word means committed now. */
	bitmap_zero(md->dirty, nr_words);
	md->nr_dirty = 0;
	bitmap_zero(md->rewrite, md->nr_bitmap_blocks);
	md->nr_rewrite = 0;
	md->sb_dirty = false;
	/* Pairs with READ_ONCE() in stream_md_sample_hit(): this is on disk now. */
	WRITE_ONCE(md->committed_checked, md->sample_checked);
	md->committed_flags = md->sb_flags;
	md->transaction_id++;
}

int stream_md_commit(struct stream_metadata *md)
{
	u64 id = md->transaction_id + 1;
	struct dm_buffer *b;
	void *p;
	int r;

	if (md->mode != STREAM_MODE_RW)
		return -EIO;

	/*
	 * The worker that sets bits is the caller: nr_copied matches the bits
	 * packed, and every one of them was set before the caller's flush.
	 */
	r = pack_dirty_blocks(md, id);
	if (r)
		goto failed;
	r = dm_bufio_write_dirty_buffers(md->bufio);
	if (r)
		goto failed;

	p = dm_bufio_new(md->bufio, STREAM_SB_BLOCK, &b);
	if (IS_ERR(p)) {
		r = PTR_ERR(p);
		goto failed;
	}
	sb_pack(md, p, id, md->nr_copied);
	dm_bufio_mark_buffer_dirty(b);
	dm_bufio_release(b);

	r = dm_bufio_write_dirty_buffers(md->bufio);
	if (r)
		goto failed;

	commit_done(md);
	return 0;

failed:
	/*
	 * The superblock on disk may now be transaction @id or the one before,
	 * so the slots of @id may be current: never write either slot again,
	 * nor reuse @id. Only a new load from disk may commit again.
	 */
	stream_md_degrade(md, STREAM_MODE_RO);
	return r;
}

u64 stream_md_used_blocks(struct stream_metadata *md)
{
	return stream_metadata_blocks(md->geo.nr_regions);
}

u64 stream_md_total_blocks(struct stream_metadata *md)
{
	return md->total_blocks;
}
