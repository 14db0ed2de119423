# SPDX-License-Identifier: GPL-2.0
"""Origin samples of the identity record (test_mirror_02).

    python3 -m dmst.samples set SB_FILE ORIGIN_FILE SECTOR...
    python3 -m dmst.samples checked SB_FILE

SB_FILE holds the superblock block (4096 bytes). set writes an identity
record (magic, every other field zero) whose samples are at the SECTORs,
all checked, with the CRC32C of what ORIGIN_FILE (an image of the origin)
holds there, and reseals the superblock. checked prints the record's
sample_checked bit mask.
"""

import struct
import sys

from . import ondisk


def read_block(path):
    with open(path, "rb") as f:
        return bytearray(f.read(ondisk.BLOCK_SIZE))


def cmd_set(sb_path, origin_path, sectors):
    b = read_block(sb_path)
    if len(sectors) > ondisk.NR_SAMPLES:
        sys.exit("samples: at most %d samples" % ondisk.NR_SAMPLES)
    base = ondisk.IDENTITY_OFFSET
    b[base:ondisk.BLOCK_SIZE] = bytes(ondisk.BLOCK_SIZE - base)
    struct.pack_into("<I", b, base, ondisk.IDENTITY_MAGIC)
    with open(origin_path, "rb") as f:
        for i, s in enumerate(sectors):
            f.seek(s * 512)
            data = f.read(ondisk.SAMPLE_SECTORS * 512)
            struct.pack_into("<Q", b, base + ondisk.ID_SAMPLE_SECTOR + 8 * i, s)
            struct.pack_into("<I", b, base + ondisk.ID_SAMPLE_CSUM + 4 * i,
                             ondisk.crc32c_raw(data))
    struct.pack_into("<I", b, base + ondisk.ID_SAMPLE_CHECKED, (1 << len(sectors)) - 1)
    ondisk.seal(b, ondisk.SB_CSUM_XOR)
    with open(sb_path, "wb") as f:
        f.write(b)
    return 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "set":
        return cmd_set(argv[1], argv[2], [int(s) for s in argv[3:]])
    if len(argv) == 2 and argv[0] == "checked":
        b = read_block(argv[1])
        print(struct.unpack_from("<I", b, ondisk.IDENTITY_OFFSET + ondisk.ID_SAMPLE_CHECKED)[0])
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
