// SPDX-License-Identifier: GPL-2.0
/*
 * dm-stream: a copy-on-write destination over a read-only origin, streamed
 * in the background.
 *
 * Reads of regions not yet copied go to the origin, everything else to the
 * destination. Writes to uncopied regions copy the region first (unless the
 * write covers it). A worker copies the remaining regions with dm-kcopyd.
 * Which regions are copied is persisted in a bitmap on the metadata device
 * (stream-metadata.c).
 *
 * All state changes happen in one worker (an ordered workqueue): map()
 * either remaps a bio at once or defers it there.
 *
 * Mirror mode (the "mirror" table option): every write and discard also
 * goes to the origin, so that the origin stays a complete copy of the
 * device and the stream can be abandoned with no loss. The worker clones
 * such a bio to the origin (the origin leg) before the bio itself takes
 * its usual way to the destination (the destination leg, unchanged: a
 * copy first, a commit first...); the bio completes when both legs have.
 * See "Mirror mode" below.
 */
#include <linux/blkdev.h>
#include <linux/ctype.h>
#include <linux/device-mapper.h>
#include <linux/jiffies.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/part_stat.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/workqueue.h>

#include "compat.h"
#include "stream-copier.h"
#include "stream-format.h"
#include "stream-interface.h"
#include "stream-metadata.h"

#define DM_MSG_PREFIX "stream"

/*---------------------------------------------------------------------------*/
/* Limits and defaults */
/* Background commit period when something changed. */
#define COMMIT_PERIOD		HZ
/* Wait before trying again when a job cannot be allocated. */
#define NOMEM_DELAY		(HZ / 10)
/* Background regions given up in a row that stop streaming at once. */
#define STALL_STREAK		4

/* Bits in stream_c.flags. */
enum {
	STREAM_SUSPENDED,	/* no background copies: suspending or not resumed */
	STREAM_PAUSED,		/* the user paused background copies */
	STREAM_STALLED,		/* a pass ended with copy errors */
	STREAM_RESTART,		/* start a new pass from region 0 */
	STREAM_COMMIT_NOW,	/* commit at the next worker run */
	STREAM_COMPLETE,	/* completion was committed and announced */
	STREAM_DISCARD_PASSDOWN,
	STREAM_FLUSH_ORIGIN,	/* the next flush must flush the origin too */
	STREAM_REQUEUE,		/* noflush suspend: push parked bios back to dm */
	STREAM_DYING,		/* the destructor runs: do not arm the waker */
	STREAM_FROZEN,		/* suspended: the worker does nothing */
	STREAM_MIRROR_OFF_REQ,	/* the "mirror off" message asks the worker */
	STREAM_COPY_ON_READ,	/* reads of uncopied regions want them copied */
	STREAM_SKIP_ZEROES,	/* zeros not written where the destination has them */
};

/* sc->mirror: whether writes reach the origin too (STREAM_STATUS_MIRROR). */
enum stream_mirror {
	MIRROR_NONE,		/* one-way: the origin is stale (or will be at resume) */
	MIRROR_ON,		/* every write goes to both legs */
	MIRROR_DEGRADED,	/* an origin-leg write failed: one-way from then on */
};

struct stream_c {
	struct dm_target *ti;
	struct dm_dev *meta_dev;
	struct dm_dev *dest_dev;
	struct dm_dev *origin_dev;

	sector_t region_size;
	unsigned int region_shift;
	unsigned long nr_regions;

	struct stream_metadata *md;
	struct stream_copier *copier;

	unsigned long flags;
	unsigned int rate;		/* KiB/s, 0 = unlimited: a cap at all times */
	unsigned int min_rate;		/* KiB/s while users are busy, 0 = unpaced */
	unsigned int max_rate;		/* KiB/s while they are idle, 0 = unlimited */
	unsigned int max_inflight;	/* background regions */
	enum stream_mode announced;	/* the last mode logged and evented */
	unsigned long copy_errors;	/* regions given up after retries */
	/*
	 * enum stream_mirror. Written by the worker (and the preresume work,
	 * on the same ordered workqueue) only after the superblock says what
	 * it implies, read locklessly by map() and status.
	 */
	int mirror;
	bool mirror_table;		/* the table line has "mirror" */
	bool stale_durable;		/* the superblock on disk says ORIGIN_STALE */
	const char *origin_path;	/* the table's word, during the constructor */
	struct bio_set mirror_bs;	/* origin-leg clones (mirror tables only) */

	spinlock_t lock;		/* protects deferred and origin_failed */
	struct bio_list deferred;
	struct bio_list origin_failed;	/* both legs done, the origin's failed */

	/* Worker only. */
	struct bio_list flushes;	/* complete after a commit */
	struct bio_list commit_then_submit;
	struct bio_list commit_then_end;
	struct bio_list commit_then_mirror;	/* a checked sample is unchecked first */
	struct bio_list nomem;		/* retry when a job can be allocated */
	unsigned long last_commit;
	unsigned long next_wake;	/* 0 or the jiffies the worker wants to run at */
	bool pass_errors;
	unsigned int fail_streak;	/* background regions given up in a row */
	unsigned long user_sectors;	/* the device's I/O statistics, last seen */
	unsigned long busy_until;	/* jiffies: users count as busy until then */

	struct workqueue_struct *wq;
	struct work_struct worker;
	struct work_struct preresume_work;
	int preresume_error;
	struct delayed_work waker;
	wait_queue_head_t drain;	/* postsuspend waits here for jobs to end */
};

/*
 * Per-bio data: the overwrite job a bio carries, if any, and its origin
 * leg in mirror mode: @legs counts the legs not yet done (the origin's and
 * the destination's), @mirror says the bio has an origin leg that is not
 * accounted for yet (end_io then counts the destination leg down).
 */
struct stream_bio {
	struct stream_job *job;
	struct stream_c *sc;
	bool mirror;
	atomic_t legs;
	blk_status_t dest_status;
	blk_status_t origin_status;
};

/*---------------------------------------------------------------------------*/
/* Bio helpers */
static unsigned long bio_region(struct stream_c *sc, struct bio *bio)
{
	return dm_target_offset(sc->ti, bio->bi_iter.bi_sector) >> sc->region_shift;
}

static sector_t region_sectors(struct stream_c *sc, unsigned long region)
{
	sector_t start = (sector_t)region << sc->region_shift;

	return min(sc->region_size, sc->ti->len - start);
}

static bool bio_covers_region(struct stream_c *sc, struct bio *bio)
{
	sector_t offset = dm_target_offset(sc->ti, bio->bi_iter.bi_sector);

	return !(offset & (sc->region_size - 1)) &&
	       bio_sectors(bio) == region_sectors(sc, bio_region(sc, bio));
}

static void remap(struct stream_c *sc, struct bio *bio, struct dm_dev *dev)
{
	bio_set_dev(bio, dev->bdev);
	bio->bi_iter.bi_sector = dm_target_offset(sc->ti, bio->bi_iter.bi_sector);
}

static void submit_to_dest(struct stream_c *sc, struct bio *bio)
{
	remap(sc, bio, sc->dest_dev);
	submit_bio_noacct(bio);
}

static void end_bios(struct bio_list *bios, blk_status_t status)
{
	struct bio *bio;

	while ((bio = bio_list_pop(bios))) {
		bio->bi_status = status;
		bio_endio(bio);
	}
}

static bool is_flush(struct bio *bio)
{
	return (bio->bi_opf & REQ_PREFLUSH) && !bio_sectors(bio);
}

static void wake_worker(void *context)
{
	struct stream_c *sc = context;

	queue_work(sc->wq, &sc->worker);
}

static void defer_bio(struct stream_c *sc, struct bio *bio)
{
	unsigned long flags;

	spin_lock_irqsave(&sc->lock, flags);
	bio_list_add(&sc->deferred, bio);
	spin_unlock_irqrestore(&sc->lock, flags);
	wake_worker(sc);
}

/* Ask the worker to run again at @when (jiffies) at the latest. */
static void want_wake(struct stream_c *sc, unsigned long when)
{
	if (!sc->next_wake || time_before(when, sc->next_wake))
		sc->next_wake = when;
}

/*---------------------------------------------------------------------------*/
/* Modes and commits */
static const char *mode_name(enum stream_mode mode)
{
	switch (mode) {
	case STREAM_MODE_RW:
		return STREAM_MODE_NAME_RW;
	case STREAM_MODE_RO:
		return STREAM_MODE_NAME_RO;
	default:
		return STREAM_MODE_NAME_FAIL;
	}
}

static enum stream_mode get_mode(struct stream_c *sc)
{
	return stream_md_mode(sc->md);
}

static const char *sc_name(struct stream_c *sc)
{
	return dm_device_name(dm_table_get_md(sc->ti->table));
}

/* Raises the mode (worker only); logs and raises a dm event when it changed. */
static void set_mode(struct stream_c *sc, enum stream_mode mode)
{
	stream_md_degrade(sc->md, mode);
	mode = get_mode(sc);
	if (mode <= sc->announced)
		return;
	sc->announced = mode;
	DMERR("%s: switching to %s mode", sc_name(sc), mode_name(mode));
	dm_table_event(sc->ti->table);
}

/* The metadata part of a commit (below), on its own. */
static int commit_metadata(struct stream_c *sc)
{
	int r;

	r = stream_md_commit(sc->md);
	if (r) {
		DMERR_LIMIT("%s: writing metadata failed (%d)", sc_name(sc), r);
		set_mode(sc, STREAM_MODE_RO);
		return r;
	}
	sc->last_commit = jiffies;
	return 0;
}

/*
 * Makes every region copied in core durable: flush the destination, then
 * write the bitmap and the superblock. Any failure leaves rw for good (see
 * stream-metadata.h): a failed destination flush may have lost copies made
 * since the last commit, so they must never be committed. In ro mode
 * nothing can be committed, and whoever needs a commit then fails, and so
 * does the target.
 */
static int commit(struct stream_c *sc)
{
	int r;

	if (get_mode(sc) != STREAM_MODE_RW) {
		set_mode(sc, STREAM_MODE_FAIL);
		return -EIO;
	}

	r = blkdev_issue_flush(sc->dest_dev->bdev);
	if (r) {
		DMERR_LIMIT("%s: destination flush failed (%d): nothing committed",
			    sc_name(sc), r);
		set_mode(sc, STREAM_MODE_RO);
		return r;
	}
	return commit_metadata(sc);
}

/*
 * Commits a change of the origin's flags (rw mode only). When nothing else
 * changed, no copied region waits to be made durable, so the destination
 * need not be flushed: only the superblock is written.
 */
static int commit_origin_flags(struct stream_c *sc, bool other_changes)
{
	return other_changes ? commit(sc) : commit_metadata(sc);
}

/*---------------------------------------------------------------------------*/
/* Mirror mode: the state */
static bool mirroring(struct stream_c *sc)
{
	return READ_ONCE(sc->mirror) == MIRROR_ON;
}

static const char *mirror_name(struct stream_c *sc)
{
	switch (READ_ONCE(sc->mirror)) {
	case MIRROR_ON:
		return STREAM_MIRROR_ON;
	case MIRROR_DEGRADED:
		return STREAM_MIRROR_DEGRADED;
	default:
		return STREAM_MIRROR_OFF;
	}
}

/*
 * Makes ORIGIN_STALE (with ORIGIN_FAILED when @failed) durable: worker or
 * preresume work only. Returns 0 once the superblock on disk says so. In
 * any mode but rw nothing can be committed: this fails then without
 * touching the mode, and whoever asked stays mirrored or fails its bio.
 */
static int commit_origin_stale(struct stream_c *sc, bool failed)
{
	bool other;
	int r;

	if (sc->stale_durable && !failed)
		return 0;
	if (get_mode(sc) != STREAM_MODE_RW)
		return -EIO;
	other = stream_md_changed(sc->md);
	stream_md_set_origin_stale(sc->md, failed);
	r = commit_origin_flags(sc, other);
	if (!r)
		sc->stale_durable = true;
	return r;
}

/*
 * Stops mirroring for good (worker only), once the superblock says the
 * origin is stale: from then on map() sends writes one-way. The origin's
 * cache no longer matters.
 */
static void stop_mirroring(struct stream_c *sc, enum stream_mirror state)
{
	/* Pairs with READ_ONCE() in mirroring(): the commit is complete. */
	WRITE_ONCE(sc->mirror, state);
	clear_bit(STREAM_FLUSH_ORIGIN, &sc->flags);
	dm_table_event(sc->ti->table);
}

/*
 * An origin-leg write or flush failed (worker only). The policy of md
 * raid1 and dm-raid1: the write stands on the destination, the other
 * copy is written off. The origin is recorded stale and failed, and that
 * commit completes before any bio that saw the failure does, so that no
 * acknowledged write is ever missing from an origin the metadata calls
 * current. Returns 0 when the origin is recorded stale (or mirroring had
 * already stopped), else an error for the bios: they fail.
 */
static int origin_leg_failed(struct stream_c *sc, int error)
{
	int r;

	if (!mirroring(sc))
		return 0;
	r = commit_origin_stale(sc, true);
	if (r) {
		DMERR_LIMIT("%s: origin write failed (%d), and recording the stale origin failed (%d): failing the write",
			    sc_name(sc), error, r);
		return r;
	}
	DMERR("%s: origin write failed (%d): mirroring stopped, the origin is stale",
	      sc_name(sc), error);
	stop_mirroring(sc, MIRROR_DEGRADED);
	return 0;
}

/*
 * The table this one replaced may have completed writes to the origin that
 * still sit in its volatile cache (a live copy starts from a plain mapping
 * of the origin). A completed flush covers every write completed before
 * it, whichever table completed it: so the first flush through this table
 * flushes the origin too. In mirror mode, every flush does (a completed
 * mirrored write is on both legs, so the flush covers it); an origin
 * flush that fails there is an origin-leg failure.
 */
static int flush_origin(struct stream_c *sc)
{
	bool mirror = mirroring(sc);
	int r;

	if (!mirror && !test_bit(STREAM_FLUSH_ORIGIN, &sc->flags))
		return 0;
	r = blkdev_issue_flush(sc->origin_dev->bdev);
	if (r && mirror)
		return origin_leg_failed(sc, r);
	if (r) {
		DMERR_LIMIT("%s: origin flush failed (%d)", sc_name(sc), r);
		return r;
	}
	clear_bit(STREAM_FLUSH_ORIGIN, &sc->flags);
	return 0;
}

static void mark_copied(struct stream_c *sc, unsigned long region, unsigned long nr)
{
	stream_md_set_copied(sc->md, region, nr);
	if (get_mode(sc) == STREAM_MODE_RW)
		want_wake(sc, sc->last_commit + COMMIT_PERIOD);
}

/*
 * Commits when a flush or FUA bio waits for it, when asked to, or when
 * something changed and the last commit is a period old.
 */
static void maybe_commit(struct stream_c *sc)
{
	bool changed = stream_md_changed(sc->md);
	bool waiting = !bio_list_empty(&sc->flushes) ||
		       !bio_list_empty(&sc->commit_then_submit) ||
		       !bio_list_empty(&sc->commit_then_end) ||
		       !bio_list_empty(&sc->commit_then_mirror);
	bool committed = false;
	blk_status_t status, flush_status;
	struct bio *bio;
	int r = 0;

	if (test_and_clear_bit(STREAM_COMMIT_NOW, &sc->flags))
		waiting = true;
	if (!waiting && !(changed && get_mode(sc) == STREAM_MODE_RW &&
			  time_after_eq(jiffies, sc->last_commit + COMMIT_PERIOD))) {
		/* An earlier wake may have replaced the one mark_copied() asked for. */
		if (changed && get_mode(sc) == STREAM_MODE_RW)
			want_wake(sc, sc->last_commit + COMMIT_PERIOD);
		return;
	}

	if (changed) {
		r = commit(sc);
		committed = !r;
	} else if (get_mode(sc) == STREAM_MODE_FAIL) {
		r = -EIO;
	}
	status = errno_to_blk_status(r);
	flush_status = status;
	if (!r && !bio_list_empty(&sc->flushes))
		flush_status = errno_to_blk_status(flush_origin(sc));

	while ((bio = bio_list_pop(&sc->flushes))) {
		if (flush_status) {
			bio->bi_status = flush_status;
			bio_endio(bio);
		} else if (committed) {
			/* The commit flushed the destination. */
			bio_endio(bio);
		} else {
			submit_to_dest(sc, bio);
		}
	}
	while ((bio = bio_list_pop(&sc->commit_then_submit))) {
		if (r) {
			bio->bi_status = status;
			bio_endio(bio);
		} else {
			submit_to_dest(sc, bio);
		}
	}
	while ((bio = bio_list_pop(&sc->commit_then_end))) {
		if (r)
			bio->bi_status = status;
		bio_endio(bio);
	}
	/* Their samples are unchecked on disk now: they go their way again. */
	if (r) {
		end_bios(&sc->commit_then_mirror, status);
	} else if (!bio_list_empty(&sc->commit_then_mirror)) {
		spin_lock_irq(&sc->lock);
		bio_list_merge(&sc->deferred, &sc->commit_then_mirror);
		spin_unlock_irq(&sc->lock);
		bio_list_init(&sc->commit_then_mirror);
		wake_worker(sc);
	}
}

/*---------------------------------------------------------------------------*/
/*
 * Mirror mode: the origin leg.
 *
 * The worker clones a write (or a discard the origin supports) to the
 * origin, at the same sector, before the bio takes its usual way to the
 * destination; its per-bio data counts the two legs. Whichever leg ends
 * last completes the bio: end_io for the destination leg returns
 * DM_ENDIO_INCOMPLETE while the origin leg runs, and the origin leg's
 * end_io then ends the bio again (end_io sees no leg left and lets it go).
 * A bio clone rather than dm-io: the destination leg keeps every rule of
 * the one-way target (copy first, commit first, requeue on a noflush
 * suspend), which live on the original bio.
 */

/*
 * Both legs of @bio are done, in any context. Returns true when the bio
 * may complete now, with the destination leg's status; otherwise the
 * origin leg failed, and the worker completes the bio once the stale
 * origin is recorded (process_origin_failed()).
 */
static bool legs_done(struct stream_c *sc, struct bio *bio)
{
	struct stream_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	unsigned long flags;

	if (!pb->origin_status) {
		pb->mirror = false;
		return true;
	}
	spin_lock_irqsave(&sc->lock, flags);
	bio_list_add(&sc->origin_failed, bio);
	spin_unlock_irqrestore(&sc->lock, flags);
	wake_worker(sc);
	return false;
}

static void origin_leg_endio(struct bio *clone)
{
	struct bio *bio = clone->bi_private;
	struct stream_bio *pb = dm_per_bio_data(bio, sizeof(*pb));

	pb->origin_status = clone->bi_status;
	/*
	 * A discard carries no data: the origin misses no write when it
	 * fails one (md raid1 ignores them too), so mirroring goes on.
	 */
	if (pb->origin_status && bio_op(clone) == REQ_OP_DISCARD) {
		DMWARN_LIMIT("%s: origin discard failed (%d): ignored",
			     sc_name(pb->sc), blk_status_to_errno(pb->origin_status));
		pb->origin_status = BLK_STS_OK;
	}
	bio_put(clone);
	/* Pairs with the atomic_dec_and_test() in stream_end_io(). */
	if (atomic_dec_and_test(&pb->legs) && legs_done(pb->sc, bio)) {
		bio->bi_status = pb->dest_status;
		bio_endio(bio);
	}
}

/*
 * Issues @bio's origin leg while mirroring, unless it has one. Returns
 * false when the bio must wait for a commit first: it overlaps an origin
 * sample that the identity record has checked, which is unchecked on disk
 * before the origin changes there (stream-format.h).
 */
static bool start_origin_leg(struct stream_c *sc, struct bio *bio)
{
	struct stream_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	sector_t sector = dm_target_offset(sc->ti, bio->bi_iter.bi_sector);
	struct bio *clone;

	if (pb->mirror || !mirroring(sc))
		return true;
	if (bio_op(bio) == REQ_OP_DISCARD && !bdev_max_discard_sectors(sc->origin_dev->bdev))
		return true;
	if (stream_md_sample_hit(sc->md, sector, bio_sectors(bio))) {
		/* ro mode cannot commit the uncheck: fail this bio, not the target. */
		if (get_mode(sc) != STREAM_MODE_RW) {
			bio_io_error(bio);
			return false;
		}
		stream_md_uncheck_samples(sc->md, sector, bio_sectors(bio));
		bio_list_add(&sc->commit_then_mirror, bio);
		return false;
	}

	pb->mirror = true;
	pb->origin_status = BLK_STS_OK;
	/* Never NULL with GFP_NOIO from a bioset, but for integrity data. */
	clone = bio_alloc_clone(sc->origin_dev->bdev, bio, GFP_NOIO, &sc->mirror_bs);
	if (!clone) {
		pb->origin_status = BLK_STS_RESOURCE;
		atomic_set(&pb->legs, 1);
		return true;
	}
	atomic_set(&pb->legs, 2);
	clone->bi_iter.bi_sector = sector;
	clone->bi_end_io = origin_leg_endio;
	clone->bi_private = bio;
	submit_bio_noacct(clone);
	return true;
}

/* Bios whose origin leg failed: see origin_leg_failed(). */
static void process_origin_failed(struct stream_c *sc)
{
	struct bio_list bios;
	struct stream_bio *pb;
	struct bio *bio;
	int r;

	spin_lock_irq(&sc->lock);
	bios = sc->origin_failed;
	bio_list_init(&sc->origin_failed);
	spin_unlock_irq(&sc->lock);
	if (bio_list_empty(&bios))
		return;

	pb = dm_per_bio_data(bio_list_peek(&bios), sizeof(*pb));
	r = origin_leg_failed(sc, blk_status_to_errno(pb->origin_status));
	while ((bio = bio_list_pop(&bios))) {
		pb = dm_per_bio_data(bio, sizeof(*pb));
		pb->mirror = false;
		bio->bi_status = r ? BLK_STS_IOERR : pb->dest_status;
		bio_endio(bio);
	}
}

/* The "mirror off" message, in the worker: stale on disk first. */
static void process_mirror_off(struct stream_c *sc)
{
	int r;

	if (!test_and_clear_bit(STREAM_MIRROR_OFF_REQ, &sc->flags) || !mirroring(sc))
		return;
	r = commit_origin_stale(sc, false);
	if (r) {
		DMERR("%s: mirror off: recording the stale origin failed (%d): still mirroring",
		      sc_name(sc), r);
		return;
	}
	DMINFO("%s: mirroring stopped: the origin is stale", sc_name(sc));
	stop_mirroring(sc, MIRROR_NONE);
}

/*---------------------------------------------------------------------------*/
/* Bios deferred to the worker */
static void process_bio(struct stream_c *sc, struct bio *bio);

/*
 * Discards: whole uncopied regions are marked copied without copying (their
 * old content is no longer wanted); regions owned by a job are left to it;
 * partial regions are left alone. The discard itself goes to the
 * destination when passdown is on: for uncopied parts of it that is
 * harmless, since they are read from the origin and a copy rewrites them.
 */
static void process_discard(struct stream_c *sc, struct bio *bio)
{
	sector_t start = dm_target_offset(sc->ti, bio->bi_iter.bi_sector);
	sector_t end = start + bio_sectors(bio);
	unsigned long r = DIV_ROUND_UP_SECTOR_T(start, sc->region_size);
	unsigned long last = end == sc->ti->len ? sc->nr_regions : end >> sc->region_shift;

	while (get_mode(sc) == STREAM_MODE_RW && r < last) {
		unsigned long run = stream_copier_free_run(sc->copier, r, last, &r);

		if (!run)
			break;
		mark_copied(sc, r, run);
		r += run;
	}

	if (test_bit(STREAM_DISCARD_PASSDOWN, &sc->flags) &&
	    bdev_max_discard_sectors(sc->dest_dev->bdev))
		submit_to_dest(sc, bio);
	else
		bio_endio(bio);
}

/*
 * A write (or FUA write) to a region that is copied now. A FUA write needs a
 * commit first only when the region's bit is not on disk yet.
 */
static void write_copied(struct stream_c *sc, struct bio *bio)
{
	if ((bio->bi_opf & REQ_FUA) && !stream_md_is_committed(sc->md, bio_region(sc, bio)))
		bio_list_add(&sc->commit_then_submit, bio);
	else
		submit_to_dest(sc, bio);
}

/*
 * During a noflush suspend, dm takes bios back and issues them again after
 * the resume (to the table then live) when we complete them with
 * BLK_STS_DM_REQUEUE. The worker does that to every bio that would wait
 * for a new copy or a retry, so that the suspend does not wait for them.
 */
static bool requeueing(struct stream_c *sc)
{
	/*
	 * dm clears its noflush flag before it calls presuspend_undo when the
	 * suspend is interrupted: from then on it fails requeued bios.
	 */
	return test_bit(STREAM_REQUEUE, &sc->flags) && dm_noflush_suspending(sc->ti);
}

static void requeue_bio(struct bio *bio)
{
	bio->bi_status = BLK_STS_DM_REQUEUE;
	bio_endio(bio);
}

static void process_write(struct stream_c *sc, struct bio *bio)
{
	unsigned long region = bio_region(sc, bio);
	struct stream_bio *pb;
	struct stream_job *job;

	if (stream_md_is_copied(sc->md, region)) {
		write_copied(sc, bio);
		return;
	}

	job = stream_copier_find(sc->copier, region);
	if (job) {
		bio_list_add(&job->waiters, bio);
		return;
	}

	/* A new copy needs a new bit, which ro mode cannot commit. */
	if (get_mode(sc) != STREAM_MODE_RW) {
		bio_io_error(bio);
		return;
	}
	if (requeueing(sc)) {
		requeue_bio(bio);
		return;
	}

	if (bio_covers_region(sc, bio)) {
		job = stream_copier_claim(sc->copier, region, bio);
		if (job) {
			pb = dm_per_bio_data(bio, sizeof(*pb));
			pb->job = job;
			submit_to_dest(sc, bio);
			return;
		}
	} else {
		job = stream_copier_copy(sc->copier, region);
		if (job) {
			bio_list_add(&job->waiters, bio);
			return;
		}
	}
	bio_list_add(&sc->nomem, bio);
	want_wake(sc, jiffies + NOMEM_DELAY);
}

/*
 * A write into an uncopied region that process_write() would fail (ro
 * mode) or requeue (noflush suspend) is failed or requeued before its
 * origin leg goes out: a failed write must not land on the origin alone,
 * and a requeue must not wait for the origin. Returns true when it did.
 */
static bool write_refused(struct stream_c *sc, struct bio *bio)
{
	struct stream_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	unsigned long region = bio_region(sc, bio);

	if (pb->mirror || !mirroring(sc) || bio_op(bio) == REQ_OP_DISCARD ||
	    stream_md_is_copied(sc->md, region) || stream_copier_find(sc->copier, region))
		return false;
	if (get_mode(sc) != STREAM_MODE_RW)
		bio_io_error(bio);
	else if (requeueing(sc))
		requeue_bio(bio);
	else
		return false;
	return true;
}

static void process_bio(struct stream_c *sc, struct bio *bio)
{
	if (get_mode(sc) == STREAM_MODE_FAIL)
		bio_io_error(bio);
	else if (is_flush(bio))
		bio_list_add(&sc->flushes, bio);
	else if (write_refused(sc, bio))
		return;
	else if (!start_origin_leg(sc, bio))
		return;		/* on commit_then_mirror */
	else if (bio_op(bio) == REQ_OP_DISCARD)
		process_discard(sc, bio);
	else
		process_write(sc, bio);
}

static void process_deferred(struct stream_c *sc)
{
	struct bio_list bios = BIO_EMPTY_LIST;
	struct bio *bio;

	if (requeueing(sc)) {
		while ((bio = bio_list_pop(&sc->nomem)))
			requeue_bio(bio);
	}
	bio_list_merge(&bios, &sc->nomem);
	bio_list_init(&sc->nomem);

	spin_lock_irq(&sc->lock);
	bio_list_merge(&bios, &sc->deferred);
	bio_list_init(&sc->deferred);
	spin_unlock_irq(&sc->lock);

	while ((bio = bio_list_pop(&bios)))
		process_bio(sc, bio);
}

/*---------------------------------------------------------------------------*/
/* Finished jobs */
static void release_job(struct stream_c *sc, struct stream_job *job, blk_status_t status)
{
	struct bio_list waiters = job->waiters;
	struct bio *bio;

	stream_copier_release(sc->copier, job);
	if (status) {
		end_bios(&waiters, status);
		return;
	}
	while ((bio = bio_list_pop(&waiters)))
		process_bio(sc, bio);
}

static void overwrite_done(struct stream_c *sc, struct stream_job *job)
{
	struct bio *bio = job->bio;

	if (!job->error) {
		mark_copied(sc, job->region, 1);
		if (bio->bi_opf & REQ_FUA) {
			/* Durable data, but its bit is not committed yet. */
			bio_list_add(&sc->commit_then_end, bio);
			bio = NULL;
		}
	}
	if (bio)
		bio_endio(bio);
	release_job(sc, job, BLK_STS_OK);
}

/* Stops background copying until "continue" (STREAM_STATE_STALLED). */
static void stall(struct stream_c *sc, const char *why)
{
	if (test_and_set_bit(STREAM_STALLED, &sc->flags))
		return;
	DMERR("%s: streaming stopped: %s", sc_name(sc), why);
	dm_table_event(sc->ti->table);
}

/*
 * A copy that is not tried again: its waiters fail. A bad spot on the
 * origin costs its regions only, and the pass goes on; an origin that is
 * gone fails every region, and streaming stops once STALL_STREAK of them
 * failed in a row, with no good copy in between.
 */
static void give_up(struct stream_c *sc, struct stream_job *job)
{
	DMERR_LIMIT("%s: copy of regions %lu-%lu failed %u times: left uncopied",
		    sc_name(sc), job->region, job->region + job->nr - 1, job->tries);
	WRITE_ONCE(sc->copy_errors, sc->copy_errors + job->nr);
	if (job->background) {
		sc->pass_errors = true;
		sc->fail_streak += job->nr;
		if (sc->fail_streak >= STALL_STREAK)
			stall(sc, "the origin fails every copy");
	}
	release_job(sc, job, BLK_STS_IOERR);
}

/*
 * A job that is not copied now because the target is suspending: a
 * background copy nobody waits for is dropped (the region stays uncopied);
 * during a noflush suspend, the waiters go back to dm. Returns false when
 * the job must go on.
 */
static bool drop_for_suspend(struct stream_c *sc, struct stream_job *job)
{
	if (job->background && test_bit(STREAM_SUSPENDED, &sc->flags) &&
	    bio_list_empty(&job->waiters)) {
		release_job(sc, job, BLK_STS_OK);
		return true;
	}
	if (requeueing(sc)) {
		release_job(sc, job, BLK_STS_DM_REQUEUE);
		return true;
	}
	return false;
}

static void copy_failed(struct stream_c *sc, struct stream_job *job)
{
	bool rw = get_mode(sc) == STREAM_MODE_RW;

	if (drop_for_suspend(sc, job))
		return;

	switch (stream_copier_failed(sc->copier, job, rw)) {
	case STREAM_COPY_SPLIT:
		release_job(sc, job, BLK_STS_OK);
		break;
	case STREAM_COPY_RETRY:
		break;
	case STREAM_COPY_GIVE_UP:
		give_up(sc, job);
		break;
	}
}

static void process_completed(struct stream_c *sc)
{
	struct stream_job *job, *tmp;
	LIST_HEAD(list);

	stream_copier_take_completed(sc->copier, &list);
	list_for_each_entry_safe(job, tmp, &list, list) {
		list_del_init(&job->list);
		if (job->overwrite) {
			overwrite_done(sc, job);
		} else if (!stream_copier_piece_done(sc->copier, job)) {
			continue;	/* on the pending list */
		} else if (job->error) {
			copy_failed(sc, job);
		} else {
			if (job->background)
				sc->fail_streak = 0;
			mark_copied(sc, job->region, job->nr);
			release_job(sc, job, BLK_STS_OK);
		}
	}
}

static bool may_go_on(struct stream_c *sc, struct stream_job *job);

/*
 * Retries are issued in rw mode only; see drop_for_suspend() for suspends.
 * A background copy nobody waits for is not tried again while streaming is
 * stopped (paused or stalled, unless copy_on_read wants it): its regions
 * stay uncopied, and are not counted as given up.
 */
static void process_retries(struct stream_c *sc)
{
	struct stream_job *job, *tmp;
	unsigned long due;
	LIST_HEAD(list);

	stream_copier_take_retries(sc->copier, &list);
	list_for_each_entry_safe(job, tmp, &list, list) {
		list_del_init(&job->list);
		if (drop_for_suspend(sc, job))
			continue;
		if (get_mode(sc) != STREAM_MODE_RW)
			give_up(sc, job);
		else if (!may_go_on(sc, job))
			release_job(sc, job, BLK_STS_OK);
		else if (!stream_copier_retry(sc->copier, job, &due))
			want_wake(sc, due);
	}
}

/*---------------------------------------------------------------------------*/
/* Background streaming */
/* Copies nobody waits for may start: hot ones (copy_on_read) even paused. */
static bool copying_allowed(struct stream_c *sc)
{
	return get_mode(sc) == STREAM_MODE_RW &&
	       !test_bit(STREAM_SUSPENDED, &sc->flags) &&
	       !test_bit(STREAM_STALLED, &sc->flags);
}

static bool streaming_allowed(struct stream_c *sc)
{
	return copying_allowed(sc) && !test_bit(STREAM_PAUSED, &sc->flags);
}

/* A started copy (rw mode) goes on: a bio waits for it, or copying it is allowed. */
static bool may_go_on(struct stream_c *sc, struct stream_job *job)
{
	return !bio_list_empty(&job->waiters) || streaming_allowed(sc) ||
	       (job->hot && copying_allowed(sc));
}

/* The cursor reached the end. Returns true to scan again from region 0. */
static bool end_of_pass(struct stream_c *sc)
{
	if (stream_md_nr_copied(sc->md) == sc->nr_regions)
		return false;

	/*
	 * Judge the pass, and scan again, only once its last copies ended:
	 * rescanning the whole bitmap at every completion would be wasted.
	 */
	if (!stream_copier_background_idle(sc->copier))
		return false;

	if (sc->pass_errors) {
		stall(sc, "some regions could not be copied");
		return false;
	}
	stream_copier_rewind(sc->copier);
	return true;
}

/*
 * Background jobs between two pieces. One that a bio waits for goes on at
 * once. The others go on while streaming is allowed, within the copier's
 * limits; a suspend drops them, and so do ro mode, a pause and a stall:
 * their regions stay uncopied, and a paused copy_on_read finds the copier
 * free for the regions reads ask for.
 */
static void process_pending(struct stream_c *sc)
{
	struct stream_copier *c = sc->copier;
	struct stream_job *job, *tmp;
	unsigned long wait;
	LIST_HEAD(list);

	stream_copier_take_pending(c, &list);
	list_for_each_entry_safe(job, tmp, &list, list) {
		list_del_init(&job->list);
		if (drop_for_suspend(sc, job))
			continue;
		if (!bio_list_empty(&job->waiters))
			stream_copier_continue(c, job);
		else if (get_mode(sc) != STREAM_MODE_RW || !may_go_on(sc, job))
			release_job(sc, job, BLK_STS_OK);
		else if (!stream_copier_continue_limited(c, job, &wait) && wait)
			want_wake(sc, jiffies + wait);
	}
}

static void start_copies(struct stream_c *sc)
{
	struct stream_copier *c = sc->copier;
	bool wrapped = false, hot_only;
	unsigned long wait;

	if (test_and_clear_bit(STREAM_RESTART, &sc->flags)) {
		stream_copier_rewind(c);
		sc->pass_errors = false;
		sc->fail_streak = 0;
	}

	/* Paused, only what reads asked for is copied (copy_on_read). */
	hot_only = test_bit(STREAM_PAUSED, &sc->flags);
	if (hot_only && !test_bit(STREAM_COPY_ON_READ, &sc->flags))
		return;

	while (copying_allowed(sc)) {
		switch (stream_copier_start(c, hot_only, &wait)) {
		case STREAM_START_COPYING:
			break;
		case STREAM_START_END:
			if (hot_only || wrapped || !end_of_pass(sc))
				return;
			wrapped = true;
			break;
		case STREAM_START_FULL:
			return;
		case STREAM_START_THROTTLED:
			want_wake(sc, jiffies + wait);
			return;
		case STREAM_START_NOMEM:
			want_wake(sc, jiffies + NOMEM_DELAY);
			return;
		}
	}
}

/*
 * Users are busy when I/O through the device completed in the last
 * STREAM_BUSY_MS: the device's own statistics tell (as md's resync does
 * with its members'), so map() pays nothing for it. Copies a bio waits for
 * count too, in the copier.
 */
static bool users_busy(struct stream_c *sc)
{
	struct gendisk *disk = dm_disk(dm_table_get_md(sc->ti->table));
	unsigned long sectors = part_stat_read_accum(disk->part0, sectors);

	if (sectors != sc->user_sectors) {
		sc->user_sectors = sectors;
		sc->busy_until = jiffies + msecs_to_jiffies(STREAM_BUSY_MS);
	}
	if (!time_before(jiffies, sc->busy_until))
		return false;
	/* Look again when they may have become idle. */
	want_wake(sc, sc->busy_until);
	return true;
}

/* A rate capped by another; 0 is no limit for both. */
static unsigned int capped_rate(unsigned int rate, unsigned int cap)
{
	if (!cap)
		return rate;
	return rate ? min(rate, cap) : cap;
}

/*
 * Continues background jobs between pieces, then starts new ones, at
 * max_rate while users are idle and at min_rate while they are busy
 * (unpaced but one piece at a time when min_rate is 0); rate caps both.
 */
static void background_copies(struct stream_c *sc)
{
	unsigned int rate = capped_rate(READ_ONCE(sc->max_rate), READ_ONCE(sc->rate));
	unsigned int min_rate = READ_ONCE(sc->min_rate);
	bool one_piece = false;

	if (stream_md_nr_copied(sc->md) != sc->nr_regions && copying_allowed(sc) &&
	    users_busy(sc)) {
		one_piece = !min_rate;
		rate = capped_rate(min_rate, rate);
	}
	stream_copier_set_limits(sc->copier, rate, READ_ONCE(sc->max_inflight), one_piece);
	process_pending(sc);
	start_copies(sc);
}

static void check_complete(struct stream_c *sc)
{
	if (test_bit(STREAM_COMPLETE, &sc->flags) ||
	    stream_md_nr_copied(sc->md) != sc->nr_regions || get_mode(sc) != STREAM_MODE_RW)
		return;

	if (stream_md_changed(sc->md) && commit(sc))
		return;
	set_bit(STREAM_COMPLETE, &sc->flags);
	DMINFO("%s: every region is copied", sc_name(sc));
	dm_table_event(sc->ti->table);
}

/*---------------------------------------------------------------------------*/
/* The worker */
static void do_worker(struct work_struct *ws)
{
	struct stream_c *sc = container_of(ws, struct stream_c, worker);

	/*
	 * Suspended: a message or a late wake must not commit, as the next
	 * table of the device may already be live on the same metadata.
	 * Pairs with the set_bit() in stream_postsuspend() (the workqueue
	 * orders it before this run) and the clear_bit() in stream_resume().
	 */
	if (test_bit(STREAM_FROZEN, &sc->flags)) {
		wake_up(&sc->drain);
		return;
	}
	sc->next_wake = 0;

	process_origin_failed(sc);
	process_mirror_off(sc);
	process_completed(sc);
	process_retries(sc);
	process_deferred(sc);
	maybe_commit(sc);
	background_copies(sc);
	check_complete(sc);

	if (stream_copier_idle(sc->copier))
		wake_up(&sc->drain);
	/* The destructor sets DYING before it flushes us and cancels the waker. */
	if (sc->next_wake && !test_bit(STREAM_DYING, &sc->flags))
		mod_delayed_work(sc->wq, &sc->waker,
				 time_after(sc->next_wake, jiffies) ? sc->next_wake - jiffies : 0);
}

static void do_waker(struct work_struct *ws)
{
	struct stream_c *sc = container_of(to_delayed_work(ws), struct stream_c, waker);

	queue_work(sc->wq, &sc->worker);
}

/*---------------------------------------------------------------------------*/
/* Target methods: map, end_io, status */
static int stream_map(struct dm_target *ti, struct bio *bio)
{
	struct stream_c *sc = ti->private;
	struct stream_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	unsigned long region;

	pb->job = NULL;
	pb->sc = sc;
	pb->mirror = false;

	/* The mode is read locklessly: see stream_md_mode(). */
	if (get_mode(sc) == STREAM_MODE_FAIL)
		return DM_MAPIO_KILL;

	if ((bio->bi_opf & REQ_PREFLUSH) || bio_op(bio) == REQ_OP_DISCARD) {
		defer_bio(sc, bio);
		return DM_MAPIO_SUBMITTED;
	}

	/*
	 * A set bit means the region's data is on the destination: the
	 * worker sets it only after the copy or the covering write completed.
	 * A stale clear bit only sends us the slow way.
	 */
	region = bio_region(sc, bio);
	if (bio_data_dir(bio) == READ) {
		/*
		 * Only this target writes the origin (mirror mode), in step
		 * with the destination: read it even while a copy runs.
		 */
		if (stream_md_is_copied(sc->md, region)) {
			remap(sc, bio, sc->dest_dev);
			return DM_MAPIO_REMAPPED;
		}
		if (test_bit(STREAM_COPY_ON_READ, &sc->flags) &&
		    stream_copier_want(sc->copier, region))
			wake_worker(sc);
		remap(sc, bio, sc->origin_dev);
		return DM_MAPIO_REMAPPED;
	}

	/* The worker issues both legs of a mirrored write. */
	if (mirroring(sc)) {
		defer_bio(sc, bio);
		return DM_MAPIO_SUBMITTED;
	}

	/* A FUA write needs a commit first while its region's bit is not on disk. */
	if ((bio->bi_opf & REQ_FUA) ? stream_md_is_committed(sc->md, region) :
				      stream_md_is_copied(sc->md, region)) {
		remap(sc, bio, sc->dest_dev);
		return DM_MAPIO_REMAPPED;
	}

	defer_bio(sc, bio);
	return DM_MAPIO_SUBMITTED;
}

static int stream_end_io(struct dm_target *ti, struct bio *bio, blk_status_t *error)
{
	struct stream_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	struct stream_job *job = pb->job;

	if (job) {
		/* An overwrite: the worker marks the region, then ends the bio. */
		pb->job = NULL;
		stream_copier_job_done(job, blk_status_to_errno(*error));
		return DM_ENDIO_INCOMPLETE;
	}

	/* The destination leg of a mirrored bio: the last leg ends it. */
	if (pb->mirror) {
		pb->dest_status = *error;
		if (!atomic_dec_and_test(&pb->legs) || !legs_done(pb->sc, bio))
			return DM_ENDIO_INCOMPLETE;
	}
	return DM_ENDIO_DONE;
}

static void emit_opt_args(struct stream_c *sc, char *result, unsigned int maxlen,
			  unsigned int *sz_out)
{
	unsigned int sz = *sz_out;
	bool paused = test_bit(STREAM_PAUSED, &sc->flags);
	bool no_passdown = !test_bit(STREAM_DISCARD_PASSDOWN, &sc->flags);
	unsigned int rate = READ_ONCE(sc->rate);
	unsigned int max_inflight = READ_ONCE(sc->max_inflight);
	bool mirror = mirroring(sc);
	unsigned int min_rate = READ_ONCE(sc->min_rate);
	unsigned int max_rate = READ_ONCE(sc->max_rate);
	bool cor = test_bit(STREAM_COPY_ON_READ, &sc->flags);
	bool skip_zeroes = test_bit(STREAM_SKIP_ZEROES, &sc->flags);
	unsigned int count = paused + no_passdown + mirror + (rate ? 2 : 0) +
			     (max_inflight != STREAM_DEFAULT_MAX_INFLIGHT ? 2 : 0) +
			     (min_rate ? 2 : 0) + (max_rate ? 2 : 0) + cor + skip_zeroes;

	DMEMIT("%u", count);
	if (paused)
		DMEMIT(" " STREAM_OPT_PAUSED);
	if (rate)
		DMEMIT(" " STREAM_OPT_RATE " %u", rate);
	if (max_inflight != STREAM_DEFAULT_MAX_INFLIGHT)
		DMEMIT(" " STREAM_OPT_MAX_INFLIGHT " %u", max_inflight);
	if (no_passdown)
		DMEMIT(" " STREAM_OPT_NO_DISCARD_PASSDOWN);
	if (mirror)
		DMEMIT(" " STREAM_OPT_MIRROR);
	if (min_rate)
		DMEMIT(" " STREAM_OPT_MIN_RATE " %u", min_rate);
	if (max_rate)
		DMEMIT(" " STREAM_OPT_MAX_RATE " %u", max_rate);
	if (cor)
		DMEMIT(" " STREAM_OPT_COPY_ON_READ);
	if (skip_zeroes)
		DMEMIT(" " STREAM_OPT_SKIP_ZEROES);
	*sz_out = sz;
}

static const char *state_name(struct stream_c *sc)
{
	if (stream_md_nr_copied(sc->md) == sc->nr_regions)
		return STREAM_STATE_COMPLETE;
	if (test_bit(STREAM_STALLED, &sc->flags))
		return STREAM_STATE_STALLED;
	if (test_bit(STREAM_PAUSED, &sc->flags))
		return STREAM_STATE_PAUSED;
	return STREAM_STATE_STREAMING;
}

/*
 * Status (never blocks: it only reads counters).
 *
 * INFO (the order of enum stream_status_field, stream-interface.h):
 *   <metadata block size> <used>/<total metadata blocks> <region size>
 *   <copied>/<total regions> <regions copying> <state> <mode> <copy errors>
 *   <mirror> <#opt args> <opt args>*
 *
 *   metadata block size: in sectors (8).
 *   regions copying: regions with a kcopyd copy in flight.
 *   state: streaming, paused, stalled (background copying stopped on
 *   copy errors until "continue") or complete.
 *   mode: rw, ro (metadata cannot be written) or fail.
 *   copy errors: regions whose copy failed every retry and were left uncopied.
 *   mirror: mirror (writes reach the origin too), one-way, or degraded (an
 *   origin-leg write failed).
 *   opt args: the optional arguments in force, as in the table line
 *   ("mirror" while mirroring).
 *   "Fail" alone when the target has failed.
 *
 * TABLE: the constructor line, with the optional arguments in force.
 *
 * IMA: key=value; pairs.
 */
static void stream_status(struct dm_target *ti, status_type_t type, unsigned int status_flags,
			  char *result, unsigned int maxlen)
{
	struct stream_c *sc = ti->private;
	enum stream_mode mode = get_mode(sc);
	unsigned int sz = 0;

	switch (type) {
	case STATUSTYPE_INFO:
		if (mode == STREAM_MODE_FAIL) {
			DMEMIT(STREAM_STATUS_FAILED);
			break;
		}
		DMEMIT("%u %llu/%llu %llu %lu/%lu %lu %s %s %lu %s ",
		       STREAM_BLOCK_SECTORS,
		       stream_md_used_blocks(sc->md), stream_md_total_blocks(sc->md),
		       (unsigned long long)sc->region_size,
		       stream_md_nr_copied(sc->md), sc->nr_regions,
		       stream_copier_copying(sc->copier),
		       state_name(sc), mode_name(mode), READ_ONCE(sc->copy_errors),
		       mirror_name(sc));
		emit_opt_args(sc, result, maxlen, &sz);
		break;

	case STATUSTYPE_TABLE:
		DMEMIT("%s %s %s %llu ", sc->meta_dev->name, sc->dest_dev->name,
		       sc->origin_dev->name, (unsigned long long)sc->region_size);
		emit_opt_args(sc, result, maxlen, &sz);
		break;

	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",metadata_device=%s,destination_device=%s,origin_device=%s",
		       sc->meta_dev->name, sc->dest_dev->name, sc->origin_dev->name);
		DMEMIT(",region_size=%llu,paused=%c,rate=%u,max_inflight=%u",
		       (unsigned long long)sc->region_size,
		       test_bit(STREAM_PAUSED, &sc->flags) ? 'y' : 'n',
		       READ_ONCE(sc->rate), READ_ONCE(sc->max_inflight));
		DMEMIT(",discard_passdown=%c,mode=%s,mirror=%s",
		       test_bit(STREAM_DISCARD_PASSDOWN, &sc->flags) ? 'y' : 'n',
		       mode_name(mode), mirror_name(sc));
		DMEMIT(",min_rate=%u,max_rate=%u,copy_on_read=%c,skip_zeroes=%c;",
		       READ_ONCE(sc->min_rate), READ_ONCE(sc->max_rate),
		       test_bit(STREAM_COPY_ON_READ, &sc->flags) ? 'y' : 'n',
		       test_bit(STREAM_SKIP_ZEROES, &sc->flags) ? 'y' : 'n');
		break;
	}
}

/*---------------------------------------------------------------------------*/
/* Constructor argument parsing */
/* Digits only: no sign, no base prefix, no overflow, nothing after. */
static int parse_number(const char *arg, unsigned long long min, unsigned long long max,
			unsigned long long *value)
{
	if (!arg || !isdigit(arg[0]) || kstrtoull(arg, 10, value) ||
	    strlen(arg) != strspn(arg, "0123456789") || *value < min || *value > max)
		return -EINVAL;
	return 0;
}

static int parse_rate_kib(const char *arg, unsigned int *rate)
{
	unsigned long long v;

	if (parse_number(arg, 0, STREAM_MAX_RATE_KIB, &v))
		return -EINVAL;
	*rate = v;
	return 0;
}

static int parse_max_inflight(const char *arg, unsigned int *max_inflight)
{
	unsigned long long v;

	if (parse_number(arg, STREAM_MIN_MAX_INFLIGHT, STREAM_MAX_MAX_INFLIGHT, &v))
		return -EINVAL;
	*max_inflight = v;
	return 0;
}

static int parse_opt_args(struct dm_arg_set *as, struct stream_c *sc, char **error)
{
	unsigned long long argc;
	const char *arg;

	/* No optional arguments at all. */
	if (!as->argc)
		return 0;

	/* Not dm_read_arg_group(): its "%u" wraps numbers past 2^32 - 1. */
	if (parse_number(dm_shift_arg(as), 0, STREAM_MAX_OPT_ARGS, &argc) || argc > as->argc) {
		*error = "Invalid number of optional arguments";
		return -EINVAL;
	}

	while (argc) {
		arg = dm_shift_arg(as);
		argc--;

		if (!strcasecmp(arg, STREAM_OPT_PAUSED)) {
			set_bit(STREAM_PAUSED, &sc->flags);
		} else if (!strcasecmp(arg, STREAM_OPT_NO_DISCARD_PASSDOWN)) {
			clear_bit(STREAM_DISCARD_PASSDOWN, &sc->flags);
		} else if (!strcasecmp(arg, STREAM_OPT_MIRROR)) {
			sc->mirror_table = true;
		} else if (!strcasecmp(arg, STREAM_OPT_COPY_ON_READ)) {
			set_bit(STREAM_COPY_ON_READ, &sc->flags);
		} else if (!strcasecmp(arg, STREAM_OPT_SKIP_ZEROES)) {
			set_bit(STREAM_SKIP_ZEROES, &sc->flags);
		} else if (!strcasecmp(arg, STREAM_OPT_RATE)) {
			if (!argc || parse_rate_kib(dm_shift_arg(as), &sc->rate)) {
				*error = "Invalid rate: expected KiB/s as an unsigned 32-bit number";
				return -EINVAL;
			}
			argc--;
		} else if (!strcasecmp(arg, STREAM_OPT_MIN_RATE)) {
			if (!argc || parse_rate_kib(dm_shift_arg(as), &sc->min_rate)) {
				*error = "Invalid min_rate: expected KiB/s as an unsigned 32-bit number";
				return -EINVAL;
			}
			argc--;
		} else if (!strcasecmp(arg, STREAM_OPT_MAX_RATE)) {
			if (!argc || parse_rate_kib(dm_shift_arg(as), &sc->max_rate)) {
				*error = "Invalid max_rate: expected KiB/s as an unsigned 32-bit number";
				return -EINVAL;
			}
			argc--;
		} else if (!strcasecmp(arg, STREAM_OPT_MAX_INFLIGHT)) {
			if (!argc || parse_max_inflight(dm_shift_arg(as), &sc->max_inflight)) {
				*error = "Invalid max_inflight: expected 1 to 1024 regions";
				return -EINVAL;
			}
			argc--;
		} else {
			*error = "Unknown optional argument";
			return -EINVAL;
		}
	}

	if (as->argc) {
		*error = "Too many arguments: trailing words after the optional arguments";
		return -EINVAL;
	}
	return 0;
}

static int parse_region_size(struct stream_c *sc, const char *arg, char **error)
{
	unsigned long long v;

	if (parse_number(arg, STREAM_MIN_REGION_SECTORS, STREAM_MAX_REGION_SECTORS, &v) ||
	    !is_power_of_2(v)) {
		*error = "Invalid region size: expected a power of two from 8 to 2097152 sectors";
		return -EINVAL;
	}
	sc->region_size = v;
	sc->region_shift = __ffs(v);
	return 0;
}

static int get_devices(struct stream_c *sc, struct dm_arg_set *as, char **error)
{
	struct dm_target *ti = sc->ti;
	int r;

	r = dm_get_device(ti, dm_shift_arg(as), STREAM_OPEN_RW, &sc->meta_dev);
	if (r) {
		*error = "Error opening metadata device";
		return r;
	}
	r = dm_get_device(ti, dm_shift_arg(as), STREAM_OPEN_RW, &sc->dest_dev);
	if (r) {
		*error = "Error opening destination device";
		return r;
	}
	sc->origin_path = dm_shift_arg(as);
	r = dm_get_device(ti, sc->origin_path, STREAM_OPEN_READ, &sc->origin_dev);
	if (r) {
		*error = "Error opening origin device";
		return r;
	}

	if (sc->meta_dev->bdev == sc->dest_dev->bdev ||
	    sc->meta_dev->bdev == sc->origin_dev->bdev ||
	    sc->dest_dev->bdev == sc->origin_dev->bdev) {
		*error = "The metadata, destination and origin devices must all differ";
		return -EINVAL;
	}
	return 0;
}

static int check_geometry(struct stream_c *sc, char **error)
{
	struct dm_target *ti = sc->ti;
	struct dm_dev *devs[] = { sc->meta_dev, sc->dest_dev, sc->origin_dev };
	unsigned long long nr_regions, needed;
	unsigned int i;

	if (bdev_nr_sectors(sc->origin_dev->bdev) < ti->len) {
		*error = "Origin device is shorter than the target";
		return -EINVAL;
	}
	if (bdev_nr_sectors(sc->dest_dev->bdev) < ti->len) {
		*error = "Destination device is shorter than the target";
		return -EINVAL;
	}
	for (i = 0; i < ARRAY_SIZE(devs); i++) {
		if (sc->region_size % (bdev_logical_block_size(devs[i]->bdev) >> SECTOR_SHIFT)) {
			*error = "Region size is not a multiple of a device's logical block size";
			return -EINVAL;
		}
	}

	nr_regions = DIV_ROUND_UP_ULL(ti->len, sc->region_size);
	if (nr_regions > STREAM_MAX_REGIONS || nr_regions > ULONG_MAX) {
		*error = "Too many regions: use a larger region size";
		return -EINVAL;
	}
	sc->nr_regions = nr_regions;

	needed = stream_metadata_blocks(nr_regions) * STREAM_BLOCK_SECTORS;
	if (bdev_nr_sectors(sc->meta_dev->bdev) < needed) {
		/* ti->error must be a constant string: the number goes to the log. */
		DMERR("metadata device %s has %llu sectors, %llu needed", sc->meta_dev->name,
		      (unsigned long long)bdev_nr_sectors(sc->meta_dev->bdev), needed);
		*error = "Metadata device too small (the log line above says how many sectors are needed)";
		return -EINVAL;
	}
	return 0;
}

/*---------------------------------------------------------------------------*/
/* Constructor and destructor */
static void do_preresume(struct work_struct *ws);

/*
 * A mirror table writes the origin: once the optional arguments are
 * parsed, the origin is opened again read-write. dm upgrades the device
 * the table already holds: it replaces (and may free) the dm_dev the first
 * dm_get_device() returned and counts a second reference on the new one,
 * which is dropped through the new pointer.
 */
static int open_origin_rw(struct stream_c *sc, char **error)
{
	struct dm_dev *rw;
	int r;

	r = dm_get_device(sc->ti, sc->origin_path, STREAM_OPEN_RW, &rw);
	if (r) {
		*error = "Error opening origin device read-write (mirror)";
		return r;
	}
	sc->origin_dev = rw;
	dm_put_device(sc->ti, rw);
	return 0;
}

/*
 * Mirror mode and the origin's state on disk (the constructor): a mirror
 * table needs an origin that holds every acknowledged write. A stale one
 * is refused while any region is copied (the destination holds writes the
 * origin missed); with nothing copied, preresume makes it current again.
 */
static int check_mirror(struct stream_c *sc, char **error)
{
	if (!sc->mirror_table)
		return 0;
	if (stream_md_origin_stale(sc->md) && stream_md_nr_copied(sc->md)) {
		*error = "Cannot mirror: the origin misses writes made one-way (metadata says it is stale) and regions are copied";
		return -EINVAL;
	}
	sc->mirror = MIRROR_ON;
	return 0;
}

static void put_devices(struct stream_c *sc)
{
	if (sc->origin_dev)
		dm_put_device(sc->ti, sc->origin_dev);
	if (sc->dest_dev)
		dm_put_device(sc->ti, sc->dest_dev);
	if (sc->meta_dev)
		dm_put_device(sc->ti, sc->meta_dev);
}

static int create_copier(struct stream_c *sc)
{
	struct stream_copier_setup setup = {
		.origin = sc->origin_dev->bdev,
		.dest = sc->dest_dev->bdev,
		.md = sc->md,
		.target_len = sc->ti->len,
		.region_size = sc->region_size,
		.nr_regions = sc->nr_regions,
		.skip_zeroes = test_bit(STREAM_SKIP_ZEROES, &sc->flags),
		.wake = wake_worker,
		.wake_context = sc,
	};

	sc->copier = stream_copier_create(&setup);
	return PTR_ERR_OR_ZERO(sc->copier);
}

/*
 * stream <metadata dev> <destination dev> <origin dev> <region size>
 *        [<#opt args> <opt arg>*]
 */
static int stream_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct dm_arg_set as = { .argc = argc, .argv = argv };
	struct stream_geometry geo = {};
	struct stream_c *sc;
	int r;

	if (argc < 4) {
		ti->error = "Invalid argument count: expected <metadata dev> <destination dev> <origin dev> <region size> [<#opt args> <opt arg>*]";
		return -EINVAL;
	}

	sc = kzalloc(sizeof(*sc), GFP_KERNEL);
	if (!sc) {
		ti->error = "Cannot allocate the target context";
		return -ENOMEM;
	}
	sc->ti = ti;
	sc->max_inflight = STREAM_DEFAULT_MAX_INFLIGHT;
	set_bit(STREAM_DISCARD_PASSDOWN, &sc->flags);
	/*
	 * No background copies before the first resume, and no worker run:
	 * a table whose preresume failed stays in place, suspended, beside
	 * the next one loaded, and the metadata must keep one committer.
	 */
	set_bit(STREAM_SUSPENDED, &sc->flags);
	set_bit(STREAM_FROZEN, &sc->flags);
	set_bit(STREAM_FLUSH_ORIGIN, &sc->flags);

	r = get_devices(sc, &as, &ti->error);
	if (r)
		goto bad_devices;
	r = parse_region_size(sc, dm_shift_arg(&as), &ti->error);
	if (r)
		goto bad_devices;
	r = parse_opt_args(&as, sc, &ti->error);
	if (r)
		goto bad_devices;
	if (sc->mirror_table) {
		r = open_origin_rw(sc, &ti->error);
		if (r)
			goto bad_devices;
	}
	r = check_geometry(sc, &ti->error);
	if (r)
		goto bad_devices;

	geo.region_size = sc->region_size;
	geo.target_size = ti->len;
	geo.origin_size = bdev_nr_sectors(sc->origin_dev->bdev);
	geo.dest_size = bdev_nr_sectors(sc->dest_dev->bdev);
	geo.nr_regions = sc->nr_regions;
	sc->md = stream_md_open(sc->meta_dev->bdev, &geo, dm_table_get_md(ti->table),
				ti->table, &ti->error);
	if (IS_ERR(sc->md)) {
		r = PTR_ERR(sc->md);
		goto bad_devices;
	}
	r = stream_md_check_origin(sc->md, sc->origin_dev->bdev, &ti->error);
	if (r)
		goto bad_copier;
	r = check_mirror(sc, &ti->error);
	if (r)
		goto bad_copier;
	/* A reload keeps the mode of the metadata it shares; it was announced. */
	sc->announced = stream_md_mode(sc->md);
	if (stream_md_nr_copied(sc->md) == sc->nr_regions)
		set_bit(STREAM_COMPLETE, &sc->flags);

	if (sc->mirror_table) {
		r = bioset_init(&sc->mirror_bs, BIO_POOL_SIZE, 0, 0);
		if (r) {
			ti->error = "Cannot allocate the origin-leg bioset";
			goto bad_copier;
		}
	}

	r = create_copier(sc);
	if (r) {
		ti->error = "Cannot set up the copier";
		goto bad_bioset;
	}

	sc->wq = alloc_ordered_workqueue("dm-" DM_MSG_PREFIX, WQ_MEM_RECLAIM);
	if (!sc->wq) {
		ti->error = "Cannot allocate the workqueue";
		r = -ENOMEM;
		goto bad_wq;
	}
	INIT_WORK(&sc->worker, do_worker);
	INIT_WORK(&sc->preresume_work, do_preresume);
	INIT_DELAYED_WORK(&sc->waker, do_waker);
	init_waitqueue_head(&sc->drain);
	spin_lock_init(&sc->lock);
	bio_list_init(&sc->deferred);
	bio_list_init(&sc->flushes);
	bio_list_init(&sc->commit_then_submit);
	bio_list_init(&sc->commit_then_end);
	bio_list_init(&sc->commit_then_mirror);
	bio_list_init(&sc->origin_failed);
	bio_list_init(&sc->nomem);
	sc->last_commit = jiffies;

	r = dm_set_target_max_io_len(ti, sc->region_size);
	if (r) {
		ti->error = "Cannot set the maximum I/O size";
		goto bad_io_len;
	}
	ti->num_flush_bios = 1;
	ti->flush_supported = true;
	ti->num_discard_bios = 1;
	ti->discards_supported = true;
	ti->per_io_data_size = sizeof(struct stream_bio);
	ti->private = sc;
	return 0;

bad_io_len:
	destroy_workqueue(sc->wq);
bad_wq:
	stream_copier_destroy(sc->copier);
bad_bioset:
	bioset_exit(&sc->mirror_bs);
bad_copier:
	stream_md_close(sc->md, ti->table);
bad_devices:
	put_devices(sc);
	kfree(sc);
	return r;
}

static void stream_dtr(struct dm_target *ti)
{
	struct stream_c *sc = ti->private;

	/*
	 * dm postsuspends a table before destroying it, and postsuspend
	 * committed; a table that never resumed changed nothing. So there is
	 * nothing to commit here, and committing would race with the worker
	 * of a new table sharing the metadata after a reload.
	 *
	 * Order matters. A kcopyd callback may still be about to queue the
	 * worker after publishing its job (postsuspend saw the job released):
	 * destroying the kcopyd client waits for every callback to return.
	 * Then no worker run arms the waker (DYING), the one armed before is
	 * cancelled, and the workqueue is empty when it is destroyed.
	 */
	set_bit(STREAM_DYING, &sc->flags);
	stream_copier_stop(sc->copier);
	flush_workqueue(sc->wq);
	cancel_delayed_work_sync(&sc->waker);
	destroy_workqueue(sc->wq);
	stream_copier_destroy(sc->copier);
	bioset_exit(&sc->mirror_bs);
	stream_md_close(sc->md, ti->table);
	put_devices(sc);
	kfree(sc);
}

/*---------------------------------------------------------------------------*/
/* Suspend and resume */
static void stream_presuspend(struct dm_target *ti)
{
	struct stream_c *sc = ti->private;

	/* Stop starting background copies; bios in flight still get theirs. */
	set_bit(STREAM_SUSPENDED, &sc->flags);
	if (dm_noflush_suspending(ti))
		set_bit(STREAM_REQUEUE, &sc->flags);
	wake_worker(sc);
}

/* The suspend was interrupted (a signal, a failed lock_fs): carry on. */
static void stream_presuspend_undo(struct dm_target *ti)
{
	struct stream_c *sc = ti->private;

	clear_bit(STREAM_REQUEUE, &sc->flags);
	clear_bit(STREAM_SUSPENDED, &sc->flags);
	wake_worker(sc);
}

static void stream_postsuspend(struct dm_target *ti)
{
	struct stream_c *sc = ti->private;

	/* dm waited for our bios; now wait for the copies they did not need. */
	wait_event(sc->drain, stream_copier_idle(sc->copier));

	clear_bit(STREAM_REQUEUE, &sc->flags);
	set_bit(STREAM_COMMIT_NOW, &sc->flags);
	queue_work(sc->wq, &sc->worker);
	flush_workqueue(sc->wq);

	/*
	 * The last commit is done. A message or the waker may still queue the
	 * worker: from here on it returns at once (see do_worker()). The
	 * second flush waits for a run that started before the bit was set.
	 */
	set_bit(STREAM_FROZEN, &sc->flags);
	cancel_delayed_work_sync(&sc->waker);
	flush_workqueue(sc->wq);
}

/*
 * Before the first write through this table is acknowledged, the
 * superblock must say what the table does to the origin: a one-way table
 * records it stale, a mirror table on a stale origin with nothing copied
 * records it current (check_mirror() refused the rest). The origin samples
 * dmstream asked for are taken now too: the old table is suspended and
 * nothing has written the origin through this one yet. One commit makes it
 * all durable (without a destination flush unless copied regions wait for
 * one); it runs on this table's ordered workqueue, so that the metadata
 * keeps one committer. If anything fails, the resume fails. Changes that
 * were pending already (a bitmap slot to rewrite, say) are left to the
 * worker's next commit when nothing here needs one: samples taken then
 * ride on that commit too, as their change cannot be told apart.
 */
static void do_preresume(struct work_struct *ws)
{
	struct stream_c *sc = container_of(ws, struct stream_c, preresume_work);
	struct stream_metadata *md = sc->md;
	bool pending = stream_md_changed(md);
	bool set_stale = false, cleared = false;
	int r;

	/*
	 * Stale in core is on disk too unless a commit failed, which left rw
	 * for good: then the superblock may say either.
	 */
	/*
	 * What the disk says, whatever the mode: a one-way table resumed in
	 * ro mode needs no commit when the flag is on disk already.
	 */
	sc->stale_durable = stream_md_origin_stale_committed(md);

	/*
	 * An origin that cannot be read now cannot be checked, but it can be
	 * streamed from once it reads again: the samples it could not give
	 * stay wanted, for the next resume.
	 */
	r = stream_md_take_samples(md, sc->origin_dev->bdev);
	if (r)
		DMWARN("%s: reading the origin's samples failed (%d): they are taken at a later resume",
		       sc_name(sc), r);
	r = 0;

	if (mirroring(sc) && stream_md_origin_stale(md)) {
		r = stream_md_clear_origin_stale(md);
		if (r) {
			DMERR("%s: cannot mirror: the origin is stale and regions were copied since the table was loaded",
			      sc_name(sc));
			goto out;
		}
		cleared = true;
	} else if (!mirroring(sc) && !sc->stale_durable) {
		stream_md_set_origin_stale(md, false);
		set_stale = true;
	}

	if (set_stale || cleared || (!pending && stream_md_changed(md))) {
		r = get_mode(sc) == STREAM_MODE_RW ? commit_origin_flags(sc, pending) : -EIO;
		if (r) {
			DMERR("%s: recording the origin's state failed (%d): not resuming",
			      sc_name(sc), r);
			goto out;
		}
	}
	if (set_stale)
		sc->stale_durable = true;
	if (cleared)
		sc->stale_durable = false;
out:
	sc->preresume_error = r;
}

static int stream_preresume(struct dm_target *ti)
{
	struct stream_c *sc = ti->private;

	queue_work(sc->wq, &sc->preresume_work);
	flush_work(&sc->preresume_work);
	return sc->preresume_error;
}

static void stream_resume(struct dm_target *ti)
{
	struct stream_c *sc = ti->private;

	/* I/O before this resume does not make the users busy. */
	sc->user_sectors = part_stat_read_accum(dm_disk(dm_table_get_md(ti->table))->part0,
						sectors);
	clear_bit(STREAM_FROZEN, &sc->flags);
	clear_bit(STREAM_SUSPENDED, &sc->flags);
	wake_worker(sc);
}

/*---------------------------------------------------------------------------*/
/* Limits and devices */
static void stream_io_hints(struct dm_target *ti, struct queue_limits *limits)
{
	struct stream_c *sc = ti->private;
	u64 io_opt_sectors = limits->io_opt >> SECTOR_SHIFT;

	if (io_opt_sectors < sc->region_size || do_div(io_opt_sectors, sc->region_size)) {
		stream_limits_io_min_opt(limits, sc->region_size << SECTOR_SHIFT,
					 sc->region_size << SECTOR_SHIFT);
	}

	/* Discards are ours to interpret, whatever the devices support. */
	limits->discard_granularity = sc->region_size << SECTOR_SHIFT;
	limits->max_discard_sectors = round_down(UINT_MAX >> SECTOR_SHIFT, sc->region_size);
	limits->max_hw_discard_sectors = limits->max_discard_sectors;
}

static int stream_iterate_devices(struct dm_target *ti, iterate_devices_callout_fn fn,
				  void *data)
{
	struct stream_c *sc = ti->private;
	int r;

	r = fn(ti, sc->dest_dev, 0, ti->len, data);
	if (!r)
		r = fn(ti, sc->origin_dev, 0, ti->len, data);
	return r;
}

/*---------------------------------------------------------------------------*/
/* Messages (never block) */
/*
 * The rate field a message word names, and the name the kernel log uses
 * for it (the user may spell it in any case). NULL for other words.
 */
static unsigned int *rate_by_name(struct stream_c *sc, const char *word,
				  const char **name)
{
	if (!strcasecmp(word, STREAM_MSG_RATE)) {
		*name = STREAM_MSG_RATE;
		return &sc->rate;
	}
	if (!strcasecmp(word, STREAM_MSG_MIN_RATE)) {
		*name = STREAM_MSG_MIN_RATE;
		return &sc->min_rate;
	}
	if (!strcasecmp(word, STREAM_MSG_MAX_RATE)) {
		*name = STREAM_MSG_MAX_RATE;
		return &sc->max_rate;
	}
	return NULL;
}

static int stream_message(struct dm_target *ti, unsigned int argc, char **argv,
			  char *result, unsigned int maxlen)
{
	struct stream_c *sc = ti->private;
	unsigned int value, *rate;
	const char *name;

	rate = argc == 2 ? rate_by_name(sc, argv[0], &name) : NULL;
	if (argc == 1 && !strcasecmp(argv[0], STREAM_MSG_PAUSE)) {
		set_bit(STREAM_PAUSED, &sc->flags);
	} else if (argc == 1 && !strcasecmp(argv[0], STREAM_MSG_CONTINUE)) {
		clear_bit(STREAM_PAUSED, &sc->flags);
		if (test_and_clear_bit(STREAM_STALLED, &sc->flags))
			set_bit(STREAM_RESTART, &sc->flags);
	} else if (rate) {
		if (parse_rate_kib(argv[1], &value)) {
			DMERR("invalid %s '%s': expected KiB/s", name, argv[1]);
			return -EINVAL;
		}
		WRITE_ONCE(*rate, value);
	} else if (argc == 2 && !strcasecmp(argv[0], STREAM_MSG_COPY_ON_READ)) {
		if (!strcasecmp(argv[1], STREAM_MSG_ON)) {
			set_bit(STREAM_COPY_ON_READ, &sc->flags);
		} else if (!strcasecmp(argv[1], STREAM_MSG_OFF)) {
			clear_bit(STREAM_COPY_ON_READ, &sc->flags);
		} else {
			DMERR("invalid 'copy_on_read %s': expected on or off", argv[1]);
			return -EINVAL;
		}
	} else if (argc == 2 && !strcasecmp(argv[0], STREAM_MSG_MAX_INFLIGHT)) {
		if (parse_max_inflight(argv[1], &value)) {
			DMERR("invalid max_inflight '%s': expected 1 to %u",
			      argv[1], STREAM_MAX_MAX_INFLIGHT);
			return -EINVAL;
		}
		WRITE_ONCE(sc->max_inflight, value);
	} else if (argc == 2 && !strcasecmp(argv[0], STREAM_MSG_MIRROR)) {
		if (strcasecmp(argv[1], STREAM_MSG_MIRROR_OFF)) {
			DMWARN("invalid 'mirror %s': only 'mirror off' is a message; mirroring starts from a table line with 'mirror', on a stream whose origin is current",
			       argv[1]);
			return -EINVAL;
		}
		/* The worker records the stale origin, then stops mirroring. */
		set_bit(STREAM_MIRROR_OFF_REQ, &sc->flags);
	} else {
		DMERR("unsupported message '%s' with %u argument(s): expected pause, continue, rate <KiB/s>, min_rate <KiB/s>, max_rate <KiB/s>, max_inflight <N>, copy_on_read on|off or mirror off",
		      argc ? argv[0] : "", argc ? argc - 1 : 0);
		return -EINVAL;
	}

	wake_worker(sc);
	return 0;
}

/*---------------------------------------------------------------------------*/
/* Module */
static struct target_type stream_target = {
	.name = STREAM_TARGET_NAME,
	.version = { STREAM_TARGET_VERSION_MAJOR, STREAM_TARGET_VERSION_MINOR,
		     STREAM_TARGET_VERSION_PATCH },
	.module = THIS_MODULE,
	.ctr = stream_ctr,
	.dtr = stream_dtr,
	.map = stream_map,
	.end_io = stream_end_io,
	.presuspend = stream_presuspend,
	.presuspend_undo = stream_presuspend_undo,
	.postsuspend = stream_postsuspend,
	.preresume = stream_preresume,
	.resume = stream_resume,
	.status = stream_status,
	.message = stream_message,
	.io_hints = stream_io_hints,
	.iterate_devices = stream_iterate_devices,
};

static int __init dm_stream_init(void)
{
	int r;

	r = stream_copier_module_init();
	if (r)
		return r;

	r = dm_register_target(&stream_target);
	if (r) {
		DMERR("register failed %d", r);
		stream_copier_module_exit();
	}
	return r;
}

static void __exit dm_stream_exit(void)
{
	dm_unregister_target(&stream_target);
	stream_copier_module_exit();
}

module_init(dm_stream_init);
module_exit(dm_stream_exit);

MODULE_DESCRIPTION(DM_NAME " target streaming an origin into a copy-on-write destination");
MODULE_AUTHOR("dm-stream developers");
MODULE_LICENSE("GPL");
