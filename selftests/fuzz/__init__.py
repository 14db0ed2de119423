# SPDX-License-Identifier: GPL-2.0
"""Generators, models and judges for the dm-stream fuzz selftests.

The bash scripts (selftests/test_fuzz_*.sh) set up the devices with
common.sh and run every case themselves (dmsetup, dd, tools/dmstream); this
package only writes the cases and judges the results:

  python3 -B -m fuzz table-gen  ...   table lines for `dmsetup create`
  python3 -B -m fuzz table-judge ...  outcomes vs. a model of the constructor
  python3 -B -m fuzz msg-gen / msg-judge     the same for `dmsetup message`
  python3 -B -m fuzz meta-gen / meta-judge   corrupted metadata images

Run it from selftests/ (or with PYTHONPATH=selftests). Every case is
generated from random.Random("<seed>:<kind>:<case number>"), so one seed
gives the same cases whatever the count, and each case can be regenerated
alone. The models follow Documentation/admin-guide/device-mapper/dm-stream.rst
(numbers are plain decimal and compared as the integers they spell), not the
module's code: a disagreement is a bug in one of the two.
"""
