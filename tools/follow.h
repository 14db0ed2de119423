/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmstream: following a stream device until its copy completes or fails.
 */
#ifndef DMSTREAM_FOLLOW_H
#define DMSTREAM_FOLLOW_H

#include <stdbool.h>

/*
 * Sleeps on stream device @name's dm events until its copy is complete,
 * has failed (ro or fail mode) or stalled, @timeout seconds passed (0:
 * none), or SIGINT or SIGTERM came. With @show, shows the progress on
 * stdout meanwhile, every @interval seconds (1 when not above 0): one JSON
 * object a line with @json, else a bar on a terminal, else plain lines.
 * Returns EXIT_OK when complete; EXIT_COPY_FAILED, EXIT_TIMEOUT or
 * EXIT_FAIL with the reason printed.
 */
int follow_stream(const char *name, double timeout, bool show, bool json, double interval);

#endif /* DMSTREAM_FOLLOW_H */
