/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-stream: the kernel API differences between the kernels it builds for
 * (Debian's 6.1 and 6.12 are built and tested). This is the only file
 * that tests LINUX_VERSION_CODE: the rest of the module calls the
 * wrappers below, which are the plain kernel calls on either side.
 */
#ifndef DM_STREAM_COMPAT_H
#define DM_STREAM_COMPAT_H

#include <linux/blkdev.h>
#include <linux/version.h>

/*
 * Open modes for dm_get_device(): an fmode_t up to 6.4, a blk_mode_t
 * (BLK_OPEN_*) since 6.5. The bits are the same; the types differ for
 * sparse.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
#define STREAM_OPEN_READ	BLK_OPEN_READ
#define STREAM_OPEN_RW		(BLK_OPEN_READ | BLK_OPEN_WRITE)
#else
#define STREAM_OPEN_READ	FMODE_READ
#define STREAM_OPEN_RW		(FMODE_READ | FMODE_WRITE)
#endif

/*
 * The minimum and optimal I/O sizes in a target's io_hints. 6.11 removed
 * blk_limits_io_min() and blk_limits_io_opt(): the limits are set
 * directly and blk_validate_limits() raises io_min to the physical block
 * size, as blk_limits_io_min() did.
 */
static inline void stream_limits_io_min_opt(struct queue_limits *limits, unsigned int min,
					    unsigned int opt)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
	limits->io_min = min;
	limits->io_opt = opt;
#else
	blk_limits_io_min(limits, min);
	blk_limits_io_opt(limits, opt);
#endif
}

#endif /* DM_STREAM_COMPAT_H */
