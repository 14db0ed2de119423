// SPDX-License-Identifier: GPL-2.0
/*
 * dm-stream copier: see stream-copier.h.
 */
#include <linux/bitmap.h>
#include <linux/device-mapper.h>
#include <linux/dm-io.h>
#include <linux/dm-kcopyd.h>
#include <linux/highmem.h>
#include <linux/ioprio.h>
#include <linux/jiffies.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/mempool.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/wait_bit.h>
#include <linux/workqueue.h>

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
/*
 * Pacing (see "Pacing" below): background pieces of about PIECE_MS of the
 * measured throughput, at least MIN_PACE_SECTORS (64 KiB); the in-flight
 * window shrinks when a piece takes more than twice the shortest piece
 * latency seen in the last two epochs of EPOCH_MS, plus QUEUE_SLACK_NS.
 */
#define PIECE_MS		20
#define MIN_PACE_SECTORS	128
#define EPOCH_MS		1000
#define QUEUE_TARGET_NS		(30 * NSEC_PER_MSEC)
/* Delivery rate samples cover at least this long. */
#define BW_SAMPLE_NS		(100 * NSEC_PER_MSEC)
/* Pages of one background piece at most, and those kept in reserve. */
#define PIECE_PAGES		(MERGE_SECTORS >> (PAGE_SHIFT - SECTOR_SHIFT))
#define RESERVE_PAGES		(MIN_PACE_SECTORS >> (PAGE_SHIFT - SECTOR_SHIFT))
/* Zeros are looked for in chunks of 32 KiB at least: at most 34 in a piece. */
#define MIN_CHUNK_SECTORS	64

struct stream_copier {
	struct dm_kcopyd_client *kc;	/* copies bios wait for: never behind background */
	struct dm_io_client *io;	/* background pieces: read, look, write */
	struct workqueue_struct *io_wq;	/* looks at pieces read and writes them */
	struct block_device *origin;
	struct block_device *dest;
	struct stream_metadata *md;
	sector_t target_len;
	sector_t region_size;
	unsigned int region_shift;
	unsigned long nr_regions;
	sector_t min_piece;		/* a multiple of the logical block sizes */
	sector_t chunk;			/* where zeros are looked for, see piece_work() */
	bool skip_zeroes;		/* zeros not written where the destination has them */
	bool no_write_zeroes;		/* the destination failed a WRITE_ZEROES */

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
	bool one_piece;			/* users busy: one background piece in flight */
	sector_t inflight_limit;	/* background sectors */
	unsigned long fg_copies;	/* copies bios wait for, in flight */
	unsigned long cursor;
	unsigned long no_merge_end;	/* regions below: copied one by one */
	unsigned long nr_jobs;		/* read locklessly by stream_copier_idle() */
	unsigned long background_regions;	/* in flight */
	unsigned long failing;		/* background jobs to be tried again */
	s64 tokens;			/* sectors * HZ */
	unsigned long last_refill;

	/* Pacing, worker only. */
	sector_t window;		/* background sectors in flight, adaptive */
	sector_t pace_piece;		/* piece size from the measured throughput */
	u64 lat_min_cur, lat_min_prev;	/* ns, shortest piece latency per epoch */
	ktime_t epoch_start;
	ktime_t last_shrink;
	u64 bw;				/* sectors per second, 0 = not measured */
	sector_t delivered;		/* since bw_stamp */
	ktime_t bw_stamp;

	/*
	 * Regions a read of an uncopied region asked for (copy_on_read): set
	 * in any context, taken by the worker. hot_any says a bit may be set.
	 */
	unsigned long *hot;
	int hot_any;

	/* Read locklessly by stream_copier_copying(). */
	unsigned long copying_regions;

	spinlock_t lock;		/* protects completed */
	struct list_head completed;

	atomic_t io_inflight;		/* background reads and writes */

	mempool_t job_pool;
	mempool_t pl_pool;		/* page_list arrays of PIECE_PAGES */
	mempool_t page_pool;
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

static void job_free(struct stream_copier *c, struct stream_job *job)
{
	unsigned int i;

	if (job->pl) {
		for (i = 0; i < job->nr_pages; i++)
			mempool_free(job->pl[i].page, &c->page_pool);
		mempool_free(job->pl, &c->pl_pool);
	}
	rb_erase(&job->node, &c->jobs);
	bitmap_clear(c->busy, job->region, job->nr);
	WRITE_ONCE(c->nr_jobs, c->nr_jobs - 1);
	mempool_free(job, &c->job_pool);
}

/*
 * The buffer of a background job: pages for a piece of the current size,
 * or fewer (the pieces fit the buffer) but at least MIN_PACE_SECTORS when
 * memory is short. Never waits (see job_alloc()); the page pool keeps
 * that much in reserve.
 */
static bool buffer_alloc(struct stream_copier *c, struct stream_job *job)
{
	sector_t sectors = min(run_sectors(c, job->region, job->nr),
			       max(c->piece_sectors, c->min_piece));
	unsigned int i, n = DIV_ROUND_UP(to_bytes(sectors), PAGE_SIZE);
	unsigned int least = min_t(unsigned int, n, RESERVE_PAGES);
	struct page_list *pl;

	n = min_t(unsigned int, n, PIECE_PAGES);
	pl = mempool_alloc(&c->pl_pool, GFP_NOWAIT);
	if (!pl)
		return false;
	for (i = 0; i < n; i++) {
		pl[i].page = mempool_alloc(&c->page_pool, GFP_NOWAIT);
		if (!pl[i].page)
			break;
	}
	if (i < least) {
		while (i--)
			mempool_free(pl[i].page, &c->page_pool);
		mempool_free(pl, &c->pl_pool);
		return false;
	}
	n = i;
	for (i = 0; i < n; i++)
		pl[i].next = i + 1 < n ? &pl[i + 1] : NULL;
	job->pl = pl;
	job->nr_pages = n;
	return true;
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

static void piece_work(struct work_struct *ws);

/* A background piece ended (written, skipped or failed): any context. */
static void piece_done(struct stream_job *job, int error)
{
	struct stream_copier *c = job->copier;

	/* The job may be freed once this returns; the copier lives on until stop. */
	stream_copier_job_done(job, error);
	/*
	 * Fully ordered: stream_copier_stop() sees the count drop only after
	 * the callback above returned. wake_up_var() does not touch *c.
	 */
	if (atomic_dec_and_test(&c->io_inflight))
		wake_up_var(&c->io_inflight);
}

/*
 * One I/O of a background piece ended: any context. When the last I/O of
 * a read stage ends well, piece_work() looks at the data; when the last
 * write ends, or any I/O failed, the piece is done.
 */
static void piece_io_done(unsigned long error, void *context)
{
	struct stream_job *job = context;

	if (error)
		WRITE_ONCE(job->io_failed, true);
	if (!atomic_dec_and_test(&job->ios))
		return;
	/*
	 * Every I/O's io_failed store is seen: atomic_dec_and_test() is
	 * ordered. A failed read of the destination only means zeros are
	 * written there (piece_work()).
	 */
	if (job->io_failed && job->stage != STREAM_PIECE_READ_DEST)
		piece_done(job, -EIO);
	else if (job->stage == STREAM_PIECE_WRITE)
		piece_done(job, 0);
	else
		queue_work(job->copier->io_wq, &job->work);
}

/* A WRITE_ZEROES of a background piece ended. */
static void piece_zeroes_done(unsigned long error, void *context)
{
	struct stream_job *job = context;

	if (error)
		WRITE_ONCE(job->zeroes_failed, true);
	piece_io_done(error, context);
}

/* The size of a job's next piece: a background piece fits its buffer. */
static sector_t next_piece(struct stream_copier *c, struct stream_job *job)
{
	sector_t left = run_sectors(c, job->region, job->nr) - job->done;

	if (!job->background)
		return left;
	return min3(left, max(c->piece_sectors, c->min_piece),
		    (sector_t)job->nr_pages << (PAGE_SHIFT - SECTOR_SHIFT));
}

/*
 * One I/O of a background piece: @count sectors from @offset into the
 * piece, read from the origin or the destination into the piece's buffer,
 * or written from it to the destination. Counted in job->ios.
 */
static void piece_io(struct stream_copier *c, struct stream_job *job, blk_opf_t op,
		     struct block_device *bdev, sector_t offset, sector_t count)
{
	size_t byte = to_bytes(offset);
	struct dm_io_region where = {
		.bdev = bdev,
		.sector = region_to_sector(c, job->region) + job->done + offset,
		.count = count,
	};
	struct dm_io_request req = {
		.bi_opf = op,
		.mem.type = DM_IO_PAGE_LIST,
		.mem.offset = offset_in_page(byte),
		.mem.ptr.pl = &job->pl[byte >> PAGE_SHIFT],
		.notify.fn = op == REQ_OP_WRITE_ZEROES ? piece_zeroes_done : piece_io_done,
		.notify.context = job,
		.client = c->io,
	};

	atomic_inc(&job->ios);
	/* Asynchronous, one region: errors reach the notify function. */
	dm_io(&req, 1, &where, NULL, IOPRIO_DEFAULT);
}

static void issue_copy(struct stream_copier *c, struct stream_job *job)
{
	struct dm_io_region from, to;

	job->piece = next_piece(c, job);
	job->tries++;
	if (job->background) {
		/* A delivery rate sample starts when background copying does. */
		if (!c->inflight_sectors) {
			c->bw_stamp = ktime_get();
			c->delivered = 0;
		}
		c->inflight_sectors += job->piece;
		job->stage = STREAM_PIECE_READ;
		job->io_failed = false;
		job->zeroes_failed = false;
		job->issued = ktime_get();
		atomic_inc(&c->io_inflight);
		atomic_set(&job->ios, 1);
		piece_io(c, job, REQ_OP_READ, c->origin, 0, job->piece);
		piece_io_done(0, job);	/* the bias */
		return;
	}

	from.bdev = c->origin;
	from.sector = region_to_sector(c, job->region) + job->done;
	from.count = job->piece;
	to = from;
	to.bdev = c->dest;
	dm_kcopyd_copy(c->kc, &from, 1, &to, 0, copy_done, job);
}

static struct stream_job *copy_run(struct stream_copier *c, unsigned long region,
				   unsigned long nr, bool background)
{
	struct stream_job *job = job_alloc(c, region, nr);

	if (!job)
		return NULL;
	job->background = background;
	if (background && !buffer_alloc(c, job)) {
		job_free(c, job);
		return NULL;
	}
	if (background)
		INIT_WORK(&job->work, piece_work);
	if (background)
		c->background_regions += nr;
	else
		c->fg_copies++;
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
		if (job->background && !job->failing) {
			job->failing = true;
			c->failing++;
		}
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

/*
 * Zeros are looked for in chunks of a background piece: whole chunks are
 * aligned to the device (sector multiples of c->chunk), the piece's first
 * and last may be parts of one. A piece holds at most MERGE_SECTORS /
 * MIN_CHUNK_SECTORS + 2 chunks. They are walked as
 *	for (i = 0, off = 0; off < job->piece; i++, off += len)
 *		len = chunk_len(c, job, off); ...
 */

/* The sectors from @off in the piece to the end of its chunk. */
static sector_t chunk_len(struct stream_copier *c, struct stream_job *job, sector_t off)
{
	sector_t at = region_to_sector(c, job->region) + job->done + off;

	return min(c->chunk - (at & (c->chunk - 1)), job->piece - off);
}

/* The piece's whole chunks (bit i: chunk i): those skip_zeroes may leave alone. */
static unsigned long whole_chunks(struct stream_copier *c, struct stream_job *job)
{
	unsigned long whole = 0;
	sector_t off, len;
	unsigned int i;

	if (c->chunk > MERGE_SECTORS)
		return 0;
	for (i = 0, off = 0; off < job->piece; i++, off += len) {
		len = chunk_len(c, job, off);
		if (len == c->chunk)
			whole |= BIT(i);
	}
	return whole;
}

/* The bytes [@offset, @offset + @count) sectors of a piece's buffer: all zero? */
static bool chunk_is_zero(struct stream_job *job, sector_t offset, sector_t count)
{
	size_t byte = to_bytes(offset), left = to_bytes(count);
	bool zero = true;

	while (zero && left) {
		size_t in = offset_in_page(byte), n = min(left, PAGE_SIZE - in);
		void *p = kmap_local_page(job->pl[byte >> PAGE_SHIFT].page);

		zero = !memchr_inv(p + in, 0, n);
		kunmap_local(p);
		byte += n;
		left -= n;
	}
	return zero;
}

static void chunk_zero_out(struct stream_job *job, sector_t offset, sector_t count)
{
	size_t byte = to_bytes(offset), left = to_bytes(count);

	while (left) {
		size_t in = offset_in_page(byte), n = min(left, PAGE_SIZE - in);

		memzero_page(job->pl[byte >> PAGE_SHIFT].page, in, n);
		byte += n;
		left -= n;
	}
}

/* The chunks of a piece (bit i: chunk i) whose buffer bytes are all zero. */
static unsigned long zero_chunks(struct stream_copier *c, struct stream_job *job,
				 unsigned long among)
{
	unsigned long zeros = 0;
	sector_t off, len;
	unsigned int i;

	for (i = 0, off = 0; off < job->piece; i++, off += len) {
		len = chunk_len(c, job, off);
		if ((among & BIT(i)) && chunk_is_zero(job, off, len))
			zeros |= BIT(i);
	}
	return zeros;
}

/*
 * Issues one I/O per run of chunks of the piece that are in @mask (or
 * not, with @in false): @op on @bdev.
 */
static void chunk_runs_io(struct stream_copier *c, struct stream_job *job, unsigned long mask,
			  bool in, blk_opf_t op, struct block_device *bdev)
{
	sector_t off, len, start = 0;
	bool run = false;
	unsigned int i;

	for (i = 0, off = 0; off < job->piece; i++, off += len) {
		bool want = !!(mask & BIT(i)) == in;

		len = chunk_len(c, job, off);
		if (want && !run)
			start = off;
		else if (!want && run)
			piece_io(c, job, op, bdev, start, off - start);
		run = want;
	}
	if (run)
		piece_io(c, job, op, bdev, start, job->piece - start);
}

/*
 * The writes of a background piece: what the origin holds, except that
 * the chunks in @zeros (all zero) go as WRITE_ZEROES when the destination
 * takes them, and the chunks in @skip are not written at all.
 */
static void piece_write(struct stream_copier *c, struct stream_job *job, unsigned long zeros,
			unsigned long skip)
{
	job->stage = STREAM_PIECE_WRITE;
	atomic_set(&job->ios, 1);
	if (zeros && !READ_ONCE(c->no_write_zeroes) && bdev_write_zeroes_sectors(c->dest)) {
		chunk_runs_io(c, job, zeros, true, REQ_OP_WRITE_ZEROES, c->dest);
		skip |= zeros;
	}
	chunk_runs_io(c, job, skip, false, REQ_OP_WRITE, c->dest);
	piece_io_done(0, job);	/* the bias */
}

/*
 * A read stage of a background piece ended (the copier's io_wq, not the
 * worker). After the origin's read, the all-zero chunks are looked for;
 * with skip_zeroes, the destination is read over the whole ones (whole
 * allocation units of a thin destination, see stream_copier_create()),
 * and a chunk is left alone where the destination reads zeros too: so
 * nothing it held before (a write whose region's bit a crash lost, say)
 * can show through. Where that read fails, zeros are written. Touches the
 * job and the copier's constant fields only; no_write_zeroes is the
 * worker's, read once.
 */
static void piece_work(struct work_struct *ws)
{
	struct stream_job *job = container_of(ws, struct stream_job, work);
	struct stream_copier *c = job->copier;
	unsigned long maybe, skip = 0;
	sector_t off, len;
	unsigned int i;

	if (job->stage == STREAM_PIECE_READ) {
		job->zeros = zero_chunks(c, job, ~0UL);
		maybe = c->skip_zeroes ? job->zeros & whole_chunks(c, job) : 0;
		if (maybe) {
			job->stage = STREAM_PIECE_READ_DEST;
			atomic_set(&job->ios, 1);
			chunk_runs_io(c, job, maybe, true, REQ_OP_READ, c->dest);
			piece_io_done(0, job);	/* the bias */
			return;
		}
		piece_write(c, job, job->zeros, 0);
		return;
	}

	/* STREAM_PIECE_READ_DEST: those chunks hold the destination's data. */
	maybe = job->zeros & whole_chunks(c, job);
	if (!job->io_failed)
		skip = zero_chunks(c, job, maybe);
	job->io_failed = false;
	for (i = 0, off = 0; off < job->piece; i++, off += len) {
		len = chunk_len(c, job, off);
		if ((maybe & ~skip) & BIT(i))
			chunk_zero_out(job, off, len);
	}
	piece_write(c, job, job->zeros & ~skip, skip);
}

/*---------------------------------------------------------------------------*/
/*
 * Pacing: how much background copying is in flight, and in what pieces, so
 * that a queue never builds in front of the users' copies and I/O (a
 * delay-based window, as TCP Vegas). The window grows by a piece at each
 * piece that ends with no more than a quarter above the shortest latency
 * seen (in this epoch or the last one) while it limited the copying, and
 * shrinks by a quarter, at most once per shortest latency, when a piece
 * took more than twice that: a queue of about one shortest latency is left
 * at most. Pieces carry about PIECE_MS of the measured delivery rate, so on
 * a slow link they are small and a user's copy waits behind little.
 */
static void pace_new_epoch(struct stream_copier *c, ktime_t now, bool reset)
{
	c->lat_min_prev = reset ? U64_MAX : c->lat_min_cur;
	c->lat_min_cur = U64_MAX;
	c->epoch_start = now;
}

static sector_t pace_piece(struct stream_copier *c)
{
	u64 sectors = div_u64(c->bw * PIECE_MS, MSEC_PER_SEC);
	sector_t min = max_t(sector_t, MIN_PACE_SECTORS, c->min_piece);

	if (!c->bw || sectors <= min)
		return min;
	return rounddown_pow_of_two(min_t(u64, sectors, MERGE_SECTORS));
}

static void pace_sample(struct stream_copier *c, struct stream_job *job, bool window_full)
{
	ktime_t now = ktime_get();
	u64 lat = ktime_to_ns(ktime_sub(now, job->issued));
	s64 elapsed = ktime_to_ns(ktime_sub(now, c->bw_stamp));
	u64 lat_min, queue;
	sector_t piece;

	c->delivered += job->piece;
	if (elapsed >= BW_SAMPLE_NS) {
		u64 sample = div64_u64((u64)c->delivered * NSEC_PER_SEC, elapsed);

		c->bw = c->bw ? (c->bw + sample) / 2 : sample;
		c->delivered = 0;
		c->bw_stamp = now;
	}

	/* Latencies of pieces of another size do not compare. */
	piece = pace_piece(c);
	if (piece != c->pace_piece) {
		c->pace_piece = piece;
		pace_new_epoch(c, now, true);
	} else if (ktime_to_ns(ktime_sub(now, c->epoch_start)) >= EPOCH_MS * NSEC_PER_MSEC) {
		pace_new_epoch(c, now, false);
	}
	c->lat_min_cur = min(c->lat_min_cur, lat);
	lat_min = min(c->lat_min_cur, c->lat_min_prev);

	queue = max_t(u64, lat_min, QUEUE_TARGET_NS);
	if (lat > lat_min + queue) {
		if (ktime_to_ns(ktime_sub(now, c->last_shrink)) > lat_min) {
			c->window = max(c->window - c->window / 4, 2 * c->pace_piece);
			c->last_shrink = now;
		}
	} else if (window_full && lat <= lat_min + queue / 2) {
		c->window = min_t(sector_t, c->window + job->piece, MAX_INFLIGHT_SECTORS);
	}
}

bool stream_copier_piece_done(struct stream_copier *c, struct stream_job *job)
{
	bool window_full;

	if (job->background) {
		if (job->error && job->zeroes_failed && !c->no_write_zeroes) {
			DMWARN_LIMIT("destination failed WRITE_ZEROES: zeros are written from now on");
			/* Pairs with READ_ONCE() in piece_write(). */
			WRITE_ONCE(c->no_write_zeroes, true);
		}
		window_full = c->inflight_sectors + c->piece_sectors > c->window;
		c->inflight_sectors -= job->piece;
		if (!job->error)
			pace_sample(c, job, window_full);
	}
	if (!job->error) {
		job->done += job->piece;
		if (job->failing) {
			job->failing = false;
			c->failing--;
		}
	}
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
	if (job->failing)
		c->failing--;
	if (job->background)
		c->background_regions -= job->nr;
	else if (!job->overwrite)
		c->fg_copies--;
	if (!job->overwrite)
		WRITE_ONCE(c->copying_regions, c->copying_regions - job->nr);
	job_free(c, job);
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

/*
 * The next hot run (copy_on_read) of at most @max regions, from the lowest
 * hot region that is neither copied nor owned; 0 when there is none.
 */
static unsigned long next_hot_run(struct stream_copier *c, unsigned long max,
				  unsigned long *region)
{
	struct stream_job *job;
	unsigned long r;

	/*
	 * Pairs with the test_and_set_bit() and WRITE_ONCE() in
	 * stream_copier_want(): a bit set after this xchg() sets hot_any
	 * again, and its caller wakes the worker.
	 */
	if (!xchg(&c->hot_any, 0))
		return 0;
	for (r = find_first_bit(c->hot, c->nr_regions); r < c->nr_regions;
	     r = find_next_bit(c->hot, c->nr_regions, r + 1)) {
		clear_bit(r, c->hot);
		if (stream_md_is_copied(c->md, r))
			continue;
		if (test_bit(r, c->busy)) {
			/* Its copy goes on even while paused (see ->hot). */
			job = stream_copier_find(c, r);
			if (job && job->background)
				job->hot = true;
			continue;
		}
		/* More may be left: look again next time. */
		WRITE_ONCE(c->hot_any, 1);
		*region = r;
		return free_run_end(c, r, min(r + max, c->nr_regions)) - r;
	}
	return 0;
}

bool stream_copier_want(struct stream_copier *c, unsigned long region)
{
	if (test_bit(region, c->hot) || test_and_set_bit(region, c->hot))
		return false;
	/* Pairs with the xchg() in next_hot_run(). */
	WRITE_ONCE(c->hot_any, 1);
	return true;
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
			      unsigned int max_inflight, bool one_piece)
{
	c->rate = rate;
	c->max_inflight = max_inflight;
	c->one_piece = one_piece;
	c->inflight_limit = inflight_limit(c, rate, max_inflight);
	c->piece_sectors = min(piece_sectors(rate), c->pace_piece);
}

/*
 * Room for @sectors more: always when nothing is in flight; otherwise
 * within the limits and the window, and never while users are busy (and
 * unpaced) or a bio waits for a copy: then one piece at a time.
 */
static bool inflight_room(struct stream_copier *c, sector_t sectors)
{
	if (!c->inflight_sectors)
		return true;
	if (c->one_piece || c->fg_copies)
		return false;
	return c->inflight_sectors + sectors <= min(c->inflight_limit, c->window);
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

/* Puts a job taken with stream_copier_take_pending() back on the list. */
static void stream_copier_hold(struct stream_copier *c, struct stream_job *job)
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

enum stream_start stream_copier_start(struct stream_copier *c, bool hot_only,
				      unsigned long *wait)
{
	unsigned long merge = max_t(unsigned long, 1, c->piece_sectors >> c->region_shift);
	unsigned long region, nr, max;
	struct stream_job *job;
	enum stream_start ret;
	bool hot = true;
	sector_t first;

	/* Nothing new while a copy fails: its retries tell how the origin is. */
	if (c->background_regions >= c->max_inflight || c->failing)
		return STREAM_START_FULL;

	max = min(merge, c->max_inflight - c->background_regions);
	nr = next_hot_run(c, max, &region);
	if (!nr) {
		if (hot_only)
			return STREAM_START_END;
		hot = false;
		nr = next_run(c, max, &region);
		if (!nr)
			return STREAM_START_END;
	}

	/* The first piece: the first region clipped to the target, the others whole. */
	first = min(max(c->piece_sectors, c->min_piece), run_sectors(c, region, 1) +
		    ((sector_t)(nr - 1) << c->region_shift));
	if (!inflight_room(c, first)) {
		ret = STREAM_START_FULL;
		goto back;
	}
	*wait = throttle(c, first);
	if (*wait) {
		ret = STREAM_START_THROTTLED;
		goto back;
	}
	job = copy_run(c, region, nr, true);
	if (!job) {
		ret = STREAM_START_NOMEM;
		goto back;
	}
	job->hot = hot;
	return STREAM_START_COPYING;

back:
	if (hot) {
		set_bit(region, c->hot);
		WRITE_ONCE(c->hot_any, 1);
	} else {
		c->cursor = region;
	}
	return ret;
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
	unsigned int unit;
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
	c->skip_zeroes = setup->skip_zeroes;
	/*
	 * A chunk the destination may allocate on its own: a thin volume
	 * provisions whole blocks (its optimal I/O size and discard
	 * granularity) and, with skip_block_zeroing, leaves the rest of a
	 * block it provisions for a write as it was. A whole chunk that
	 * reads as zeros is a whole unprovisioned block, which no write
	 * elsewhere changes.
	 */
	unit = max_t(unsigned int, bdev_io_opt(c->dest), bdev_discard_granularity(c->dest));
	c->chunk = roundup_pow_of_two(max3(c->min_piece, (sector_t)MIN_CHUNK_SECTORS,
					   (sector_t)unit >> SECTOR_SHIFT));
	c->wake = setup->wake;
	c->wake_context = setup->wake_context;

	/* One bit per region: up to 256 MiB, so not necessarily contiguous. */
	c->busy = kvcalloc(BITS_TO_LONGS(c->nr_regions), sizeof(unsigned long), GFP_KERNEL);
	c->hot = kvcalloc(BITS_TO_LONGS(c->nr_regions), sizeof(unsigned long), GFP_KERNEL);
	if (!c->busy || !c->hot) {
		r = -ENOMEM;
		goto bad_busy;
	}

	r = mempool_init_slab_pool(&c->job_pool, MIN_JOBS, _job_cache);
	if (r)
		goto bad_busy;
	r = mempool_init_kmalloc_pool(&c->pl_pool, 1, PIECE_PAGES * sizeof(struct page_list));
	if (r)
		goto bad_pl_pool;
	r = mempool_init_page_pool(&c->page_pool, RESERVE_PAGES, 0);
	if (r)
		goto bad_page_pool;

	c->io_wq = alloc_workqueue("dm-stream-io", WQ_MEM_RECLAIM, 0);
	if (!c->io_wq) {
		r = -ENOMEM;
		goto bad_io_wq;
	}
	c->io = dm_io_client_create();
	if (IS_ERR(c->io)) {
		r = PTR_ERR(c->io);
		goto bad_io;
	}
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
	c->last_refill = jiffies;
	c->pace_piece = pace_piece(c);
	c->piece_sectors = c->pace_piece;
	c->window = 2 * c->pace_piece;
	pace_new_epoch(c, ktime_get(), true);
	return c;

bad_kcopyd:
	dm_io_client_destroy(c->io);
bad_io:
	destroy_workqueue(c->io_wq);
bad_io_wq:
	mempool_exit(&c->page_pool);
bad_page_pool:
	mempool_exit(&c->pl_pool);
bad_pl_pool:
	mempool_exit(&c->job_pool);
bad_busy:
	kvfree(c->hot);
	kvfree(c->busy);
	kfree(c);
	return ERR_PTR(r);
}

void stream_copier_stop(struct stream_copier *c)
{
	/*
	 * dm_kcopyd_client_destroy() waits for the client's jobs and their
	 * callbacks; dm-io keeps no count, so first wait for the background
	 * pieces (read, looked at, written or skipped): every piece ends in
	 * piece_done(), whose last touch of the copier is the count.
	 */
	if (c->io) {
		wait_var_event(&c->io_inflight, !atomic_read(&c->io_inflight));
		dm_io_client_destroy(c->io);
	}
	c->io = NULL;
	if (c->kc)
		dm_kcopyd_client_destroy(c->kc);
	c->kc = NULL;
}

void stream_copier_destroy(struct stream_copier *c)
{
	WARN_ON(c->nr_jobs);
	stream_copier_stop(c);
	destroy_workqueue(c->io_wq);
	mempool_exit(&c->page_pool);
	mempool_exit(&c->pl_pool);
	mempool_exit(&c->job_pool);
	kvfree(c->hot);
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
