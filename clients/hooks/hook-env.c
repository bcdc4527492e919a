/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Hook environments; see hook-env.h. The event's variables are made from its
 * JSON line member by member, so that their names are the protocol's by
 * construction, for event types and fields of newer brokers too.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/json-util.h"
#include "common/macro.h"
#include "hook-env.h"
#include "hook-file.h"
#include "protocol/event-fields.h"


int hook_env_from_event(const char *line, size_t len, char ***ret) {
        return event_fields_from_line(line, len, HOOK_ENV_PREFIX, ret);
}

static bool is_runner_only(const char *e) {
        static const char *const prefixes[] = {"NOTIFY_SOCKET=", "LISTEN_", "WATCHDOG_",
                                               HOOK_ENV_PREFIX};
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                if (strncmp(e, prefixes[i], strlen(prefixes[i])) == 0)
                        return true;
        return false;
}

static bool overridden(const char *e, char *const *overrides) {
        const char *eq = strchr(e, '=');
        size_t n = eq ? (size_t) (eq - e) + 1 : strlen(e);
        for (size_t i = 0; overrides && overrides[i]; i++)
                if (strncmp(e, overrides[i], n) == 0)
                        return true;
        return false;
}

static size_t strv_length(char *const *v) {
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

int hook_env_build(char ***ret, char *const *inherited, char *const *overrides,
                   char *const *event) {
        size_t total = strv_length(inherited) + strv_length(overrides) + strv_length(event), n = 0;
        _cleanup_(hook_strv_freep) char **env = calloc(total + 1, sizeof(char *));

        if (!env)
                return -ENOMEM;
        for (size_t i = 0; inherited && inherited[i]; i++) {
                if (!strchr(inherited[i], '=') || is_runner_only(inherited[i]) ||
                    overridden(inherited[i], overrides))
                        continue;
                if (!(env[n++] = strdup(inherited[i])))
                        return -ENOMEM;
        }
        for (size_t i = 0; overrides && overrides[i]; i++)
                if (!(env[n++] = strdup(overrides[i])))
                        return -ENOMEM;
        for (size_t i = 0; event && event[i]; i++)
                if (!(env[n++] = strdup(event[i])))
                        return -ENOMEM;
        *ret = TAKE_PTR(env);
        return 0;
}
