// SPDX-License-Identifier: GPL-2.0
/*
 * dmstream: following a stream device, `status` and `wait`.
 *
 * follow_stream() sleeps on the device's dm events until the copy
 * completes, fails or stalls, or a timeout or signal ends the wait, and
 * shows the progress meanwhile when asked; `status --watch`, `wait` and
 * `copy --finish` all go through it. What a failed or stalled stream looks
 * like is judge()'s to say. The status line and the display are status.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "stream-interface.h"
#include "cli.h"
#include "dm.h"
#include "follow.h"
#include "status.h"
#include "util.h"

/*---------------------------------------------------------------------------*/
/* Signals: SIGALRM and SIGINT/SIGTERM interrupt the event wait. */
static volatile sig_atomic_t interrupted;

static void on_alarm(int sig)
{
	(void)sig;
}

static void on_interrupt(int sig)
{
	interrupted = sig;
	/* Should the signal land just before the wait starts, the alarm ends it. */
	alarm(1);
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: the waitevent ioctl must return EINTR. */
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = on_interrupt;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* Interrupts the next wait after @sec seconds, then every 0.25 s. */
static void arm_timer(double sec)
{
	struct itimerval it = { 0 };

	if (sec > 0) {
		if (sec < 0.001)
			sec = 0.001;
		it.it_value.tv_sec = (time_t)sec;
		it.it_value.tv_usec = (suseconds_t)((sec - (time_t)sec) * 1e6);
		it.it_interval.tv_usec = 250000;
	}
	setitimer(ITIMER_REAL, &it, NULL);
}

static void sleep_seconds(double sec)
{
	struct timespec ts = { (time_t)sec, (long)((sec - (time_t)sec) * 1e9) };

	while (nanosleep(&ts, &ts) && errno == EINTR && !interrupted)
		;
}

/*---------------------------------------------------------------------------*/
/* Following a stream until it completes or fails */
enum verdict { V_RUNNING, V_COMPLETE, V_FAILED };

struct follow {
	const char *name;
	struct progress *prog;	/* NULL: silent */
	double timeout;		/* 0: none */
	double interval;	/* display refresh; 0: events only */
	/*
	 * For telling a stalled target from a slow one, when the kernel's
	 * target is older than 2.1 and has no state "stalled".
	 */
	bool guess_stall;
	double suspect_since;
	uint64_t suspect_copied;
	bool said_paused;
};

/* Why a stalled stream stopped, and what starts it again. */
static void stalled_why(const char *name, const struct stream_status *st, char *why,
			size_t len)
{
	snprintf(why, len, "%s stalled: %" PRIu64 " regions could not be copied (%" PRIu64 "/%"
		 PRIu64 " copied; see dmesg): the origin failed, most likely. Fix it, then "
		 "'%s continue %s' copies the rest", name, st->errors, st->copied, st->total,
		 progname, name);
}

/*
 * A stream that can no longer complete by itself or be finished: metadata
 * or destination failure (fail or ro mode, complete or not), or stalled:
 * the state says so (target 2.1); an older target shows only copy errors
 * with nothing in flight and no progress (the kernel raised an event, too).
 */
static enum verdict judge(struct follow *f, const struct stream_status *st,
			  const struct dmx_info *info, double now, double *recheck,
			  char *why, size_t len)
{
	double window;

	*recheck = 0;
	if (st->fail) {
		snprintf(why, len, "the metadata device failed: %s is in fail mode and every "
			 "I/O to it fails (see dmesg)", f->name);
		return V_FAILED;
	}
	/* Even when every region is copied: finish refuses ro mode. */
	if (!strcmp(st->mode, "ro")) {
		snprintf(why, len, "the metadata or destination device cannot be written: %s is "
			 "in ro mode, stopped copying and cannot be finished (see dmesg)", f->name);
		return V_FAILED;
	}
	if (!strcmp(st->state, STREAM_STATE_COMPLETE))
		return V_COMPLETE;
	if (!strcmp(st->state, STREAM_STATE_STALLED)) {
		stalled_why(f->name, st, why, len);
		return V_FAILED;
	}
	if (!f->guess_stall || !strcmp(st->state, STREAM_STATE_PAUSED) || info->suspended ||
	    !st->errors || st->copying) {
		f->suspect_since = 0;
		if (!strcmp(st->state, "paused") && !f->said_paused && !f->prog) {
			warn("%s is paused: waiting until '%s continue %s'", f->name, progname,
			     f->name);
			f->said_paused = true;
		}
		return V_RUNNING;
	}
	/* Errors, nothing copying: stalled unless copying resumes shortly. A
	 * rate limit may leave gaps of one region's worth of time. */
	window = 2;
	if (st->rate)
		window += 2.0 * st->region_size * 512 / (st->rate * 1024.0);
	if (!f->suspect_since || st->copied != f->suspect_copied) {
		f->suspect_since = now;
		f->suspect_copied = st->copied;
	}
	if (now - f->suspect_since >= window) {
		stalled_why(f->name, st, why, len);
		return V_FAILED;
	}
	*recheck = f->suspect_since + window - now + 0.05;
	return V_RUNNING;
}

/* Ends the display, then says why the following ended (NULL: said already). */
static int follow_end(struct follow *f, int r, const char *why)
{
	if (f->prog)
		progress_done(f->prog);
	if (why)
		err("%s", why);
	return r;
}

/*
 * Sleeps on the device's events; a timer ends the sleep early for the
 * display, a stall check (@recheck) or the timeout. Returns what
 * dmx_wait_event() does.
 */
static int follow_sleep(struct follow *f, uint32_t event_nr, double elapsed, double recheck)
{
	double next = f->interval;
	int r;

	if (recheck && (!next || recheck < next))
		next = recheck;
	if (f->timeout) {
		double left = f->timeout - elapsed;

		if (!next || left < next)
			next = left;
	}
	arm_timer(next);
	r = dmx_wait_event(f->name, event_nr);
	arm_timer(0);
	return r;
}

static int follow(struct follow *f)
{
	struct stream_status st;
	struct dmx_info info;
	double start = now_monotonic(), now, recheck;
	char why[512];
	enum verdict v;

	install_signals();
	for (;;) {
		/* As ever, a status that cannot be read leaves the bar as it is. */
		if (stream_get(f->name, &st, &info))
			return EXIT_FAIL;
		now = now_monotonic();
		if (f->prog)
			progress_update(f->prog, &st, now);
		v = judge(f, &st, &info, now, &recheck, why, sizeof(why));
		if (v == V_COMPLETE)
			return follow_end(f, EXIT_OK, NULL);
		if (v == V_FAILED)
			return follow_end(f, EXIT_COPY_FAILED, why);
		if (interrupted) {
			snprintf(why, sizeof(why), "%s: interrupted at %" PRIu64 "/%" PRIu64
				 " regions", f->name, st.copied, st.total);
			return follow_end(f, EXIT_TIMEOUT, why);
		}
		if (f->timeout && now - start >= f->timeout) {
			snprintf(why, sizeof(why), "%s: timed out after %g s at %" PRIu64 "/%" PRIu64
				 " regions copied", f->name, f->timeout, st.copied, st.total);
			return follow_end(f, EXIT_TIMEOUT, why);
		}
		if (follow_sleep(f, info.event_nr, now - start, recheck) < 0)
			return follow_end(f, EXIT_FAIL, NULL);
	}
}

int follow_stream(const char *name, double timeout, bool show, bool json, double interval)
{
	struct follow f = { .name = name, .timeout = timeout };
	struct progress prog;
	uint32_t v[3];

	f.guess_stall = dmx_target_version(STREAM_TARGET_NAME, v) != 1 ||
			(v[0] == STREAM_TARGET_VERSION_MAJOR && v[1] < 1);

	if (show) {
		progress_init(&prog, name, json ? PROGRESS_JSON :
			      isatty(STDOUT_FILENO) ? PROGRESS_BAR : PROGRESS_LINES, stdout);
		f.prog = &prog;
		f.interval = interval > 0 ? interval : 1;
	}
	return follow(&f);
}

/*---------------------------------------------------------------------------*/
/* status, wait */
int cmd_status(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	struct stream_status st;
	struct dmx_info info;
	struct progress prog;
	char *name = argv[0];

	(void)cmd;
	(void)argc;
	if (o->watch)
		return follow_stream(name, 0, true, o->json, o->interval);

	if (o->interval < 0)
		o->interval = 1;
	progress_init(&prog, name, o->json ? PROGRESS_JSON : PROGRESS_LINES, stdout);
	if (stream_get(name, &st, &info))
		return EXIT_FAIL;
	progress_sample(&prog, &st, now_monotonic());
	/* The current rate needs a second look, while something is moving. */
	if (o->interval > 0 && !st.fail && !strcmp(st.state, "streaming") && !info.suspended) {
		sleep_seconds(o->interval);
		if (stream_get(name, &st, &info))
			return EXIT_FAIL;
		progress_sample(&prog, &st, now_monotonic());
	}
	progress_show(&prog, &st);
	if (!o->json && !strcmp(st.state, STREAM_STATE_STALLED))
		printf("%s: copying stopped: a copy failed every try (the origin failed, most "
		       "likely; see dmesg). Fix it, then '%s continue %s' copies the rest\n", name,
		       progname, name);
	return EXIT_OK;
}

int cmd_wait(const struct command *cmd, struct opts *o, int argc, char **argv)
{
	(void)cmd;
	(void)argc;
	return follow_stream(argv[0], o->timeout, o->progress, o->json, o->interval);
}
