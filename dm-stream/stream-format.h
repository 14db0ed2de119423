/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-stream on-disk metadata format.
 *
 * This header holds only the on-disk layout: it includes nothing that is
 * kernel-only, so the userspace tool (tools/) compiles it as is.
 *
 * Layout, in 4096-byte metadata blocks:
 *
 *   block 0                 superblock
 *   block 1 + 2 * i + s     bitmap block i, slot s (s = 0 or 1)
 *
 * Every bitmap block exists twice. A commit never overwrites the slot that
 * the last committed superblock refers to: it writes the other slot, stamped
 * with the new transaction id, flushes, and only then writes the superblock
 * that carries that id. On load, the valid slot (checksum, magic, block
 * number) with the highest transaction id not above the superblock's is
 * used, so a torn or early bitmap write is never trusted.
 *
 * The superblock's fields all live in its first 512 bytes, so its write is
 * atomic on devices with 512-byte or larger sectors; its checksum catches a
 * torn write anyway.
 *
 * Checksums are CRC32C with seed 0xffffffff over the block from byte 4 (the
 * csum field excluded) to its end, without the final inversion, xor'ed with
 * a per-block-type salt. This is what the kernel's crc32c(~0, p, len)
 * returns; a standard CRC32C implementation returns its complement.
 *
 * All numbers are little endian.
 */
#ifndef DM_STREAM_FORMAT_H
#define DM_STREAM_FORMAT_H

#include <linux/types.h>

#ifndef __KERNEL__
#define __packed __attribute__((packed))
#endif

#define STREAM_MAGIC			0x4d525453544d44ULL	/* "DMTSTRM" */
#define STREAM_BITMAP_MAGIC		0x504d4254U		/* "TBMP" */
#define STREAM_VERSION			1

#define STREAM_BLOCK_SIZE		4096
#define STREAM_BLOCK_SECTORS		(STREAM_BLOCK_SIZE >> 9)

#define STREAM_SB_CSUM_XOR		0x5b3c9e17U
#define STREAM_BITMAP_CSUM_XOR		0x2d81f4a6U

#define STREAM_SB_BLOCK			0
#define STREAM_BITMAP_HDR_SIZE		24
#define STREAM_BITS_PER_BLOCK		((STREAM_BLOCK_SIZE - STREAM_BITMAP_HDR_SIZE) * 8)

/* Region size limits, in 512-byte sectors. */
#define STREAM_MIN_REGION_SECTORS	8U
#define STREAM_MAX_REGION_SECTORS	2097152U
/* At most 2^31 regions. */
#define STREAM_MAX_REGIONS		0x80000000ULL

/* Superblock flags. */
#define STREAM_SB_FLAG_NEEDS_CHECK	0x1U

struct stream_superblock_disk {
	__le32 csum;		/* over bytes [4, STREAM_BLOCK_SIZE) */
	__le32 flags;
	__le64 blocknr;		/* always STREAM_SB_BLOCK */
	__le64 magic;		/* STREAM_MAGIC */
	__le32 version;		/* STREAM_VERSION */
	__le32 block_size;	/* STREAM_BLOCK_SIZE, in bytes */

	/* The geometry this metadata was formatted for. */
	__le32 region_size;	/* sectors */
	__le32 reserved0;
	__le64 target_size;	/* sectors */
	__le64 nr_regions;
	__le64 origin_size;	/* sectors */
	__le64 dest_size;	/* sectors */
	__le64 nr_bitmap_blocks;

	/* The last committed transaction. */
	__le64 transaction_id;
	__le64 nr_copied;	/* regions marked copied in that transaction */
} __packed;

struct stream_bitmap_disk {
	__le32 csum;		/* over bytes [4, STREAM_BLOCK_SIZE) */
	__le32 magic;		/* STREAM_BITMAP_MAGIC */
	__le64 blocknr;		/* where this slot lives on the device */
	__le64 transaction_id;	/* the transaction this slot was written in */
	/*
	 * STREAM_BITS_PER_BLOCK bits follow, little-endian bit order: bit n of
	 * the block is bit (n % 8) of byte (n / 8). Region r lives in bitmap
	 * block r / STREAM_BITS_PER_BLOCK. Bits past nr_regions are zero.
	 */
	__u8 bits[];
} __packed;

/* Where bitmap block @index, slot @slot, lives on the metadata device. */
static inline __u64 stream_bitmap_location(__u64 index, unsigned int slot)
{
	return 1 + 2 * index + slot;
}

static inline __u64 stream_nr_bitmap_blocks(__u64 nr_regions)
{
	return (nr_regions + STREAM_BITS_PER_BLOCK - 1) / STREAM_BITS_PER_BLOCK;
}

/* Metadata blocks a device with @nr_regions regions needs. */
static inline __u64 stream_metadata_blocks(__u64 nr_regions)
{
	return 1 + 2 * stream_nr_bitmap_blocks(nr_regions);
}

#endif /* DM_STREAM_FORMAT_H */
