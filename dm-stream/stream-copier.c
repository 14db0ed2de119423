// SPDX-License-Identifier: GPL-2.0
/*
 * dm-stream copier: see stream-copier.h.
 */
#include <linux/bitmap.h>
#include <linux/device-mapper.h>
#include <linux/dm-io.h>
#include <linux/dm-kcopyd.h>
#include <linux/jiffies.h>
#include <linux/log2.h>
#include <linux/mempool.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "stream-copier.h"
#include "stream-format.h"
#include "stream-metadata.h"

#define DM_MSG_PREFIX "stream copier"

/* Jobs kept in reserve so that copies make progress under memory pressure. */
#define MIN_JOBS		64
/* A failed copy is tried this many times in all, with doubling delays. */
#define MAX_COPY_TRIES		4
#define RETRY_DELAY		(HZ / 10)
/*
 * Neighbouring regions merged into one kcopyd job, and the pieces larger
 * regions are copied in: up to 1 MiB.
 */
#define MERGE_SECTORS		2048
/* Background copying in flight, whatever the region size: 16 MiB. */
#define MAX_INFLIGHT_SECTORS	32768
/* The token bucket holds 1 / BUCKET_PART second of copying at the rate. */
#define BUCKET_PART		4

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
	unsigned long nr_jobs;		/* read locklessly by stream_copier_idle() */
	unsigned long background_regions;	/* in flight */
	s64 tokens;			/* sectors * HZ */
	unsigned long last_refill;

	/* Read locklessly by stream_copier_copying(). */
	unsigned long copying_regions;

	spinlock_t lock;		/* protects completed */
	struct list_head completed;

	mempool_t job_pool;
};

static struct kmem_cache *_job_cache;

static sector_t region_to_sector(struct stream_copier *c, unsigned long region)
{
	return (sector_t)region << c->region_shift;
}

/* The sectors of [region, region + nr), the last region clipped to the target. */
static sector_t run_sectors(struct stream_copier *c, unsigned long region, unsigned long nr)
{
	sector_t start = region_to_sector(c, region);

	return min_t(sector_t, region_to_sector(c, region + nr), c->target_len) - start;
}

/*---------------------------------------------------------------------------*/
/* The tree of jobs, keyed by first region; jobs never overlap. */
static void jobs_insert(struct stream_copier *c, struct stream_job *job)
{
	struct rb_node **p = &c->jobs.rb_node, *parent = NULL;

	while (*p) {
		struct stream_job *j = rb_entry(*p, struct stream_job, node);

		parent = *p;
		p = job->region < j->region ? &(*p)->rb_left : &(*p)->rb_right;
	}
	rb_link_node(&job->node, parent, p);
	rb_insert_color(&job->node, &c->jobs);
}

struct stream_job *stream_copier_find(struct stream_copier *c, unsigned long region)
{
	struct rb_node *n = c->jobs.rb_node;

	if (!test_bit(region, c->busy))
		return NULL;

	while (n) {
		struct stream_job *j = rb_entry(n, struct stream_job, node);

		if (region < j->region)
			n = n->rb_left;
		else if (region >= j->region + j->nr)
			n = n->rb_right;
		else
			return j;
	}
	return NULL;
}

/*---------------------------------------------------------------------------*/
/* Jobs */
static struct stream_job *job_alloc(struct stream_copier *c, unsigned long region,
				    unsigned long nr)
{
	struct stream_job *job;

	/* Never wait: the worker that would free a job may be the caller. */
	job = mempool_alloc(&c->job_pool, GFP_NOWAIT);
	if (!job)
		return NULL;
	memset(job, 0, sizeof(*job));
	job->copier = c;
	job->region = region;
	job->nr = nr;
	bio_list_init(&job->waiters);
	INIT_LIST_HEAD(&job->list);

	bitmap_set(c->busy, region, nr);
	jobs_insert(c, job);
	/* Pairs with READ_ONCE() in stream_copier_idle(). */
	WRITE_ONCE(c->nr_jobs, c->nr_jobs + 1);
	return job;
}

void stream_copier_job_done(struct stream_job *job, int error)
{
	struct stream_copier *c = job->copier;
	unsigned long flags;

	job->error = error;
	spin_lock_irqsave(&c->lock, flags);
	list_add_tail(&job->list, &c->completed);
	/*
	 * Under the lock: once it is dropped, the worker may end the job, a
	 * suspend complete and the destructor free this copier and the
	 * target, whose wake context this is.
	 */
	c->wake(c->wake_context);
	spin_unlock_irqrestore(&c->lock, flags);
}

static void copy_done(int read_err, unsigned long write_err, void *context)
{
	stream_copier_job_done(context, (read_err || write_err) ? -EIO : 0);
}

/* The size of a job's next piece. */
static sector_t next_piece(struct stream_copier *c, struct stream_job *job)
{
	sector_t left = run_sectors(c, job->region, job->nr) - job->done;

	if (!job->background)
		return left;
	return min(left, max(c->piece_sectors, c->min_piece));
}

static void issue_copy(struct stream_copier *c, struct stream_job *job)
{
	struct dm_io_region from, to;

	job->piece = next_piece(c, job);
	from.bdev = c->origin;
	from.sector = region_to_sector(c, job->region) + job->done;
	from.count = job->piece;
	to = from;
	to.bdev = c->dest;

	if (job->background)
		c->inflight_sectors += job->piece;
	job->tries++;
	dm_kcopyd_copy(c->kc, &from, 1, &to, 0, copy_done, job);
}

static struct stream_job *copy_run(struct stream_copier *c, unsigned long region,
				   unsigned long nr, bool background)
{
	struct stream_job *job = job_alloc(c, region, nr);

	if (!job)
		return NULL;
	job->background = background;
	if (background)
		c->background_regions += nr;
	WRITE_ONCE(c->copying_regions, c->copying_regions + nr);
	issue_copy(c, job);
	return job;
}

struct stream_job *stream_copier_copy(struct stream_copier *c, unsigned long region)
{
	return copy_run(c, region, 1, false);
}

struct stream_job *stream_copier_claim(struct stream_copier *c, unsigned long region,
				       struct bio *bio)
{
	struct stream_job *job = job_alloc(c, region, 1);

	if (!job)
		return NULL;
	job->overwrite = true;
	job->bio = bio;
	return job;
}

enum stream_copy_failure stream_copier_failed(struct stream_copier *c, struct stream_job *job,
					      bool may_copy)
{
	/*
	 * One bad sector must not cost a whole merged run: copy its regions
	 * again one by one, so only the bad ones are retried and given up.
	 */
	if (job->nr > 1 && may_copy) {
		c->cursor = min(c->cursor, job->region);
		c->no_merge_end = max(c->no_merge_end, job->region + job->nr);
		return STREAM_COPY_SPLIT;
	}

	if (job->tries < MAX_COPY_TRIES && may_copy) {
		job->retry_at = jiffies + (RETRY_DELAY << (job->tries - 1));
		list_add_tail(&job->list, &c->retry);
		return STREAM_COPY_RETRY;
	}
	return STREAM_COPY_GIVE_UP;
}

void stream_copier_take_retries(struct stream_copier *c, struct list_head *list)
{
	list_splice_tail_init(&c->retry, list);
}

bool stream_copier_retry(struct stream_copier *c, struct stream_job *job, unsigned long *due)
{
	if (!time_after_eq(jiffies, job->retry_at)) {
		*due = job->retry_at;
		list_add_tail(&job->list, &c->retry);
		return false;
	}
	list_del_init(&job->list);
	issue_copy(c, job);
	return true;
}

bool stream_copier_piece_done(struct stream_copier *c, struct stream_job *job)
{
	if (job->background)
		c->inflight_sectors -= job->piece;
	if (!job->error)
		job->done += job->piece;
	job->piece = 0;
	if (job->error || job->done == run_sectors(c, job->region, job->nr))
		return true;
	job->tries = 0;
	list_add_tail(&job->list, &c->pending);
	return false;
}

void stream_copier_continue(struct stream_copier *c, struct stream_job *job)
{
	list_del_init(&job->list);
	issue_copy(c, job);
}

void stream_copier_take_completed(struct stream_copier *c, struct list_head *list)
{
	spin_lock_irq(&c->lock);
	list_splice_tail_init(&c->completed, list);
	spin_unlock_irq(&c->lock);
}

void stream_copier_release(struct stream_copier *c, struct stream_job *job)
{
	rb_erase(&job->node, &c->jobs);
	bitmap_clear(c->busy, job->region, job->nr);
	if (job->background)
		c->background_regions -= job->nr;
	if (!job->overwrite)
		WRITE_ONCE(c->copying_regions, c->copying_regions - job->nr);
	WRITE_ONCE(c->nr_jobs, c->nr_jobs - 1);
	mempool_free(job, &c->job_pool);
}

/*---------------------------------------------------------------------------*/
/* Free runs: regions neither copied nor owned by a job */
/* The first free region in [r, end), or @end. */
static unsigned long next_free(struct stream_copier *c, unsigned long r, unsigned long end)
{
	for (;;) {
		r = stream_md_next_uncopied(c->md, r);
		if (r >= end)
			return end;
		if (!test_bit(r, c->busy))
			return r;
		r = find_next_zero_bit(c->busy, end, r);
	}
}

/* The end of the free run that starts at the free region @r, at most @end. */
static unsigned long free_run_end(struct stream_copier *c, unsigned long r, unsigned long end)
{
	end = stream_md_next_copied(c->md, r, end);
	return find_next_bit(c->busy, end, r);
}

unsigned long stream_copier_free_run(struct stream_copier *c, unsigned long start,
				     unsigned long end, unsigned long *region)
{
	unsigned long r = next_free(c, start, end);

	if (r >= end)
		return 0;
	*region = r;
	return free_run_end(c, r, end) - r;
}

/*---------------------------------------------------------------------------*/
/* The cursor */
/*
 * The next free run of at most @max regions, scanning from the cursor to
 * the end of the device. Returns its length (0 at the end) and its first
 * region in *@region.
 */
static unsigned long next_run(struct stream_copier *c, unsigned long max, unsigned long *region)
{
	unsigned long r = next_free(c, c->cursor, c->nr_regions), end;

	if (r >= c->nr_regions) {
		c->cursor = c->nr_regions;
		return 0;
	}

	/* Merge uncopied, unowned neighbours into one run. */
	if (r < c->no_merge_end)
		max = 1;
	end = free_run_end(c, r, min(r + max, c->nr_regions));

	*region = r;
	c->cursor = end;
	return end - r;
}

/*---------------------------------------------------------------------------*/
/* Limits: pieces, copying in flight and the rate */
/* A rate in KiB/s, in sectors per second. */
static u64 rate_sectors(unsigned int rate)
{
	return (u64)rate * 2;
}

/*
 * Pieces and merged runs of at most 1 MiB; under a rate limit, of at most
 * what the token bucket holds (a quarter second of the rate), which keeps
 * copying smooth.
 */
static sector_t piece_sectors(unsigned int rate)
{
	sector_t sectors = MERGE_SECTORS;

	if (rate)
		sectors = clamp_t(sector_t, rate_sectors(rate) / BUCKET_PART,
				  STREAM_MIN_REGION_SECTORS, sectors);
	return rounddown_pow_of_two(sectors);
}

/*
 * Background copies in flight, in sectors: max_inflight regions, but at
 * most 16 MiB and at most one second of copying at the rate limit,
 * whatever the region size. A suspend waits for these.
 */
static sector_t inflight_limit(struct stream_copier *c, unsigned int rate,
			       unsigned int max_inflight)
{
	sector_t limit = (sector_t)max_inflight << c->region_shift;

	limit = min_t(sector_t, limit, MAX_INFLIGHT_SECTORS);
	if (rate)
		limit = min_t(sector_t, limit, rate_sectors(rate));
	return limit;
}

void stream_copier_set_limits(struct stream_copier *c, unsigned int rate,
			      unsigned int max_inflight)
{
	c->rate = rate;
	c->max_inflight = max_inflight;
	c->inflight_limit = inflight_limit(c, rate, max_inflight);
	c->piece_sectors = piece_sectors(rate);
}

/* Room for @sectors more: always when nothing is in flight. */
static bool inflight_room(struct stream_copier *c, sector_t sectors)
{
	return !c->inflight_sectors || c->inflight_sectors + sectors <= c->inflight_limit;
}

/*
 * Rate limit: a token bucket holding at most a quarter second of copying
 * (and at least one run), in units of sectors * HZ so integer division
 * loses nothing. Returns 0 and takes tokens when @sectors may be copied
 * now, else the jiffies to wait.
 */
static unsigned long throttle(struct stream_copier *c, sector_t sectors)
{
	u64 per_sec = rate_sectors(c->rate);
	unsigned long now = jiffies;
	unsigned long elapsed;
	s64 cap;

	if (!c->rate)
		return 0;

	elapsed = min_t(unsigned long, now - c->last_refill, HZ);
	c->last_refill = now;
	cap = max_t(s64, per_sec * HZ / BUCKET_PART, (s64)sectors * HZ);
	c->tokens = min_t(s64, c->tokens + (s64)elapsed * per_sec, cap);

	if (c->tokens < 0)
		return max_t(unsigned long, 1, div64_u64(-c->tokens, per_sec) + 1);

	/* Go into debt: the next run waits until it is paid back. */
	c->tokens -= (s64)sectors * HZ;
	return 0;
}

/*---------------------------------------------------------------------------*/
/* Background copies */
void stream_copier_take_pending(struct stream_copier *c, struct list_head *list)
{
	list_splice_tail_init(&c->pending, list);
}

void stream_copier_hold(struct stream_copier *c, struct stream_job *job)
{
	list_add_tail(&job->list, &c->pending);
}

bool stream_copier_continue_limited(struct stream_copier *c, struct stream_job *job,
				    unsigned long *wait)
{
	*wait = 0;
	if (inflight_room(c, next_piece(c, job))) {
		*wait = throttle(c, next_piece(c, job));
		if (!*wait) {
			stream_copier_continue(c, job);
			return true;
		}
	}
	stream_copier_hold(c, job);
	return false;
}

bool stream_copier_background_idle(struct stream_copier *c)
{
	return !c->background_regions;
}

void stream_copier_rewind(struct stream_copier *c)
{
	c->cursor = 0;
}

enum stream_start stream_copier_start(struct stream_copier *c, unsigned long *wait)
{
	unsigned long merge = max_t(unsigned long, 1, c->piece_sectors >> c->region_shift);
	unsigned long region, nr;
	sector_t first;

	if (c->background_regions >= c->max_inflight)
		return STREAM_START_FULL;

	nr = next_run(c, min(merge, c->max_inflight - c->background_regions), &region);
	if (!nr)
		return STREAM_START_END;

	/* The first piece: the first region clipped to the target, the others whole. */
	first = min(c->piece_sectors, run_sectors(c, region, 1) +
		    ((sector_t)(nr - 1) << c->region_shift));
	if (!inflight_room(c, first)) {
		c->cursor = region;
		return STREAM_START_FULL;
	}
	*wait = throttle(c, first);
	if (*wait) {
		c->cursor = region;
		return STREAM_START_THROTTLED;
	}
	if (!copy_run(c, region, nr, true)) {
		c->cursor = region;
		return STREAM_START_NOMEM;
	}
	return STREAM_START_COPYING;
}

/*---------------------------------------------------------------------------*/
/* Set up and tear down */
bool stream_copier_idle(struct stream_copier *c)
{
	return !READ_ONCE(c->nr_jobs);
}

unsigned long stream_copier_copying(struct stream_copier *c)
{
	return READ_ONCE(c->copying_regions);
}

struct stream_copier *stream_copier_create(const struct stream_copier_setup *setup)
{
	struct stream_copier *c;
	int r;

	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return ERR_PTR(-ENOMEM);
	c->origin = setup->origin;
	c->dest = setup->dest;
	c->md = setup->md;
	c->target_len = setup->target_len;
	c->region_size = setup->region_size;
	c->region_shift = __ffs(setup->region_size);
	c->nr_regions = setup->nr_regions;
	c->min_piece = max3((sector_t)STREAM_MIN_REGION_SECTORS,
			    (sector_t)bdev_logical_block_size(c->origin) >> SECTOR_SHIFT,
			    (sector_t)bdev_logical_block_size(c->dest) >> SECTOR_SHIFT);
	c->wake = setup->wake;
	c->wake_context = setup->wake_context;

	/* One bit per region: up to 256 MiB, so not necessarily contiguous. */
	c->busy = kvcalloc(BITS_TO_LONGS(c->nr_regions), sizeof(unsigned long), GFP_KERNEL);
	if (!c->busy) {
		r = -ENOMEM;
		goto bad_busy;
	}

	r = mempool_init_slab_pool(&c->job_pool, MIN_JOBS, _job_cache);
	if (r)
		goto bad_pool;

	c->kc = dm_kcopyd_client_create(NULL);
	if (IS_ERR(c->kc)) {
		r = PTR_ERR(c->kc);
		goto bad_kcopyd;
	}

	c->jobs = RB_ROOT;
	INIT_LIST_HEAD(&c->retry);
	INIT_LIST_HEAD(&c->pending);
	INIT_LIST_HEAD(&c->completed);
	spin_lock_init(&c->lock);
	c->piece_sectors = MERGE_SECTORS;
	c->last_refill = jiffies;
	return c;

bad_kcopyd:
	mempool_exit(&c->job_pool);
bad_pool:
	kvfree(c->busy);
bad_busy:
	kfree(c);
	return ERR_PTR(r);
}

void stream_copier_stop(struct stream_copier *c)
{
	if (c->kc)
		dm_kcopyd_client_destroy(c->kc);
	c->kc = NULL;
}

void stream_copier_destroy(struct stream_copier *c)
{
	WARN_ON(c->nr_jobs);
	stream_copier_stop(c);
	mempool_exit(&c->job_pool);
	kvfree(c->busy);
	kfree(c);
}

int __init stream_copier_module_init(void)
{
	_job_cache = KMEM_CACHE(stream_job, 0);
	return _job_cache ? 0 : -ENOMEM;
}

void stream_copier_module_exit(void)
{
	kmem_cache_destroy(_job_cache);
}
