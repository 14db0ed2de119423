# SPDX-License-Identifier: GPL-2.0
"""The devices a fuzz script set up, and how dm core turns a table word into
one of them (drivers/md/dm-table.c dm_get_device(), init/do_mounts.c
name_to_dev_t() in Linux 6.1; since 6.5 a loaded module's dm_get_device()
takes "major:minor" or a path only, as seen on 6.12)."""

import os
import re

from .util import U32_MAX

MINORBITS = 20


def _release():
    m = re.match(r"([0-9]+)\.([0-9]+)", os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


# Up to 6.4, dm_get_device() fell back on name_to_dev_t() (hex dev_t,
# "major:minor:offset"); since 6.5 (dm_devt_from_path()) a word that is not
# "major:minor" must be a path lookup_bdev() finds, or it fails (-ENOENT).
NAME_TO_DEV_T = _release() < (6, 5)


class Dev:
    def __init__(self, role, name, path, devt, sectors, lbs, kind, aliases):
        self.role = role          # meta, data or other (only resolvable)
        self.name = name          # the script's name for it, e.g. M1
        self.path = path
        self.major, self.minor = (int(x) for x in devt.split(":"))
        self.sectors = int(sectors)
        self.lbs = int(lbs)       # logical block size, bytes
        self.kind = kind          # loop, linear or zero
        self.aliases = [a for a in aliases.split(",") if a]

    @property
    def devt(self):
        return "%d:%d" % (self.major, self.minor)

    def forms(self):
        """Words that name this device in a table line."""
        f = [self.path, self.devt, "%03d:%04d" % (self.major, self.minor),
             "%x" % new_encode_dev(self.major, self.minor),
             "0x%X" % new_encode_dev(self.major, self.minor),
             "%s:%d" % (self.devt, 4096)]
        if self.path.startswith("/dev/"):
            f.append("/dev/." + self.path[4:])
        f += self.aliases
        return f


def new_encode_dev(major, minor):
    return (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)


def new_decode_dev(v):
    v &= U32_MAX
    return (v & 0xfff00) >> 8, (v & 0xff) | ((v >> 12) & 0xfff00)


class Inventory:
    """inventory.tsv: role name path major:minor sectors lbs kind aliases"""

    def __init__(self, path):
        self.devs = []
        with open(path) as f:
            for line in f:
                w = line.rstrip("\n").split("\t")
                if len(w) >= 7 and not w[0].startswith("#"):
                    self.devs.append(Dev(*(w + [""])[:8]))
        self.by_name = {d.name: d for d in self.devs}

    def role(self, role):
        return [d for d in self.devs if d.role == role]

    def _by_devt(self, major, minor):
        for d in self.devs:
            if (d.major, d.minor) == (major, minor):
                return d
        return None

    def _by_path(self, path):
        p = os.path.normpath(path)
        for d in self.devs:
            if p in (os.path.normpath(d.path), *map(os.path.normpath, d.aliases)):
                return d
        return None

    def resolve(self, word):
        """(Dev or None, errno name). None: dm_get_device() fails."""
        m = re.fullmatch(r"([0-9]+):([0-9]+)", word)
        if m:
            major, minor = int(m.group(1)), int(m.group(2))
            if major > U32_MAX or minor > U32_MAX:
                return None, "wraps"      # %u wraps: never generated
            if major >= 1 << 12 or minor >= 1 << MINORBITS:
                return None, "EOVERFLOW"
            d = self._by_devt(major, minor)
            return d, None if d else "ENXIO"
        if word.startswith("/"):
            d = self._by_path(word)
            if d:
                return d, None
        if not NAME_TO_DEV_T:
            return None, "ENOENT"
        # name_to_dev_t(): outside /dev/, "major:minor:offset" or a hex dev_t.
        m = re.fullmatch(r"([0-9]+):([0-9]+):([0-9]+)", word)
        if m and not word.startswith("/dev/"):
            major, minor = int(m.group(1)), int(m.group(2))
            if max(major, minor, int(m.group(3))) > U32_MAX:
                return None, "wraps"
            if major >= 1 << 12 or minor >= 1 << MINORBITS:
                return None, "ENODEV"
            d = self._by_devt(major, minor)
            return d, None if d else "ENXIO"
        if not word.startswith("/dev/") and re.fullmatch(r"(0[xX])?[0-9a-fA-F]+", word):
            major, minor = new_decode_dev(int(word, 16))
            if not major and not minor:
                return None, "ENODEV"
            d = self._by_devt(major, minor)
            return d, None if d else "ENXIO"
        return None, "ENODEV"


# Words that name no device here. None of them can name a device that
# appears on demand (loop and ram majors autoload and create devices when
# opened by number), so the model can say they fail.
JUNK_DEVICES = [
    "/dev/nonexistent", "/dev/mapper/nonexistent", "nosuchdev", "/etc/hostname",
    "/dev/null", "/dev/zero", "/dev", "/", "0:0", "0:16", "4096:0", "7:1048576",
    "4095:1048575", "-1", "x", "0x0", "zz:1", "7:", ":7", "7:0:", "0:0:0",
    "PARTUUID=00000000-0000-0000-0000-000000000000", "PARTLABEL=nope",
    "/dev/./nonexistent", "/dev/nfs",
]
