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
  crosscheck  ondisk's decoder against `dmstream dump --json`, field by
              field, on metadata images (test_crash_01, test_tool_01)
  metapatch   flip bits of a metadata block, maybe re-seal its checksum
  blockio     O_DIRECT reads and writes of block devices
  crash       test_crash_01: its workload, log checks and replay checker
              (a package: python3 -m dmst.crash COMMAND ...)
  toolcheck   test_tool_*: checks of the tool's JSON output
  identity    the identity record: expected origin samples, damage, and
              values of the tool's JSON (test_ident_01, test_assemble_01)

A test's own Python goes in a module named after what it does (or a
subpackage for a test with several, like crash/), with a docstring giving
its command line; what several tests share goes in blockio or ondisk.

selftests/metaimg.py (writes metadata images) and the fuzz package
(selftests/fuzz, run as `python3 -m fuzz` by fuzz_helpers.sh) take their
format from ondisk too.
"""
