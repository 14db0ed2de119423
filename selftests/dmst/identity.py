# SPDX-License-Identifier: GPL-2.0
"""The identity record of dm-stream metadata (test_ident_01,
test_assemble_01, test_tool_06).

    python3 -m dmst.identity samples DEV
        the origin samples dmstream takes of DEV, as `dmstream dump --json`
        shows them: a JSON list of [sector, crc32c], computed here from the
        recipe (sector 0, then evenly spaced to the last 4 KiB, 4 KiB
        aligned; CRC32C seeded ~0 without the final inversion)
    python3 -m dmst.identity corrupt FILE WHAT
        damages the identity record of the superblock block at the start of
        FILE, then re-seals the superblock's checksum, so that only the
        damage remains. WHAT: name-unterminated, dest-uuid-garbage (bytes
        after its NUL), dest-size (not the superblock's); or pre-2.1: the
        record as a dmstream before target 2.1 wrote it (min_rate_kib and
        max_rate_kib zero, no copy_on_read or skip_zeroes bit)
    python3 -m dmst.identity get JSON PATH
        prints the value at PATH (keys and list indexes, dot-separated) of
        the JSON document in file JSON ("-": stdin); exits 1 if absent
"""

import json
import os
import sys

from . import ondisk


def samples(dev):
    """[[sector, crc]] * NR_SAMPLES of @dev, by dmstream's recipe."""
    fd = os.open(dev, os.O_RDONLY)
    try:
        size = os.lseek(fd, 0, os.SEEK_END) // 512
        out = []
        for i in range(ondisk.NR_SAMPLES):
            sector = (size - ondisk.SAMPLE_SECTORS) * i // (ondisk.NR_SAMPLES - 1)
            sector &= ~(ondisk.SAMPLE_SECTORS - 1)
            data = os.pread(fd, ondisk.SAMPLE_SECTORS * 512, sector * 512)
            out.append([sector, ondisk.crc32c_raw(data)])
        return out
    finally:
        os.close(fd)


def corrupt(path, what):
    with open(path, "r+b") as f:
        blk = bytearray(f.read(ondisk.BLOCK_SIZE))
        ident = ondisk.unpack_identity(blk)
        if what == "name-unterminated":
            ident["name"] = b"x" * len(ident["name"])
        elif what == "dest-uuid-garbage":
            raw = bytearray(ident["dest"]["dm_uuid"])
            raw[-1] = 0x41
            ident["dest"]["dm_uuid"] = bytes(raw)
        elif what == "dest-size":
            ident["dest"]["size"] += 8
        elif what == "pre-2.1":
            ident["min_rate_kib"] = ident["max_rate_kib"] = 0
            ident["options"] &= ~(ondisk.ID_OPT_COPY_ON_READ | ondisk.ID_OPT_SKIP_ZEROES)
        else:
            sys.exit("identity: unknown damage '%s'" % what)
        blk[ondisk.IDENTITY_OFFSET:ondisk.IDENTITY_OFFSET + ondisk.IDENTITY_SIZE] = \
            ondisk.pack_identity(ident)
        ondisk.seal(blk, ondisk.SB_CSUM_XOR)
        f.seek(0)
        f.write(blk)
    return 0


def get(path, key):
    with (sys.stdin if path == "-" else open(path)) as f:
        v = json.load(f)
    for k in key.split("."):
        try:
            v = v[int(k)] if isinstance(v, list) else v[k]
        except (KeyError, IndexError, ValueError, TypeError):
            return 1
    print(json.dumps(v) if isinstance(v, (list, dict)) or v is None or
          isinstance(v, bool) else v)
    return 0


def main(argv):
    if len(argv) == 2 and argv[0] == "samples":
        print(json.dumps(samples(argv[1])))
        return 0
    if len(argv) == 3 and argv[0] == "corrupt":
        return corrupt(argv[1], argv[2])
    if len(argv) == 3 and argv[0] == "get":
        return get(argv[1], argv[2])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
