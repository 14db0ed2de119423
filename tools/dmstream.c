// SPDX-License-Identifier: GPL-2.0
/*
 * dmstream - create, follow and finish dm-stream devices.
 *
 * One command per workflow: `create` a stream device, `copy` a dm device in
 * use onto new storage, `merge` a dm-snapshot into its origin, `finish` a
 * complete stream by switching it to `linear` on its destination, or
 * `abort` it back to its origin; `status`, `wait`, the messages, offline
 * `check` and `dump` of a metadata device, and `exceptions` of a dm-snapshot
 * store. See dmstream(8)
 * (Documentation/dmstream.8.rst) and the exit codes in util.h.
 *
 * This file is the command line: the command table and its --help texts,
 * option parsing into struct opts, the NAME check, and main(). The
 * commands themselves are in workflow.c (create, copy, finish, messages),
 * merge.c (merge), abort.c (abort), follow.c (status, wait) and offline.c
 * (check, dump, exceptions); cli.h is between.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "stream-format.h"
#include "stream-interface.h"
#include "cli.h"
#include "dm.h"
#include "meta.h"
#include "util.h"

#define DMSTREAM_VERSION	"1.0.0"

#define STR(x)			#x
#define XSTR(x)			STR(x)

/*---------------------------------------------------------------------------*/
/* Options */
enum opt_id {
	OPT_ORIGIN = 1, OPT_DEST, OPT_META, OPT_REGION_SIZE, OPT_RATE, OPT_MAX_INFLIGHT,
	OPT_PAUSED, OPT_FORCE, OPT_FINISH, OPT_WATCH, OPT_JSON, OPT_INTERVAL, OPT_TIMEOUT,
	OPT_PROGRESS, OPT_QUIET, OPT_SB_ONLY, OPT_IGNORE_NONFATAL, OPT_MIRROR, OPT_NO_MIRROR,
	OPT_HELP, OPT_NAME, OPT_COPIED, OPT_COPIED_FROM, OPT_ROLLBACK, OPT_MIN_RATE, OPT_MAX_RATE,
	OPT_COPY_ON_READ, OPT_SKIP_ZEROES, OPT_SET_COPY_ON_READ,
	OPT_MAX
};

#define O(x)	(1ULL << (x))

static const struct option all_options[] = {
	{ "origin", required_argument, NULL, OPT_ORIGIN },
	{ "dest", required_argument, NULL, OPT_DEST },
	{ "meta", required_argument, NULL, OPT_META },
	{ "region-size", required_argument, NULL, OPT_REGION_SIZE },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT },
	{ "paused", no_argument, NULL, OPT_PAUSED },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "finish", no_argument, NULL, OPT_FINISH },
	{ "watch", no_argument, NULL, OPT_WATCH },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "interval", required_argument, NULL, OPT_INTERVAL },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "super-block-only", no_argument, NULL, OPT_SB_ONLY },
	{ "ignore-non-fatal-errors", no_argument, NULL, OPT_IGNORE_NONFATAL },
	{ "mirror", no_argument, NULL, OPT_MIRROR },
	{ "no-mirror", no_argument, NULL, OPT_NO_MIRROR },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "copied", required_argument, NULL, OPT_COPIED },
	{ "copied-from", required_argument, NULL, OPT_COPIED_FROM },
	{ "rollback", no_argument, NULL, OPT_ROLLBACK },
	{ "min-rate", required_argument, NULL, OPT_MIN_RATE },
	{ "max-rate", required_argument, NULL, OPT_MAX_RATE },
	{ "copy-on-read", no_argument, NULL, OPT_COPY_ON_READ },
	{ "skip-zeroes", no_argument, NULL, OPT_SKIP_ZEROES },
	/* set's: the same name, with on or off (no command takes both). */
	{ "copy-on-read", required_argument, NULL, OPT_SET_COPY_ON_READ },
};

static const struct command *find_command(const char *name);
static void usage_all(FILE *f);

/*---------------------------------------------------------------------------*/
/* Helpers */
int usage_error(const struct command *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s%s%s: ", progname, cmd ? " " : "", cmd ? cmd->name : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cmd)
		fprintf(stderr, "usage: %s %s %s\nTry '%s %s --help'.\n", progname, cmd->name,
			cmd->args, progname, cmd->name);
	else
		fprintf(stderr, "Try '%s --help'.\n", progname);
	return EXIT_USAGE;
}

/* dm names: what dm-ioctl accepts, also given as /dev/mapper/NAME. */
static int check_name(const struct command *cmd, char **name)
{
	static const char prefix[] = "/dev/mapper/";

	if (!strncmp(*name, prefix, sizeof(prefix) - 1))
		*name += sizeof(prefix) - 1;
	if (!**name || strlen(*name) >= 128 || strchr(*name, '/') || !strcmp(*name, ".") ||
	    !strcmp(*name, ".."))
		return usage_error(cmd, "invalid device name '%s'", *name);
	return 0;
}

int rate_arg(const struct command *cmd, const char *arg, uint64_t *kib)
{
	switch (parse_rate_kib(arg, kib)) {
	case 0:
		return 0;
	case -2:
		return usage_error(cmd, "rate '%s' is too large: the kernel takes at most %llu "
				   "KiB/s (just under 4T/s)", arg, (unsigned long long)STREAM_MAX_RATE_KIB);
	default:
		return usage_error(cmd, "invalid rate '%s': e.g. 50M/s, 512k, 0 for no limit",
				   arg);
	}
}

/*---------------------------------------------------------------------------*/
/* help, version */
static int cmd_help(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	const struct command *c;

	(void)cmd;
	(void)o;
	if (!argc) {
		usage_all(stdout);
		return EXIT_OK;
	}
	c = find_command(argv[0]);
	if (!c)
		return usage_error(NULL, "unknown command '%s'", argv[0]);
	printf("usage: %s %s %s\n\n%s\n%s", progname, c->name, c->args, c->summary,
	       c->details ? c->details : "");
	return EXIT_OK;
}

static int cmd_version(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	(void)cmd;
	(void)o;
	(void)argc;
	(void)argv;
	printf("%s %s (stream target %u.x, metadata version %u)\n", progname, DMSTREAM_VERSION,
	       STREAM_TARGET_VERSION_MAJOR, STREAM_VERSION);
	return EXIT_OK;
}

/*---------------------------------------------------------------------------*/
/* The command table */
#define SIZES_HELP \
	"Sizes take k, M, G, T suffixes (powers of 1024) or s (512-byte sectors);\n" \
	"plain numbers are bytes. Rates are sizes per second: 50M/s, 512k; 0 means\n" \
	"no limit. The kernel takes KiB/s: a rate is rounded up to whole KiB/s, and\n" \
	"at most 4294967295k (just under 4T/s) is accepted.\n"

#define COPIED_HELP \
	"  --copied RANGES     DEST already holds these byte ranges of the origin:\n" \
	"                      START-END (END excluded) or START+LEN, comma-separated\n" \
	"                      (0-1G,2G+512M). The regions they cover whole start as\n" \
	"                      copied and are never read from the origin. Needs blank\n" \
	"                      metadata\n" \
	"  --copied-from FILE  the same, one range per line ('#' comments; - is stdin)\n"

static const struct command commands[] = {
	{ "create", "NAME --origin DEV --dest DEV --meta DEV [--region-size SIZE] [--rate RATE] [--min-rate RATE] [--max-rate RATE] [--max-inflight N] [--copy-on-read] [--skip-zeroes] [--paused] [--mirror] [--copied RANGES | --copied-from FILE] [--force]",
	  "Create stream device NAME over ORIGIN, copying it into DEST in the background.",
	  O(OPT_ORIGIN) | O(OPT_DEST) | O(OPT_META) | O(OPT_REGION_SIZE) | O(OPT_RATE) |
	  O(OPT_MIN_RATE) | O(OPT_MAX_RATE) | O(OPT_COPY_ON_READ) | O(OPT_SKIP_ZEROES) |
	  O(OPT_MAX_INFLIGHT) | O(OPT_PAUSED) | O(OPT_MIRROR) | O(OPT_FORCE) | O(OPT_COPIED) |
	  O(OPT_COPIED_FROM), 1, 1, true,
	  cmd_create,
	  "\n  --origin DEV        the read-only source; the device is as long as it\n"
	  "  --dest DEV          receives the copy and every write; at least as long\n"
	  "  --meta DEV          metadata; blank (formatted by the kernel), or metadata\n"
	  "                      of this same geometry (the stream continues)\n"
	  "  --region-size SIZE  unit of copying, a power of two, 4k to 1G ("
	  XSTR(STREAM_DEFAULT_REGION_SECTORS) "s)\n"
	  "  --rate RATE         limit background copying at all times (default: none)\n"
	  "  --min-rate RATE     background copying while the device's users are busy\n"
	  "                      (default: unpaced, one piece in flight at a time)\n"
	  "  --max-rate RATE     background copying while they are idle (default: no\n"
	  "                      limit)\n"
	  "  --max-inflight N    background regions in flight, " XSTR(STREAM_MIN_MAX_INFLIGHT) " to "
	  XSTR(STREAM_MAX_MAX_INFLIGHT) " (" XSTR(STREAM_DEFAULT_MAX_INFLIGHT) ")\n"
	  "  --copy-on-read      a read of an uncopied region queues it for copying\n"
	  "                      ahead of the rest, even while paused\n"
	  "  --skip-zeroes       all-zero parts of the origin are not written where\n"
	  "                      DEST reads zeros already (DEST is read first)\n"
	  "  --paused            create paused; 'dmstream continue NAME' starts it\n"
	  "  --mirror            every write also goes to the origin (opened\n"
	  "                      read-write), so that 'abort' loses nothing; off by\n"
	  "                      default, since an origin is often a read-only image\n"
	  COPIED_HELP
	  "  --force             overwrite a metadata device holding anything else\n\n"
	  SIZES_HELP },
	{ "status", "NAME [--watch] [--json] [--interval SEC]",
	  "Show progress, rate, ETA, state, mode, errors, copy mode and options.",
	  O(OPT_WATCH) | O(OPT_JSON) | O(OPT_INTERVAL), 1, 1, true, cmd_status,
	  "\n  --watch             keep showing it until the copy completes or fails: one\n"
	  "                      updating progress bar on a terminal, else one line per\n"
	  "                      update; exits as 'wait' does\n"
	  "  --json              one JSON object per line\n"
	  "  --interval SEC      time between updates, and over which the rate is\n"
	  "                      measured (1; 0 skips the rate of a one-shot status)\n" },
	{ "wait", "NAME [--timeout SEC] [--progress [--json] [--interval SEC]]",
	  "Sleep on NAME's dm events until its copy is complete, fails, or the timeout.",
	  O(OPT_TIMEOUT) | O(OPT_PROGRESS) | O(OPT_INTERVAL) | O(OPT_JSON), 1, 1, true, cmd_wait,
	  "\n  --timeout SEC       give up after SEC seconds (exit 5)\n"
	  "  --progress          show progress meanwhile, as 'status --watch' (with\n"
	  "                      its --json and --interval)\n\n"
	  "Exits 0 when complete; 4 when the copy failed (ro or fail mode, complete or\n"
	  "not: metadata or destination failure; or stalled on copy errors), with the\n"
	  "reason.\n" },
	{ "finish", "NAME",
	  "Switch a complete NAME to 'linear' on its destination; remove the helpers.",
	  0, 1, 1, true, cmd_finish,
	  "\nRefuses unless NAME is healthy: exit 4 in ro or fail mode (its metadata or\n"
	  "destination failed), exit 6 when the copy is not complete. Loads the linear\n"
	  "table, then suspends NAME, which makes the stream's final commit, and checks\n"
	  "the status again: if the mode is no longer rw, the linear table is dropped\n"
	  "and NAME resumed as a stream (exit 4); else NAME is resumed on the linear\n"
	  "table. On any failure NAME stays a stream. Removes the helper origin that\n"
	  "'copy' made. The metadata device is free afterwards.\n" },
	{ "copy", "NAME --dest DEV --meta DEV [--region-size SIZE] [--rate RATE] [--min-rate RATE] [--max-rate RATE] [--max-inflight N] [--copy-on-read] [--skip-zeroes] [--no-mirror] [--copied RANGES | --copied-from FILE] [--force] [--finish [--timeout SEC] [--quiet | --json] [--interval SEC]]",
	  "Live copy of dm device NAME, in use, onto DEST: NAME becomes a stream.",
	  O(OPT_DEST) | O(OPT_META) | O(OPT_REGION_SIZE) | O(OPT_RATE) | O(OPT_MAX_INFLIGHT) |
	  O(OPT_MIN_RATE) | O(OPT_MAX_RATE) | O(OPT_COPY_ON_READ) | O(OPT_SKIP_ZEROES) |
	  O(OPT_NO_MIRROR) | O(OPT_FORCE) | O(OPT_FINISH) | O(OPT_TIMEOUT) | O(OPT_QUIET) |
	  O(OPT_INTERVAL) | O(OPT_JSON) | O(OPT_COPIED) | O(OPT_COPIED_FROM), 1, 1, true,
	  cmd_copy,
	  "\nNAME's table becomes the origin: the device under it when it is one linear\n"
	  "segment at offset 0, else a read-only helper device NAME-origin with the\n"
	  "same table. NAME is reloaded as a stream over DEST and that origin; its\n"
	  "users see a suspend and nothing else. On a failure before the switch, NAME\n"
	  "stays on its original table.\n\n"
	  "The copy mirrors: every write goes to the origin too, so that the origin\n"
	  "stays current and 'abort' can go back to it with nothing lost.\n\n"
	  "  --dest DEV          the new storage, at least as long as NAME\n"
	  "  --meta DEV          a blank metadata device (--force overwrites one)\n"
	  "  --no-mirror         one-way copy: writes go to DEST only (faster); the\n"
	  "                      origin goes stale, and 'abort' loses those writes.\n"
	  "                      Refused for an LVM logical volume unless --force:\n"
	  "                      LVM's metadata still names the old PV, so a\n"
	  "                      reactivation (vgchange -ay, lvchange --refresh,\n"
	  "                      a reboot) maps the LV back to its stale origin\n"
	  "  --force             also: overwrite a metadata device holding anything\n"
	  "                      else\n"
	  "  --finish            wait with progress, then 'finish' (--timeout as for\n"
	  "                      'wait'; --json, --interval as for 'status --watch';\n"
	  "                      --quiet hides the progress)\n"
	  "  --region-size, --rate, --min-rate, --max-rate, --max-inflight,\n"
	  "  --copy-on-read, --skip-zeroes, --copied, --copied-from, --force:\n"
	  "                      as for 'create'\n\n"
	  SIZES_HELP },
	{ "merge", "SNAP --meta DEV [--rollback] [--region-size SIZE] [--rate RATE] [--min-rate RATE] [--max-rate RATE] [--max-inflight N] [--copy-on-read] [--force] [--finish [--timeout SEC] [--quiet | --json] [--interval SEC]]",
	  "Merge dm-snapshot SNAP into its origin live, copying only the changed chunks.",
	  O(OPT_META) | O(OPT_ROLLBACK) | O(OPT_REGION_SIZE) | O(OPT_RATE) |
	  O(OPT_MIN_RATE) | O(OPT_MAX_RATE) | O(OPT_COPY_ON_READ) |
	  O(OPT_MAX_INFLIGHT) | O(OPT_FORCE) | O(OPT_FINISH) | O(OPT_TIMEOUT) | O(OPT_QUIET) |
	  O(OPT_INTERVAL) | O(OPT_JSON), 1, 1, true, cmd_merge,
	  "\nSNAP is a 'snapshot' device with a persistent exception store (P or PO).\n"
	  "Its store is read while SNAP and its origin are suspended; the regions it\n"
	  "holds no exception for start as copied, so only the changed chunks are\n"
	  "copied. The stream writes the snapshot's origin device (REAL) directly and\n"
	  "is one-way.\n\n"
	  "Without --rollback (the live merge): SNAP, in use, becomes the stream, over\n"
	  "a read-only helper SNAP-origin with the snapshot's table; the snapshot-origin\n"
	  "device of REAL, if any, is made read-only (its content is mixed until the\n"
	  "end). 'finish SNAP' leaves SNAP linear on REAL.\n\n"
	  "--rollback (as lvconvert --merge): the snapshot-origin device ORIGIN becomes\n"
	  "the stream and shows the snapshot's content at once (refused while it is\n"
	  "mounted); SNAP, which must not be open, is made read-only. 'finish ORIGIN' leaves ORIGIN linear on REAL and\n"
	  "removes SNAP. For an LVM volume, merge sets LVM's activation skip flag on\n"
	  "the origin LV first, so that no activation after a crash shows the mixed\n"
	  "content, and finish puts LVM's snapshot-origin table back, removes the\n"
	  "snapshot with 'lvm lvremove' and clears the flag.\n\n"
	  "After a crash: set the snapshot up again (LVM: lvm lvchange -ay -K VG/LV),\n"
	  "use none of its devices, and run the same merge command: it continues from\n"
	  "META, never seeding again, if the store is the one it started from (and,\n"
	  "for a live merge, got no new exception since). A merge's metadata is never\n"
	  "overwritten (--force neither); finish zeroes it.\n\n"
	  "  --meta DEV          a blank metadata device, or this merge's own\n"
	  "  --rollback          the origin's device shows the snapshot (see above)\n"
	  "  --region-size SIZE  unit of copying (default: the snapshot's chunk size,\n"
	  "                      at least 4k); a region holding any exception is copied\n"
	  "                      whole\n"
	  "  --rate, --min-rate, --max-rate, --max-inflight, --copy-on-read, --force,\n"
	  "  --finish, --timeout, --quiet, --json, --interval: as for 'copy' (not\n"
	  "  --skip-zeroes: a merge copies only what changed)\n\n"
	  SIZES_HELP },
	{ "abort", "NAME [--force]",
	  "Give up a stream: NAME maps its origin again, as before the copy.",
	  O(OPT_FORCE), 1, 1, true, cmd_abort,
	  "\nNAME gets the table its origin had (the helper origin's table, the helper\n"
	  "then removed; else 'linear' on the origin) in one load, suspend and resume.\n"
	  "The destination and the metadata device are then unused: their contents\n"
	  "are of no further use and they may be reused or deleted.\n\n"
	  "In mirror mode nothing is lost: the origin holds every acknowledged write\n"
	  "(the suspend drains the writes in flight, and the mode is checked again\n"
	  "while suspended). A one-way or degraded stream, or one whose metadata says\n"
	  "the origin is stale, is refused (exit 7), saying how many regions may\n"
	  "hold writes the origin lacks.\n\n"
	  "  --force             abort anyway, losing those writes\n" },
	{ "pause", "NAME", "Stop starting background copies.", 0, 1, 1, true, cmd_message, NULL },
	{ "continue", "NAME",
	  "Resume background copies; after a stall, retry the failed regions.",
	  0, 1, 1, true, cmd_message,
	  "\nAfter 'pause' or --paused: copying starts again. A stalled stream (a copy\n"
	  "failed every try, its origin gone, say) starts a new pass from region 0,\n"
	  "once the cause is fixed: the regions left uncopied are tried again.\n" },
	{ "rate", "NAME RATE", "Set the background copy rate limit (0: none).",
	  0, 2, 2, true, cmd_rate, "\nThe same as 'set NAME --rate RATE'.\n\n" SIZES_HELP },
	{ "set", "NAME [--rate RATE] [--min-rate RATE] [--max-rate RATE] [--max-inflight N] [--copy-on-read on|off]",
	  "Change a stream's rates, in-flight bound or copy-on-read while it runs.",
	  O(OPT_RATE) | O(OPT_MIN_RATE) | O(OPT_MAX_RATE) | O(OPT_MAX_INFLIGHT) |
	  O(OPT_SET_COPY_ON_READ), 1, 1, true, cmd_set,
	  "\n  --rate RATE         the cap on background copying, at all times\n"
	  "  --min-rate RATE     background copying while users are busy (0: unpaced,\n"
	  "                      one piece in flight at a time)\n"
	  "  --max-rate RATE     background copying while they are idle (0: no limit)\n"
	  "  --max-inflight N    background regions in flight, " XSTR(STREAM_MIN_MAX_INFLIGHT) " to "
	  XSTR(STREAM_MAX_MAX_INFLIGHT) "\n"
	  "  --copy-on-read on|off  queue uncopied regions that are read for copying\n\n"
	  "Sends the target's messages, one per option given, in this order. The\n"
	  "table (dmsetup table) shows the values in force, so a table reloaded from\n"
	  "it keeps them; the metadata does not: 'assemble' makes the stream with the\n"
	  "options it was created with. Stops at the first message the kernel\n"
	  "refuses, naming the ones already sent.\n\n"
	  SIZES_HELP },
	{ "check", "META [--quiet] [--super-block-only] [--ignore-non-fatal-errors]",
	  "Check a metadata device offline: checksums, geometry, bitmap, copied count.",
	  O(OPT_QUIET) | O(OPT_SB_ONLY) | O(OPT_IGNORE_NONFATAL), 1, 1, false, cmd_check,
	  "\n  --quiet                    no output; the exit code only\n"
	  "  --super-block-only         check the superblock only\n"
	  "  --ignore-non-fatal-errors  exit 0 despite damage the kernel tolerates\n"
	  "                             (an invalid slot not in use, say)\n\n"
	  "Problems go to stderr: the first 20 of each kind, then a count of the rest.\n"
	  "META is a block device or a regular file (an image). Exits 0 when the\n"
	  "metadata is clean (or blank), 3 when it has errors, 2 when it cannot be\n"
	  "read or is neither.\n" },
	{ "dump", "META [--json]",
	  "Print a metadata device's superblock, bitmap slots and copied/uncopied regions.",
	  O(OPT_JSON), 1, 1, false, cmd_dump,
	  "\n  --json              one JSON object (see dmstream(8) for its keys)\n\n"
	  "The region ranges go through temporary files in $TMPDIR (/tmp), not memory.\n" },
	{ "exceptions", "COW [--origin DEV] [--region-size SIZE] [--json]",
	  "Read a dm-snapshot exception store offline: chunk size, exceptions, changes.",
	  O(OPT_ORIGIN) | O(OPT_REGION_SIZE) | O(OPT_JSON), 1, 1, false, cmd_exceptions,
	  "\n  --origin DEV        the snapshot's origin: old chunks past its end are\n"
	  "                      refused, and changed bytes stop at its end\n"
	  "  --region-size SIZE  count the regions of SIZE a merge copies (default:\n"
	  "                      the chunk size)\n"
	  "  --json              one JSON object (see dmstream(8) for its keys)\n\n"
	  "COW is the snapshot's exception store (a block device or an image), in\n"
	  "the kernel's persistent format. Suspend the snapshot and its origin first,\n"
	  "so that every exception is on disk. Exits 0, 3 when the store is refused\n"
	  "(the reason on stderr), 2 when it cannot be read.\n" },
	{ "list", "[DEV...] [--json]",
	  "Find dm-stream metadata: each stream's name, devices, progress and mode.",
	  O(OPT_JSON), 0, 1024, false, cmd_list,
	  "\nLooks at the named devices, or at every block device of the machine, for\n"
	  "a dm-stream superblock. For each: the stream's name, its progress, its mode\n"
	  "(mirror, one-way or degraded), whether it is active now, and where its\n"
	  "origin and destination are, found by the identities the metadata records.\n\n"
	  "  --json              one JSON array (see dmstream(8) for its keys)\n" },
	{ "assemble", "META [--name NAME] [--timeout SEC]",
	  "Make the stream device of metadata META again, from its identity record.",
	  O(OPT_NAME) | O(OPT_TIMEOUT), 1, 1, false, cmd_assemble,
	  "\nFinds the origin and destination that META records (by dm uuid, then WWN,\n"
	  "serial, PARTUUID, filesystem uuid; the sizes must match), makes copy's\n"
	  "helper origin again if it is gone, and creates the stream with its table as\n"
	  "it was made: region size, options, rates, max_inflight (not changes made\n"
	  "since by 'set' or 'rate'); mirror only if the origin is not stale. The copy\n"
	  "continues where it stopped. Exits 0 at once when the\n"
	  "stream is already there. Refuses when a device is missing or ambiguous.\n\n"
	  "  --name NAME         the device's name (default: the recorded one)\n"
	  "  --timeout SEC       wait up to SEC seconds for the devices to appear\n" },
	{ "rebind", "META [--origin DEV] [--dest DEV]",
	  "Record a moved origin or destination in the metadata of an inactive stream.",
	  O(OPT_ORIGIN) | O(OPT_DEST), 1, 1, false, cmd_rebind,
	  "\nOnly after a deliberate move or copy of the same content: --origin records\n"
	  "DEV's identity and samples its content again, so that the kernel no longer\n"
	  "refuses it; --dest records DEV's identity. The sizes must be the recorded\n"
	  "ones. The stream must not be active.\n" },
	{ "help", "[COMMAND]", "Show the commands, or one command's help.", 0, 0, 1, false, cmd_help, NULL },
	{ "version", "", "Show the version.", 0, 0, 0, false, cmd_version, NULL },
};

#define NR_COMMANDS	(sizeof(commands) / sizeof(commands[0]))

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void usage_all(FILE *f)
{
	size_t i;

	fprintf(f, "usage: %s [-v] COMMAND [ARGS]\n\n"
		"Create, follow and finish dm-stream devices.\n\nCommands:\n", progname);
	for (i = 0; i < NR_COMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nOptions:\n"
		"  -v, --verbose   more messages (twice: libdevmapper's too)\n"
		"  -h, --help      this text; '%s COMMAND --help' for a command\n"
		"  -V, --version   the version\n\n"
		"Exit codes: 0 success, 1 usage error, 2 failure, 3 metadata damaged or\n"
		"foreign, 4 copy failed, 5 timeout or interrupted, 6 copy not complete,\n"
		"7 abort refused: the origin may lack writes.\n"
		"See dmstream(8).\n", progname);
}

/*
 * After getopt_long() returned '?': names the option as the user typed it.
 * optopt is the character of a bad short option; for a long option it is
 * 0 (unknown or ambiguous), or the option's value when it was given a
 * "=VALUE" it does not take. A long option is a whole word, which getopt
 * has stepped past: argv[optind - 1].
 */
static int bad_option(const struct command *cmd, const struct option *longopts, char **argv)
{
	const struct option *lo;

	for (lo = longopts; optopt && lo->name; lo++)
		if (lo->val == optopt && lo->has_arg == no_argument)
			return usage_error(cmd, "option '--%s' takes no value (given '%s')",
					   lo->name, argv[optind - 1]);
	if (optopt > 0 && optopt < 128 && isprint(optopt))
		return usage_error(cmd, "unknown option '-%c'", optopt);
	if (optopt)
		return usage_error(cmd, "unknown option character 0x%02x",
				   (unsigned int)(unsigned char)optopt);
	return usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
}

/* What parse_command() returns for -h or --help: not an exit code. */
#define HELP_REQUESTED	(-100)

/* Where an option that takes no value sets a flag in @o; NULL for others. */
static bool *flag_of(struct opts *o, int id)
{
	bool *const flags[OPT_MAX] = {
		[OPT_PAUSED] = &o->paused, [OPT_FORCE] = &o->force, [OPT_FINISH] = &o->finish,
		[OPT_WATCH] = &o->watch, [OPT_JSON] = &o->json, [OPT_PROGRESS] = &o->progress,
		[OPT_QUIET] = &o->quiet, [OPT_SB_ONLY] = &o->sb_only,
		[OPT_IGNORE_NONFATAL] = &o->ignore_nonfatal, [OPT_MIRROR] = &o->mirror,
		[OPT_NO_MIRROR] = &o->no_mirror, [OPT_ROLLBACK] = &o->rollback,
		[OPT_COPY_ON_READ] = &o->copy_on_read, [OPT_SKIP_ZEROES] = &o->skip_zeroes,
	};

	return id > 0 && id < OPT_MAX ? flags[id] : NULL;
}

/* An option into @o, or a usage error. */
static int set_option(const struct command *cmd, struct opts *o, int id, char *arg)
{
	bool *flag;

	switch (id) {
	case OPT_ORIGIN:
		o->origin = arg;
		break;
	case OPT_DEST:
		o->dest = arg;
		break;
	case OPT_META:
		o->meta = arg;
		break;
	case OPT_NAME:
		o->name = arg;
		break;
	case OPT_COPIED:
		o->copied = arg;
		break;
	case OPT_COPIED_FROM:
		o->copied_from = arg;
		break;
	case OPT_REGION_SIZE:
		if (parse_size(arg, &o->region_bytes) || !o->region_bytes)
			return usage_error(cmd, "invalid region size '%s': e.g. 64k, 1M", arg);
		break;
	case OPT_RATE:
		o->rate_set = true;
		return rate_arg(cmd, arg, &o->rate_kib);
	case OPT_MIN_RATE:
		o->min_rate_set = true;
		return rate_arg(cmd, arg, &o->min_rate_kib);
	case OPT_MAX_RATE:
		o->max_rate_set = true;
		return rate_arg(cmd, arg, &o->max_rate_kib);
	case OPT_SET_COPY_ON_READ:
		if (strcmp(arg, STREAM_MSG_ON) && strcmp(arg, STREAM_MSG_OFF))
			return usage_error(cmd, "invalid --copy-on-read '%s': on or off", arg);
		o->copy_on_read_set = !strcmp(arg, STREAM_MSG_ON);
		break;
	case OPT_MAX_INFLIGHT:
		if (parse_u64(arg, STREAM_MIN_MAX_INFLIGHT, STREAM_MAX_MAX_INFLIGHT,
			      &o->max_inflight))
			return usage_error(cmd, "invalid --max-inflight '%s': "
					   XSTR(STREAM_MIN_MAX_INFLIGHT) " to "
					   XSTR(STREAM_MAX_MAX_INFLIGHT), arg);
		break;
	case OPT_INTERVAL:
		if (parse_seconds(arg, &o->interval))
			return usage_error(cmd, "invalid --interval '%s': seconds", arg);
		break;
	case OPT_TIMEOUT:
		if (parse_seconds(arg, &o->timeout) || o->timeout <= 0)
			return usage_error(cmd, "invalid --timeout '%s': seconds above 0", arg);
		break;
	default:
		flag = flag_of(o, id);
		if (flag)
			*flag = true;
	}
	return 0;
}

/*
 * Parses a command's options and positional arguments into @o. Returns 0,
 * an exit code, or HELP_REQUESTED.
 */
static int parse_command(const struct command *cmd, int argc, char **argv, struct opts *o,
			 int *first_arg)
{
	struct option longopts[OPT_MAX + 1];
	size_t i, n = 0;
	int c, nargs, r;

	for (i = 0; i < sizeof(all_options) / sizeof(all_options[0]); i++)
		if (all_options[i].val == OPT_HELP || (cmd->options & O(all_options[i].val)))
			longopts[n++] = all_options[i];
	memset(&longopts[n], 0, sizeof(longopts[n]));

	memset(o, 0, sizeof(*o));
	o->interval = -1;
	o->copy_on_read_set = -1;
	optind = 0;	/* full reinitialisation, after main()'s parse */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h' || c == OPT_HELP)
			return HELP_REQUESTED;
		if (c == ':')
			return usage_error(cmd, "option '%s' needs an argument", argv[optind - 1]);
		if (c <= 0 || c >= OPT_MAX)
			return bad_option(cmd, longopts, argv);
		if ((r = set_option(cmd, o, c, optarg)))
			return r;
	}
	nargs = argc - optind;
	if (nargs < cmd->min_args)
		return usage_error(cmd, "missing argument%s", cmd->min_args - nargs > 1 ? "s" : "");
	if (nargs > cmd->max_args)
		return usage_error(cmd, "unexpected argument '%s'", argv[optind + cmd->max_args]);
	*first_arg = optind;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option global[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd;
	struct opts o;
	int c, first = 0, r;

	/* Global options stop at the command ("+"). */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+vhV", global, NULL)) != -1) {
		switch (c) {
		case 'v':
			verbose++;
			break;
		case 'h':
			usage_all(stdout);
			return EXIT_OK;
		case 'V':
			return cmd_version(NULL, NULL, 0, NULL);
		default:
			return bad_option(NULL, global, argv);
		}
	}
	if (optind >= argc) {
		usage_all(stderr);
		return EXIT_USAGE;
	}
	cmd = find_command(argv[optind]);
	if (!cmd)
		return usage_error(NULL, "unknown command '%s'", argv[optind]);

	/* The command's own argv: its name, then its words. GNU getopt
	 * permutes, so options may follow NAME; "--" ends them. */
	argc -= optind;
	argv += optind;
	r = parse_command(cmd, argc, argv, &o, &first);
	if (r == HELP_REQUESTED) {
		char *self[] = { (char *)cmd->name };

		return cmd_help(NULL, NULL, 1, self);
	}
	if (r)
		return r;
	if (cmd->name_first && (r = check_name(cmd, &argv[first])))
		return r;
	if (meta_crc_selftest())
		return EXIT_FAIL;
	dmx_init();
	return cmd->fn(cmd, &o, argc - first, argv + first);
}
