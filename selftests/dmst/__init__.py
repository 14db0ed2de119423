# SPDX-License-Identifier: GPL-2.0
"""Python helpers of the dm-stream selftests.

The bash scripts (selftests/test_*.sh) set up devices and report KTAP; what
needs more than a line of Python lives here, one module per job, run as

  PYTHONPATH=selftests python3 -B -m dmst.<module> ARGS...

(-B: the tree may be read-only in the guest). Modules:

  ondisk      the on-disk metadata format of dm-stream/stream-format.h:
              constants, CRC32C, superblock and bitmap slot pack/unpack,
              the load rule, a decoder shaped like `dmstream dump --json`.
              Every test that reads or writes metadata uses it.

selftests/metaimg.py (writes metadata images) and the fuzz package
(selftests/fuzz, run as `python3 -m fuzz` by fuzz_helpers.sh) take their
format from ondisk too.
"""
