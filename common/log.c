/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Logging for the daemon and the clients: journal-friendly lines (<N>
 * prefixes) on stderr; see log.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"

static const char *log_program = "procnotify";
static int log_max_level = LOG_INFO;
static bool log_to_journal;

void log_setup(const char *program) {
        const char *js = getenv("JOURNAL_STREAM");
        struct stat st;
        unsigned long dev, ino;

        log_program = program;
        /* The journal sets JOURNAL_STREAM=dev:ino for the stream it gave us. */
        if (js && sscanf(js, "%lu:%lu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0)
                log_to_journal = st.st_dev == dev && st.st_ino == ino;
}

int log_level_from_string(const char *s) {
        static const char *const levels[] = { "emerg", "alert", "crit", "err",
                                              "warning", "notice", "info", "debug" };
        for (int i = 0; i < 8; i++)
                if (strcmp(s, levels[i]) == 0)
                        return i;
        return -EINVAL;
}

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

int log_internal(int level, int error, const char *fmt, ...) {
        static const char *const names[] = { "emerg", "alert", "crit", "error",
                                             "warning", "notice", "info", "debug" };
        char msg[2048];
        va_list ap;

        if (error < 0)
                error = -error;
        errno = error;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (log_to_journal)
                fprintf(stderr, "<%d>%s\n", level, msg);
        else if (level <= LOG_WARNING || level == LOG_DEBUG)
                fprintf(stderr, "%s: %s: %s\n", log_program, names[level & 7], msg);
        else
                fprintf(stderr, "%s: %s\n", log_program, msg);
        return -error;
}

void log_lines(int level, const char *prefix, const char *text) {
        while (text && *text) {
                const char *nl = strchrnul(text, '\n');
                int len = (int) (nl - text);
                if (level <= log_get_max_level())
                        (void) log_internal(level, 0, "%s%.*s", prefix, len, text);
                text = *nl ? nl + 1 : nl;
        }
}
