/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Logging for the top of the daemon (broker*.c, main.c) and the clients; the
 * library parts never log. One line per message on stderr; when stderr is
 * the journal (JOURNAL_STREAM) each line carries a "<N>" priority prefix,
 * otherwise a program-name prefix for humans.
 */
#pragma once

#include <syslog.h>

#include "common/macro.h"

void log_setup(const char *program);
void log_set_max_level(int level);
/* "err", "warning", … "debug" (syslog names) to a LOG_* level, or -EINVAL. */
int log_level_from_string(const char *s);
int log_get_max_level(void);

/* Log at level; if error != 0, errno is set to |error| for "%m". Returns -|error|. */
int log_internal(int level, int error, const char *fmt, ...) _printf_(3, 4);

/* Log each line of text (lines end with '\n') as its own message, after
 * prefix: one journal entry a line, as multi-line text never makes. */
void log_lines(int level, const char *prefix, const char *text);

#define log_full_errno(level, error, ...)                                         \
        ({                                                                        \
                int _l = (level);                                                 \
                int _e = (error);                                                 \
                _l <= log_get_max_level() ? log_internal(_l, _e, __VA_ARGS__)     \
                                          : -((_e) < 0 ? -(_e) : (_e));           \
        })

#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)
