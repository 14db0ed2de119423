/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-stream metadata: the persistent "region copied" bitmap.
 *
 * The bitmap lives in core (one bit per region) and on the metadata device
 * (stream-format.h), which is read and written through dm-bufio.
 *
 * Concurrency contract:
 * - stream_md_open() and stream_md_close() run in the constructor and the
 *   destructor. They block on I/O and take a global mutex. Opening a device
 *   that is already open for the same @owner (the dm device: a table
 *   reload) returns the same, reference-counted object, so the new table
 *   sees the old one's in-core bitmap; the callers make sure that only one
 *   instance's worker runs at a time (the old one is suspended before the
 *   new one resumes).
 * - stream_md_set_copied(), stream_md_pre_commit() and stream_md_commit()
 *   must be serialised by the caller: the target calls them from its single
 *   worker only. They take no locks. set_copied never blocks; pre_commit and
 *   commit block on metadata I/O and allocate with GFP_NOIO.
 * - stream_md_is_copied(), stream_md_nr_copied() and the geometry getters
 *   never block and may be called from any context without locks (map,
 *   status). A region reported copied stays copied: bits are only ever set.
 *   stream_md_set_copied() sets bits with set_bit(); callers that publish
 *   the region's data before calling it need no further barrier, because
 *   the data is on the destination before the bit is set (the bit is set
 *   from the worker after the copy or write completed).
 *
 * Commit protocol (crash safety): pre_commit packs every bitmap block that
 * changed since the last commit into its unused slot, snapshotting the
 * in-core bits; the caller then flushes the destination, so that every
 * region in the snapshot is durable there; commit writes the bitmap slots,
 * flushes the metadata device and finally writes the superblock with the new
 * transaction id. Until the superblock lands, the new slots are ignored on
 * load.
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

/*
 * Open the metadata on @bdev, formatting it if its first block is all zero.
 * On failure returns an ERR_PTR and points *@error at a message for the user.
 */
struct stream_metadata *stream_md_open(struct block_device *bdev,
				       const struct stream_geometry *geo,
				       const void *owner, char **error);
void stream_md_close(struct stream_metadata *md);

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

int stream_md_pre_commit(struct stream_metadata *md);
int stream_md_commit(struct stream_metadata *md);
/* After a failed pre_commit, destination flush or commit: retry later. */
void stream_md_abort_commit(struct stream_metadata *md);

/* Metadata blocks in use and available, for the status line. */
u64 stream_md_used_blocks(struct stream_metadata *md);
u64 stream_md_total_blocks(struct stream_metadata *md);

#endif /* DM_STREAM_METADATA_H */
