/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ctl-journal implementation; see ctl-journal.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-journal.h>

#include "common/macro.h"
#include "ctl-journal.h"
#include "protocol/event-fields.h"


int ctl_journal_list(uint64_t since_usec, const char *directory, CtlJournalFn fn, void *userdata) {
        static const char *const ids[] = {
                "MESSAGE_ID=" EVENT_JOURNAL_ID_PREDUMP, "MESSAGE_ID=" EVENT_JOURNAL_ID_CRASH,
                "MESSAGE_ID=" EVENT_JOURNAL_ID_ADOPT, "MESSAGE_ID=" EVENT_JOURNAL_ID_OVERRUN,
        };
        _cleanup_(sd_journal_closep) sd_journal *j = NULL;
        int r;

        r = directory ? sd_journal_open_directory(&j, directory, 0)
                      : sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
        if (r < 0)
                return r;
        /* Values of one field are alternatives. */
        for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                r = sd_journal_add_match(j, ids[i], 0);
                if (r < 0)
                        return r;
        }
        r = since_usec ? sd_journal_seek_realtime_usec(j, since_usec) : sd_journal_seek_head(j);
        if (r < 0)
                return r;
        while ((r = sd_journal_next(j)) > 0) {
                const void *data;
                size_t len;
                uint64_t t;

                /* A seek lands near the time, not at it. */
                if (since_usec && sd_journal_get_realtime_usec(j, &t) >= 0 && t < since_usec)
                        continue;
                if (sd_journal_get_data(j, "PROCNOTIFY_JSON", &data, &len) < 0)
                        continue;
                const size_t skip = strlen("PROCNOTIFY_JSON=");
                r = fn((const char *) data + skip, len - skip, userdata);
                if (r < 0)
                        return r;
        }
        return r;
}

int ctl_journal_parse_since(const char *s, uint64_t now_usec, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "s", 1000000ULL }, { "sec", 1000000ULL }, { "min", 60000000ULL },
                { "m", 60000000ULL }, { "h", 3600000000ULL }, { "d", 86400000000ULL },
        };
        struct tm tm = { 0 };
        time_t now = (time_t) (now_usec / 1000000);
        const char *end;

        if (!s || !*s)
                return -EINVAL;
        if (s[0] == '-') {
                char *e;
                errno = 0;
                unsigned long long n = strtoull(s + 1, &e, 10);
                if (errno || e == s + 1 || s[1] == '-' || s[1] == '+')
                        return -EINVAL;
                for (size_t i = 0; i < ELEMENTSOF(units); i++)
                        if (streq(e, units[i].suffix)) {
                                if (n > now_usec / units[i].usec)
                                        return -EINVAL;
                                *ret = now_usec - n * units[i].usec;
                                return 0;
                        }
                return -EINVAL;
        }
        if (streq(s, "today") || streq(s, "yesterday")) {
                localtime_r(&now, &tm);
                tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
                if (streq(s, "yesterday"))
                        tm.tm_mday--;
        } else {
                end = strptime(s, "%Y-%m-%d", &tm);
                if (!end)
                        return -EINVAL;
                if (*end) {
                        const char *e2 = strptime(end, " %H:%M:%S", &tm);
                        if (!e2)
                                e2 = strptime(end, " %H:%M", &tm);
                        if (!e2 || *e2)
                                return -EINVAL;
                }
        }
        tm.tm_isdst = -1;
        time_t t = mktime(&tm);
        if (t == (time_t) -1 || t < 0)
                return -EINVAL;
        *ret = (uint64_t) t * 1000000ULL;
        return 0;
}
