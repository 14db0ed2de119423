# SPDX-License-Identifier: GPL-2.0
"""The data test_crash_01's writes carry: every sector names the write and
the sector, so a wrong sector says where it came from."""

SECT = 512
HEAD = b"dm-stream crash01 w="


def pattern(i, sector):
    """512 bytes written by test write @i at target sector @sector."""
    head = HEAD + b"%03d sector=%08d " % (i, sector)
    return head + bytes([0x40 + i % 64]) * (SECT - len(head))


def pattern_range(i, sector, n):
    """@n sectors of write @i from @sector."""
    return b"".join(pattern(i, sector + j) for j in range(n))


def parse(sec):
    """(write, sector) a pattern sector names, or None."""
    if not sec.startswith(HEAD):
        return None
    try:
        return int(sec[20:23]), int(sec[31:39])
    except ValueError:
        return None
