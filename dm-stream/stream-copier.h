/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-stream copier: region copy jobs, the scan cursor, merging of
 * neighbouring regions, retries, the rate limit and the pacing of
 * background copies behind the users' I/O.
 *
 * The copier owns which regions are owned by a job (a region is owned by at
 * most one), what to copy next in the background, how neighbouring regions
 * are merged into one job, what becomes of a failed copy and how fast
 * background copies go. Its state is private to stream-copier.c. The
 * caller (the target) owns the bios, the mode, suspends and the pass: it
 * says when copying is allowed, gives the user's settings, and decides
 * about each job the copier hands back.
 *
 * A background job copies its run in pieces, one piece in flight at a time,
 * so that the bytes in flight are bounded whatever the region size: between
 * two pieces the job waits on the pending list, where the caller can
 * continue it or drop it (a suspend). A piece is read from the origin with
 * dm-io into the job's own pages, looked at on the copier's own workqueue
 * and written to the destination from there: its all-zero chunks become
 * WRITE_ZEROES, or no write at all with skip_zeroes where the destination
 * reads zeros already (see piece_work()). The piece ends
 * (stream_copier_job_done()) once written, skipped or failed. A job started
 * for a bio copies its region in one piece, with dm-kcopyd, on a client of
 * its own: it never queues behind background pieces, and while it runs the
 * background keeps at most one piece in flight. The background's window in
 * flight adapts to its pieces' latency (see "Pacing" in stream-copier.c).
 *
 * A job ends (the kcopyd copy, the piece or the overwriting bio completed)
 * in any context: stream_copier_job_done() puts it on the completed list
 * under the copier's completion spinlock and calls the wake callback under
 * that lock. The caller's worker takes the completed jobs, hands each copy
 * job to stream_copier_piece_done() and, once it is over, releases it with
 * stream_copier_release() (after stream_copier_failed() for a failure).
 *
 * Concurrency contract:
 * - stream_copier_create() and stream_copier_destroy() run in the
 *   constructor and the destructor (destroy when no worker runs and no job
 *   is left). They may block: create allocates with GFP_KERNEL, destroy
 *   waits like stream_copier_stop().
 * - stream_copier_stop() runs in the destructor; it blocks until every
 *   kcopyd job and dm-io piece ended and its callback
 *   (stream_copier_job_done() and the wake it calls) returned.
 * - stream_copier_job_done() runs in any context (kcopyd callback, bio
 *   end_io, interrupts too) and takes only the completion spinlock, with
 *   interrupts saved.
 * - stream_copier_idle() and stream_copier_copying() never block and may
 *   be called from any context without locks (postsuspend, status); they
 *   read counters the worker writes.
 * - stream_copier_want() never blocks and may be called from any context
 *   (map): it only sets bits atomically.
 * - Every other function must be serialised by the caller: the target
 *   calls them from its single worker only, in process context. They hold
 *   no lock of the caller's. Jobs are allocated with GFP_NOWAIT (a
 *   function that starts a job fails instead), but dm_kcopyd_copy() takes
 *   its own job from a mempool with GFP_NOIO and may sleep there: the
 *   functions that issue a copy (copy, retry, continue, continue_limited,
 *   start) must not be called in atomic context.
 *   stream_copier_take_completed() takes the completion spinlock,
 *   disabling interrupts; the others take no locks.
 */
#ifndef DM_STREAM_COPIER_H
#define DM_STREAM_COPIER_H

#include <linux/bio.h>
#include <linux/dm-io.h>
#include <linux/ktime.h>
#include <linux/blkdev.h>
#include <linux/list.h>
#include <linux/rbtree.h>
#include <linux/workqueue.h>

struct stream_copier;
struct stream_metadata;

/*
 * A job owns a run of regions: a copy, or a whole-region overwrite. The
 * caller reads region, nr, background, overwrite, error, bio and tries,
 * and owns waiters; it may use list while the job is on a list it took
 * from the copier (and must take the job off it before handing the job
 * back). The rest is the copier's.
 */
/* A background piece is read from the origin, perhaps from the destination, then written. */
enum stream_piece_stage {
	STREAM_PIECE_READ,
	STREAM_PIECE_READ_DEST,
	STREAM_PIECE_WRITE,
};

struct stream_job {
	struct rb_node node;		/* in the copier's tree, keyed by region */
	struct list_head list;		/* on a completed, retry or pending list */
	struct stream_copier *copier;
	unsigned long region;
	unsigned long nr;
	bool background;		/* started by the cursor, not by a bio */
	bool hot;			/* a background job asked for by a read */
	bool overwrite;			/* no copy: a bio writes the whole region */
	bool failing;			/* background: its piece is to be tried again */
	unsigned int tries;		/* of the current piece */
	unsigned long retry_at;		/* jiffies */
	sector_t done;			/* sectors of the run copied so far */
	sector_t piece;			/* sectors of the piece in flight */
	/* Background: the piece's stage, its I/Os in flight, what failed. */
	enum stream_piece_stage stage;
	atomic_t ios;
	bool io_failed;
	bool zeroes_failed;		/* a WRITE_ZEROES */
	unsigned long zeros;		/* chunks the origin holds zeros in */
	struct work_struct work;	/* background: look at what was read */
	ktime_t issued;			/* background: when the piece was issued */
	struct page_list *pl;		/* background: the piece's buffer */
	unsigned int nr_pages;
	int error;
	struct bio *bio;		/* the overwriting bio */
	struct bio_list waiters;	/* bios to replay when the job ends */
};

/* What the copier copies, for stream_copier_create(). */
struct stream_copier_setup {
	struct block_device *origin;
	struct block_device *dest;
	struct stream_metadata *md;	/* which regions are copied */
	sector_t target_len;
	sector_t region_size;		/* a power of two */
	unsigned long nr_regions;
	bool skip_zeroes;		/* zeros not written where the destination has them */
	/*
	 * Called when a job completes, with the copier's completion spinlock
	 * held, in any context (interrupt too): must not block, nor call the
	 * copier.
	 */
	void (*wake)(void *context);
	void *wake_context;
};

int stream_copier_module_init(void);
void stream_copier_module_exit(void);

/* Returns the copier, or an ERR_PTR. */
struct stream_copier *stream_copier_create(const struct stream_copier_setup *setup);
/*
 * Destroys the dm-io and kcopyd clients: blocks until every piece and
 * kcopyd job ended and its callback (stream_copier_job_done() and the
 * wake it calls) returned. No wake is called after it returns.
 */
void stream_copier_stop(struct stream_copier *c);
/* With no job left; stops first if that was not done. Frees @c. */
void stream_copier_destroy(struct stream_copier *c);

/* True when no job exists. Any context, no locks (see above). */
bool stream_copier_idle(struct stream_copier *c);
/* Regions owned by a copy job, for the status line. Any context, no locks. */
unsigned long stream_copier_copying(struct stream_copier *c);

/* The job that owns @region, or NULL. */
struct stream_job *stream_copier_find(struct stream_copier *c, unsigned long region);
/*
 * The first run of regions in [start, end) that are neither copied nor
 * owned by a job (a discard marks them copied). Returns its length (0 when
 * there is none) and its first region in *@region.
 */
unsigned long stream_copier_free_run(struct stream_copier *c, unsigned long start,
				     unsigned long end, unsigned long *region);

/*
 * Starts a copy of @region for a bio, in one piece, or, with @bio, claims
 * one region for a bio that overwrites it whole (the caller submits the
 * bio). Returns NULL when no memory is available without blocking: try
 * again later.
 */
struct stream_job *stream_copier_copy(struct stream_copier *c, unsigned long region);
struct stream_job *stream_copier_claim(struct stream_copier *c, unsigned long region,
				       struct bio *bio);

/* Any context: a job's copy or bio finished with @error. */
void stream_copier_job_done(struct stream_job *job, int error);
/* Moves the finished jobs to @list. */
void stream_copier_take_completed(struct stream_copier *c, struct list_head *list);
/*
 * A copy job's piece ended (job->error tells how). Returns true when the
 * job is over: copied whole, or failed. Otherwise the job is now on the
 * pending list.
 */
bool stream_copier_piece_done(struct stream_copier *c, struct stream_job *job);
/* Forgets a finished job: its regions become free for new jobs. */
void stream_copier_release(struct stream_copier *c, struct stream_job *job);

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
 * Background copies. Before each round, stream_copier_set_limits() gives
 * the user's settings: @rate KiB/s (0 = unlimited) for the token bucket,
 * at most @max_inflight regions in flight, and @one_piece when the users
 * are busy and no rate paces the copying: one piece in flight at a time.
 * From them the copier takes its own bounds: pieces and merged runs of at
 * most 1 MiB, about 20 ms of the measured throughput, and a quarter second
 * of the rate when limited; in flight at most 16 MiB, one second of the
 * rate and the adaptive window.
 */
void stream_copier_set_limits(struct stream_copier *c, unsigned int rate,
			      unsigned int max_inflight, bool one_piece);

/*
 * copy_on_read: a read of uncopied @region wants it copied ahead of the
 * cursor. Any context, never blocks. Returns true when the region was
 * not wanted yet: the caller wakes its worker.
 */
bool stream_copier_want(struct stream_copier *c, unsigned long region);

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
 * copied nor owned by a job: first from a region a read wanted
 * (stream_copier_want(); the job is hot), then, unless @hot_only, from the
 * cursor on, merging neighbours within the limits (regions below a split
 * failed run one by one). With @hot_only and nothing wanted: END. While
 * a background copy waits to be tried again, none starts (FULL): an origin
 * that fails costs a few regions, not every one.
 */
enum stream_start stream_copier_start(struct stream_copier *c, bool hot_only,
				      unsigned long *wait);
/* No background job: none in flight, between pieces or waiting to retry. */
bool stream_copier_background_idle(struct stream_copier *c);
/* Moves the cursor back to region 0, for a new pass. */
void stream_copier_rewind(struct stream_copier *c);

#endif /* DM_STREAM_COPIER_H */
