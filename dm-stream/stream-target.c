// SPDX-License-Identifier: GPL-2.0
/*
 * dm-stream: a copy-on-write destination over a read-only origin, streamed
 * in the background. (Skeleton: constructor argument count only.)
 */
#include <linux/device-mapper.h>
#include <linux/module.h>

#define DM_MSG_PREFIX "stream"

static int stream_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	if (argc < 4) {
		ti->error = "Invalid argument count: expected <metadata dev> <destination dev> <origin dev> <region size> [<#opt args> <opt arg>*]";
		return -EINVAL;
	}
	ti->error = "Not implemented yet";
	return -EINVAL;
}

static void stream_dtr(struct dm_target *ti)
{
}

static int stream_map(struct dm_target *ti, struct bio *bio)
{
	return DM_MAPIO_KILL;
}

static struct target_type stream_target = {
	.name = "stream",
	.version = {1, 0, 0},
	.module = THIS_MODULE,
	.ctr = stream_ctr,
	.dtr = stream_dtr,
	.map = stream_map,
};

static int __init dm_stream_init(void)
{
	return dm_register_target(&stream_target);
}

static void __exit dm_stream_exit(void)
{
	dm_unregister_target(&stream_target);
}

module_init(dm_stream_init);
module_exit(dm_stream_exit);

MODULE_DESCRIPTION(DM_NAME " target streaming an origin into a copy-on-write destination");
MODULE_LICENSE("GPL");
