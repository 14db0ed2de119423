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
 * torn write anyway. Bytes [STREAM_IDENTITY_OFFSET, STREAM_BLOCK_SIZE) of
 * the superblock block hold the identity record (struct
 * stream_identity_disk), all zero when none was recorded. dmstream(8)
 * writes it when it formats the metadata.
 * The kernel changes only the samples' fields of the record (below).
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

#ifdef __KERNEL__
#include <linux/build_bug.h>
#else
#include <assert.h>
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
/*
 * The origin may miss an acknowledged write: a one-way (non-mirror) table
 * ran, mirroring was turned off, or an origin-leg write failed. Set and
 * committed before the first such write is acknowledged; never cleared
 * while any region is copied. Without it the origin holds every
 * acknowledged write, and the stream can be abandoned with no loss.
 */
#define STREAM_SB_FLAG_ORIGIN_STALE	0x2U
/* With ORIGIN_STALE: it was set because an origin-leg write failed. */
#define STREAM_SB_FLAG_ORIGIN_FAILED	0x4U
#define STREAM_SB_FLAGS_KNOWN		0x7U

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

/*
 * The identity record, in the superblock block at STREAM_IDENTITY_OFFSET.
 * Strings are NUL-padded and NUL-terminated within their field; an empty
 * string means unknown. The kernel reads the samples only: the rest is for
 * dmstream(8) (list, assemble, rebind).
 */
#define STREAM_IDENTITY_OFFSET		512
#define STREAM_IDENTITY_MAGIC		0x4e444953U		/* "SIDN" */
#define STREAM_ID_NAME_LEN		128	/* dm names are < 128 bytes */
#define STREAM_ID_UUID_LEN		136	/* dm uuids are < 129 bytes */
#define STREAM_ID_SERIAL_LEN		80
#define STREAM_ID_TABLE_LEN		1024

/*
 * Origin fingerprint: up to STREAM_NR_SAMPLES samples of
 * STREAM_SAMPLE_SECTORS sectors each, at sample_sector[i], with the CRC32C
 * (seed 0xffffffff, no final inversion, like the block checksums) of what
 * the origin held there. dmstream chooses the sectors and sets their bits
 * in sample_wanted; the kernel takes the samples when the stream is first
 * resumed (nothing writes the origin through the stream before that, and
 * the table it replaced is suspended), moves the bits to sample_checked and
 * commits. From then on the constructor reads every checked sample and
 * refuses an origin that differs. A sample is unchecked from the moment the
 * stream may write the origin there (mirror mode): the kernel clears its
 * bit and commits before such a write is issued.
 */
#define STREAM_NR_SAMPLES		8
#define STREAM_SAMPLE_SECTORS		8

/*
 * Options recorded for dmstream assemble, as in the table line; and what
 * made the stream: dmstream merge (of a dm-snapshot; ROLLBACK: onto the
 * snapshot's origin device). The kernel ignores them.
 */
#define STREAM_ID_OPT_MIRROR		0x1U
#define STREAM_ID_OPT_NO_DISCARD_PASSDOWN 0x2U
#define STREAM_ID_OPT_MERGE		0x4U
#define STREAM_ID_OPT_ROLLBACK		0x8U
#define STREAM_ID_OPT_COPY_ON_READ	0x10U
#define STREAM_ID_OPT_SKIP_ZEROES	0x20U

struct stream_device_identity_disk {
	__le64 size;				/* sectors */
	__le32 major, minor;			/* when recorded: a hint only */
	char dm_name[STREAM_ID_NAME_LEN];	/* a dm device's name */
	char dm_uuid[STREAM_ID_UUID_LEN];	/* a dm device's uuid */
	char wwn[STREAM_ID_SERIAL_LEN];		/* udev ID_WWN_WITH_EXTENSION or ID_WWN */
	char serial[STREAM_ID_SERIAL_LEN];	/* udev ID_SERIAL */
	char part_uuid[40];			/* udev ID_PART_ENTRY_UUID */
	char fs_uuid[40];			/* udev ID_FS_UUID: LVM PV, md ... */
} __packed;

struct stream_identity_disk {
	__le32 magic;				/* STREAM_IDENTITY_MAGIC */
	__le32 options;				/* STREAM_ID_OPT_* */
	__le64 created;				/* seconds since the epoch */
	char name[STREAM_ID_NAME_LEN];		/* the stream device's dm name */
	char uuid[STREAM_ID_UUID_LEN];		/* its dm uuid, or "" */
	__le32 rate_kib;
	__le32 max_inflight;
	__le32 sample_checked;			/* bit i: sample i is checked */
	__le32 sample_wanted;			/* bit i: take sample i at resume */
	__le64 sample_sector[STREAM_NR_SAMPLES];
	__le32 sample_csum[STREAM_NR_SAMPLES];
	struct stream_device_identity_disk origin;
	struct stream_device_identity_disk dest;
	/*
	 * dmstream copy of a device whose table is not one linear segment
	 * makes a helper origin NAME-origin with that table: its table lines
	 * ("<start> <length> <target> <args>", newline-separated), so that
	 * abort and assemble can make it again. "" otherwise.
	 */
	char origin_table[STREAM_ID_TABLE_LEN];
	/*
	 * dmstream merge: the dm-snapshot exception store the seed came from,
	 * so that a continued merge is known to be over the same store: how
	 * many exceptions it held, the CRC32C (as above) of their (old_chunk,
	 * new_chunk) pairs, __le64 each, in store order, and its chunk size.
	 * A store only grows, so a later read must hold the same pairs first.
	 * All zero otherwise.
	 */
	__le64 merge_exceptions;
	__le32 merge_csum;
	__le32 merge_chunk;			/* sectors */
	/*
	 * The table's min_rate and max_rate (KiB/s, 0: the default), as
	 * rate_kib. The record has no size or version field: it grows at its
	 * end only, and the bytes after it are zero, so a record written
	 * before a field existed reads it as 0, its default.
	 */
	__le32 min_rate_kib;
	__le32 max_rate_kib;
} __packed;

static_assert(sizeof(struct stream_superblock_disk) <= STREAM_IDENTITY_OFFSET,
	      "the superblock's fields fit in its first sector");
static_assert(STREAM_IDENTITY_OFFSET + sizeof(struct stream_identity_disk) <= STREAM_BLOCK_SIZE,
	      "the identity record fits in the superblock block");

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
