/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-stream table, message and status interface: the target version, the
 * optional arguments with their defaults and limits, and the order of the
 * status fields. The kernel target and dmstream(8) both include this file
 * (as they do stream-format.h for the on-disk format), so it holds plain
 * constants only. The admin guide and the man page state these values;
 * scripts/check-interface-docs.py (make lint, and test_docs_01 in make
 * check) fails when they state anything else.
 */
#ifndef DM_STREAM_INTERFACE_H
#define DM_STREAM_INTERFACE_H

#define STREAM_TARGET_NAME		"stream"
/* The major changes when a table, message or status line changes meaning. */
#define STREAM_TARGET_VERSION_MAJOR	2
#define STREAM_TARGET_VERSION_MINOR	1
#define STREAM_TARGET_VERSION_PATCH	0

/*
 * stream <metadata dev> <destination dev> <origin dev> <region size>
 *        [<#opt args> <opt arg>*]
 *
 * The region size is in sectors, a power of two from
 * STREAM_MIN_REGION_SECTORS to STREAM_MAX_REGION_SECTORS (stream-format.h:
 * the metadata records it). dmstream(8) uses the default below.
 */
#define STREAM_DEFAULT_REGION_SECTORS	128

/* Optional arguments; rate and max_inflight take a number each. */
#define STREAM_OPT_PAUSED		"paused"
#define STREAM_OPT_RATE			"rate"
#define STREAM_OPT_MAX_INFLIGHT		"max_inflight"
#define STREAM_OPT_NO_DISCARD_PASSDOWN	"no_discard_passdown"
/*
 * mirror: every write, flush, FUA and discard also goes to the origin
 * (opened read-write), and completes when both legs have, so that the
 * origin stays a complete copy of the device (stream-format.h,
 * STREAM_SB_FLAG_ORIGIN_STALE). Refused on a stream whose origin is stale.
 */
#define STREAM_OPT_MIRROR		"mirror"
/*
 * Load-aware background rate, in the spirit of md's sync_speed_min/max:
 * while users are busy (I/O through the device in the last
 * STREAM_BUSY_MS, or a copy a write waits for), background copying runs
 * at min_rate KiB/s (0: unpaced, but one piece in flight at a time); while
 * they are idle, at up to max_rate KiB/s (0: unlimited). "rate" caps both
 * at all times. Each takes a number; min_rate above max_rate or rate is
 * capped by them.
 */
#define STREAM_OPT_MIN_RATE		"min_rate"
#define STREAM_OPT_MAX_RATE		"max_rate"
#define STREAM_BUSY_MS			500
/*
 * copy_on_read: a read of an uncopied region is served from the origin and
 * the region is queued for copying ahead of the cursor (also while
 * paused), so that the data users read moves first.
 */
#define STREAM_OPT_COPY_ON_READ		"copy_on_read"
/*
 * skip_zeroes: the destination reads zeros where it was never written (a
 * new thin volume, a discarded device): background copies skip all-zero
 * pieces of the origin instead of writing them. Without it, an all-zero
 * piece is written as REQ_OP_WRITE_ZEROES when the destination supports it
 * (so a thin destination stays thin), as zeros otherwise.
 */
#define STREAM_OPT_SKIP_ZEROES		"skip_zeroes"
#define STREAM_MAX_OPT_ARGS		13

/* rate <KiB/s>, also a message: 0 means no limit. */
#define STREAM_DEFAULT_RATE_KIB		0
#define STREAM_MAX_RATE_KIB		4294967295U
/* max_inflight <regions>, also a message: background regions in flight. */
#define STREAM_DEFAULT_MAX_INFLIGHT	256
#define STREAM_MIN_MAX_INFLIGHT		1
#define STREAM_MAX_MAX_INFLIGHT		1024

/* Messages (dmsetup message <dev> 0 <message>). */
#define STREAM_MSG_PAUSE		"pause"
#define STREAM_MSG_CONTINUE		"continue"
#define STREAM_MSG_RATE			STREAM_OPT_RATE
#define STREAM_MSG_MAX_INFLIGHT		STREAM_OPT_MAX_INFLIGHT
#define STREAM_MSG_MIN_RATE		STREAM_OPT_MIN_RATE
#define STREAM_MSG_MAX_RATE		STREAM_OPT_MAX_RATE
/* "copy_on_read on" or "copy_on_read off". */
#define STREAM_MSG_COPY_ON_READ		STREAM_OPT_COPY_ON_READ
#define STREAM_MSG_ON			"on"
#define STREAM_MSG_OFF			"off"
/* "mirror off": stop mirroring for good (the origin becomes stale). */
#define STREAM_MSG_MIRROR		STREAM_OPT_MIRROR
#define STREAM_MSG_MIRROR_OFF		STREAM_MSG_OFF

/*
 * INFO status: "Fail" alone when the target has failed, otherwise these
 * words in this order, separated by single spaces, then the optional
 * arguments in force as in the table line.
 */
enum stream_status_field {
	STREAM_STATUS_MD_BLOCK_SECTORS,	/* metadata block size, sectors */
	STREAM_STATUS_MD_BLOCKS,	/* <used>/<total> metadata blocks */
	STREAM_STATUS_REGION_SIZE,	/* sectors */
	STREAM_STATUS_REGIONS,		/* <copied>/<total> regions */
	STREAM_STATUS_COPYING,		/* regions with a copy in flight */
	STREAM_STATUS_STATE,		/* STREAM_STATE_* */
	STREAM_STATUS_MODE,		/* STREAM_MODE_* */
	STREAM_STATUS_COPY_ERRORS,	/* regions left uncopied after retries */
	STREAM_STATUS_MIRROR,		/* STREAM_MIRROR_* */
	STREAM_STATUS_NR_OPT_ARGS,	/* <#opt args>, then the opt args */
	STREAM_STATUS_NR_FIELDS
};

#define STREAM_STATUS_FAILED		"Fail"
#define STREAM_STATE_STREAMING		"streaming"
#define STREAM_STATE_PAUSED		"paused"
/*
 * A background copy failed every retry (an origin gone, say): background
 * copying stopped, with a dm event; "continue" starts again from region 0.
 */
#define STREAM_STATE_STALLED		"stalled"
#define STREAM_STATE_COMPLETE		"complete"
#define STREAM_MODE_NAME_RW		"rw"
#define STREAM_MODE_NAME_RO		"ro"
#define STREAM_MODE_NAME_FAIL		"fail"
/* Writes reach the origin too: it holds every acknowledged write. */
#define STREAM_MIRROR_ON		"mirror"
/* Writes go to the destination only (never mirrored, or turned off). */
#define STREAM_MIRROR_OFF		"one-way"
/* Mirroring stopped because an origin-leg write failed. */
#define STREAM_MIRROR_DEGRADED		"degraded"

#endif /* DM_STREAM_INTERFACE_H */
