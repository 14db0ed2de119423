/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-stream copier: region copy jobs on dm-kcopyd, the scan cursor, merging
 * of neighbouring regions and the rate limit.
 *
 * A background job copies its run in pieces of at most piece_sectors, one
 * piece in flight at a time, so that the bytes in flight are bounded
 * whatever the region size: between two pieces the job waits on the
 * pending list, where the caller can continue it or drop it (a suspend).
 * A job started for a bio copies its run in one piece.
 *
 * Concurrency contract: every function here except stream_copier_job_done()
 * is called from the target's worker only (or from ctr/dtr when no worker
 * runs) and takes no locks of the caller's; none of them blocks, except
 * stream_copier_exit(). stream_copier_job_done() may run in any context
 * (kcopyd callback, bio end_io) and only takes the copier's completion
 * spinlock.
 */
#ifndef DM_STREAM_COPIER_H
#define DM_STREAM_COPIER_H

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/list.h>
#include <linux/mempool.h>
#include <linux/rbtree.h>
#include <linux/spinlock.h>

struct stream_metadata;
struct dm_kcopyd_client;

/* A job owns a run of regions: a copy, or a whole-region overwrite. */
struct stream_job {
	struct rb_node node;		/* in copier->jobs, keyed by region */
	struct list_head list;		/* on copier->completed, ->retry or ->pending */
	struct stream_copier *copier;
	unsigned long region;
	unsigned long nr;
	bool background;		/* started by the cursor, not by a bio */
	bool overwrite;			/* no copy: a bio writes the whole region */
	unsigned int tries;		/* of the current piece */
	unsigned long retry_at;		/* jiffies */
	sector_t done;			/* sectors of the run copied so far */
	sector_t piece;			/* sectors of the piece in flight */
	int error;
	struct bio *bio;		/* the overwriting bio */
	struct bio_list waiters;	/* bios to replay when the job ends */
};

struct stream_copier {
	struct dm_kcopyd_client *kc;
	struct block_device *origin;
	struct block_device *dest;
	struct stream_metadata *md;
	sector_t target_len;
	sector_t region_size;
	unsigned int region_shift;
	unsigned long nr_regions;
	sector_t min_piece;		/* a multiple of the logical block sizes */

	/*
	 * Called when a job completes, with @lock held, in any context
	 * (interrupt too): must not block or take @lock.
	 */
	void (*wake)(void *context);
	void *wake_context;

	/* Worker only. */
	unsigned long *busy;		/* regions owned by a job */
	struct rb_root jobs;
	struct list_head retry;
	struct list_head pending;	/* background jobs between two pieces */
	sector_t piece_sectors;
	sector_t inflight_sectors;	/* of background pieces in flight */
	unsigned int rate;		/* KiB/s, 0 = unlimited */
	unsigned int max_inflight;	/* background regions */
	sector_t inflight_limit;	/* background sectors */
	unsigned long cursor;
	unsigned long no_merge_end;	/* regions below: copied one by one */
	unsigned long nr_jobs;
	unsigned long background_regions;	/* in flight */
	s64 tokens;			/* sectors * HZ */
	unsigned long last_refill;

	/* Read locklessly by status. */
	unsigned long copying_regions;

	spinlock_t lock;		/* protects completed */
	struct list_head completed;

	mempool_t job_pool;
};

int stream_copier_module_init(void);
void stream_copier_module_exit(void);

/* Fill in the fields above "Worker only" first. */
int stream_copier_init(struct stream_copier *c);
/*
 * Destroys the kcopyd client: blocks until every kcopyd job ended and its
 * callback (stream_copier_job_done() and the wake it calls) returned.
 */
void stream_copier_stop(struct stream_copier *c);
/* With no job left; stops first if that was not done. */
void stream_copier_exit(struct stream_copier *c);

struct stream_job *stream_copier_find(struct stream_copier *c, unsigned long region);

/*
 * Starts a copy of @region for a bio, in one piece, or, with @bio, claims
 * one region for a bio that overwrites it whole (the caller submits the
 * bio). Returns NULL when no memory is available without blocking: try
 * again later.
 */
struct stream_job *stream_copier_copy(struct stream_copier *c, unsigned long region);
struct stream_job *stream_copier_claim(struct stream_copier *c, unsigned long region,
				       struct bio *bio);

/* What becomes of a failed copy job: see stream_copier_failed(). */
enum stream_copy_failure {
	STREAM_COPY_SPLIT,	/* release it: its regions are copied one by one */
	STREAM_COPY_RETRY,	/* nothing: it is on the retry list */
	STREAM_COPY_GIVE_UP,	/* release it and fail its waiters */
};

/*
 * A copy job failed (job->error), and was not dropped. A merged run is
 * split: the cursor goes back to its first region and its regions are
 * copied one by one from then on, so the caller releases it (its waiters
 * go on). A single region is tried MAX_COPY_TRIES times in all, the next
 * try after RETRY_DELAY doubled at each try, then given up. Without
 * @may_copy (no new copies: ro mode) the job is given up at once.
 */
enum stream_copy_failure stream_copier_failed(struct stream_copier *c, struct stream_job *job,
					      bool may_copy);
/* Moves the jobs waiting for a retry to @list. */
void stream_copier_take_retries(struct stream_copier *c, struct list_head *list);
/*
 * For a job taken with stream_copier_take_retries() and taken off that
 * list: issues its failed piece again and returns true when its retry is
 * due; otherwise puts it back on the retry list, sets *@due to the jiffies
 * it is due at and returns false.
 */
bool stream_copier_retry(struct stream_copier *c, struct stream_job *job, unsigned long *due);
/*
 * A copy job's piece ended (job->error tells how). Returns true when the
 * job is over: copied whole, or failed. Otherwise the job is now on the
 * pending list.
 */
bool stream_copier_piece_done(struct stream_copier *c, struct stream_job *job);
/* Moves the background jobs between two pieces to @list. */
void stream_copier_take_pending(struct stream_copier *c, struct list_head *list);
/* Issues the next piece of a pending job (taken off the list if on it). */
void stream_copier_continue(struct stream_copier *c, struct stream_job *job);
/*
 * The same within the limits: returns true when the piece was issued;
 * otherwise puts the job back on the pending list, sets *@wait to the
 * jiffies the rate limit asks to wait, or to 0 when there is no room in
 * flight (a piece's end wakes the caller), and returns false.
 */
bool stream_copier_continue_limited(struct stream_copier *c, struct stream_job *job,
				    unsigned long *wait);
/* Puts a job taken with stream_copier_take_pending() back on the list. */
void stream_copier_hold(struct stream_copier *c, struct stream_job *job);
/* Any context: a job's copy or bio finished with @error. */
void stream_copier_job_done(struct stream_job *job, int error);
/* Moves the finished jobs to @list. */
void stream_copier_take_completed(struct stream_copier *c, struct list_head *list);
/* Forgets a finished job: its regions become free for new jobs. */
void stream_copier_release(struct stream_copier *c, struct stream_job *job);

/*
 * The first run of regions in [start, end) that are neither copied nor
 * owned by a job (a discard marks them copied). Returns its length (0 when
 * there is none) and its first region in *@region.
 */
unsigned long stream_copier_free_run(struct stream_copier *c, unsigned long start,
				     unsigned long end, unsigned long *region);

/*
 * Background copies. Before each round, stream_copier_set_limits() gives
 * the user's settings: @rate KiB/s (0 = unlimited) for the token bucket,
 * and at most @max_inflight regions in flight. From them the copier takes
 * its own bounds: pieces and merged runs of at most 1 MiB, and a quarter
 * second of the rate when limited; in flight at most 16 MiB and one second
 * of the rate.
 */
void stream_copier_set_limits(struct stream_copier *c, unsigned int rate,
			      unsigned int max_inflight);

/* What stream_copier_start() did. */
enum stream_start {
	STREAM_START_COPYING,	/* started a copy: call again */
	STREAM_START_END,	/* the cursor is at the end of the device */
	STREAM_START_FULL,	/* limits reached: a piece's end wakes the caller */
	STREAM_START_THROTTLED,	/* the rate limit: call again in *wait jiffies */
	STREAM_START_NOMEM,	/* no job without blocking: call again later */
};

/*
 * Starts a background copy of the next run of regions that are neither
 * copied nor owned by a job, from the cursor on, merging neighbours within
 * the limits (regions below a split failed run one by one).
 */
enum stream_start stream_copier_start(struct stream_copier *c, unsigned long *wait);
/* No background job: none in flight, between pieces or waiting to retry. */
bool stream_copier_background_idle(struct stream_copier *c);
/* Moves the cursor back to region 0, for a new pass. */
void stream_copier_rewind(struct stream_copier *c);

#endif /* DM_STREAM_COPIER_H */
