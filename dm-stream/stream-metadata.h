/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-stream metadata: the persistent "region copied" bitmap.
 *
 * The bitmap lives in core (one bit per region) and on the metadata device
 * (stream-format.h), which is read and written through dm-bufio.
 *
 * Concurrency contract:
 * - stream_md_open() and stream_md_close() run in the constructor and the
 *   destructor. They block on I/O. A global mutex protects the list of open
 *   metadata, but is not held across I/O. Opening a device that is already
 *   open for the same @md_owner (the dm device) from another @table (a
 *   table reload) returns the same, reference-counted object, so that the
 *   new table sees the old one's in-core bitmap and mode; the callers make
 *   sure that only one instance's worker runs at a time (the old one is
 *   suspended before the new one resumes). A second opener from the same
 *   table (two targets of one table on one metadata device) is refused.
 * - stream_md_set_copied() and stream_md_commit() must be serialised by the
 *   caller: the target calls them from its single worker only. They take no
 *   locks. set_copied never blocks; commit blocks on metadata I/O and
 *   allocates with GFP_NOIO.
 * - stream_md_is_copied(), stream_md_nr_copied(), stream_md_mode() and the
 *   geometry getters never block and may be called from any context without
 *   locks (map, status). A region reported copied stays copied: bits are
 *   only ever set. stream_md_set_copied() sets bits with set_bit(); callers
 *   that publish the region's data before calling it need no further
 *   barrier, because the data is on the destination before the bit is set
 *   (the bit is set from the worker after the copy or write completed).
 *
 * Commit protocol (crash safety): the caller flushes the destination, so
 * that every region set in core is durable there, then calls
 * stream_md_commit(), which packs every bitmap block that changed since the
 * last commit into its unused slot, writes and flushes them, and finally
 * writes and flushes the superblock with the new transaction id. Until the
 * superblock lands, the new slots are ignored on load. No bit may be set
 * between the flush and the commit: both run in the one worker that sets
 * bits.
 *
 * Modes: the mode belongs to the metadata, so a table reload keeps it. Any
 * failed commit, or a failed destination flush reported with
 * stream_md_degrade(), leaves rw for good: after a failure the superblock
 * on disk may be the old or the new transaction, and both slots of a block
 * may be in use, so nothing is ever committed again from this in-core
 * state. Remove the device and create it again to start from what is on
 * disk.
 */
#ifndef DM_STREAM_METADATA_H
#define DM_STREAM_METADATA_H

#include <linux/blkdev.h>
#include <linux/types.h>

struct stream_metadata;

/* The geometry the target is constructed with. */
struct stream_geometry {
	u32 region_size;	/* sectors */
	sector_t target_size;
	sector_t origin_size;
	sector_t dest_size;
	unsigned long nr_regions;
};

/* Only ever moves up. */
enum stream_mode {
	STREAM_MODE_RW,		/* normal */
	STREAM_MODE_RO,		/* nothing can be committed: no new copies */
	STREAM_MODE_FAIL,	/* every bio fails */
};

/*
 * Open the metadata on @bdev, formatting it if its first block is all zero.
 * On failure returns an ERR_PTR and points *@error at a message for the user.
 */
struct stream_metadata *stream_md_open(struct block_device *bdev,
				       const struct stream_geometry *geo,
				       const void *md_owner, const void *table,
				       char **error);
void stream_md_close(struct stream_metadata *md, const void *table);

bool stream_md_is_copied(struct stream_metadata *md, unsigned long region);
/* First uncopied region in [start, nr_regions), or nr_regions. */
unsigned long stream_md_next_uncopied(struct stream_metadata *md, unsigned long start);
/* First copied region in [start, end), or end. */
unsigned long stream_md_next_copied(struct stream_metadata *md, unsigned long start,
				    unsigned long end);
unsigned long stream_md_nr_copied(struct stream_metadata *md);

/* Marks [start, start + nr) copied in core; returns how many were newly set. */
unsigned long stream_md_set_copied(struct stream_metadata *md, unsigned long start,
				   unsigned long nr);
/* True when a commit would write something. */
bool stream_md_changed(struct stream_metadata *md);
/*
 * True when @region is copied and its bit is on disk (a FUA write to it
 * needs no commit). Any context, no locks: false may be stale, true not.
 */
bool stream_md_is_committed(struct stream_metadata *md, unsigned long region);

/*
 * Commits every change; the caller flushed the destination first. Returns
 * 0, or an error with the mode raised to at least ro. Fails at once, with
 * no I/O, unless the mode is rw.
 */
int stream_md_commit(struct stream_metadata *md);

enum stream_mode stream_md_mode(struct stream_metadata *md);
/* Raises the mode to @mode; true when it changed. Worker only. */
bool stream_md_degrade(struct stream_metadata *md, enum stream_mode mode);

/*
 * The origin (STREAM_SB_FLAG_ORIGIN_*). stale: the origin may miss an
 * acknowledged write; failed: because an origin-leg write failed. Read in
 * any context without locks; the setters run in the worker (or where no
 * worker can run: the constructor, preresume) and change the in-core
 * state only: stream_md_changed() is true until the next commit makes it
 * durable. set returns true when it changed something; clear is refused
 * (-EBUSY) once any region is copied, since a copied region may hold a
 * write the origin missed.
 */
bool stream_md_origin_stale(struct stream_metadata *md);
/* Stale as the last commit (or the load) left it on disk: worker or preresume. */
bool stream_md_origin_stale_committed(struct stream_metadata *md);
bool stream_md_origin_failed(struct stream_metadata *md);
bool stream_md_set_origin_stale(struct stream_metadata *md, bool failed);
int stream_md_clear_origin_stale(struct stream_metadata *md);

/*
 * Origin samples (stream-format.h, the identity record). sample_hit: does
 * [@sector, +@nr_sectors) of the origin overlap a sample that is still
 * checked? Any context, no locks. uncheck_samples: stop checking those
 * samples, in core (worker only); the caller commits before it writes the
 * origin there. take_samples: read the samples dmstream asked for (and not
 * taken yet) from @origin and check them from now on, in core; blocks on
 * I/O; where no worker runs and nothing writes the origin (preresume), the
 * caller commits afterwards. check_origin: read every checked sample of
 * @origin and compare; blocks on I/O (constructor only), sets *@error on a
 * mismatch (a sample that cannot be read is skipped, with a warning).
 * Metadata without an identity record has no samples.
 */
bool stream_md_sample_hit(struct stream_metadata *md, sector_t sector, sector_t nr_sectors);
void stream_md_uncheck_samples(struct stream_metadata *md, sector_t sector,
			       sector_t nr_sectors);
int stream_md_take_samples(struct stream_metadata *md, struct block_device *origin);
int stream_md_check_origin(struct stream_metadata *md, struct block_device *origin,
			   char **error);

/* Metadata blocks in use and available, for the status line. */
u64 stream_md_used_blocks(struct stream_metadata *md);
u64 stream_md_total_blocks(struct stream_metadata *md);

#endif /* DM_STREAM_METADATA_H */
