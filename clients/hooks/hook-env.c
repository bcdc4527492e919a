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

#include "common/macro.h"
#include "hook-env.h"
#include "hook-file.h"
#include "protocol/request.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_object *, json_object_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, hook_strv_free)

static bool field_name_is_valid(const char *s) {
        return *s && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(s);
}

/* The text of a scalar value: strings as they are, null as "". */
static const char *value_text(struct json_object *v) {
        if (!v)
                return "";
        if (json_object_is_type(v, json_type_string))
                return json_object_get_string(v);
        return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE);
}

static char *entry_new(const char *field, struct json_object *v) {
        size_t n = strlen(HOOK_ENV_PREFIX) + strlen(field) + 1;
        char *e;

        if (json_object_is_type(v, json_type_array)) {
                size_t len = json_object_array_length(v), total = n + 1;
                for (size_t i = 0; i < len; i++)
                        total += strlen(value_text(json_object_array_get_idx(v, i))) + 1;
                e = malloc(total);
                if (!e)
                        return NULL;
                char *p = e + snprintf(e, total, HOOK_ENV_PREFIX "%s=", field);
                for (size_t i = 0; i < len; i++) {
                        const char *t = value_text(json_object_array_get_idx(v, i));
                        if (i > 0)
                                *p++ = ',';
                        p = stpcpy(p, t);
                }
                *p = 0;
        } else {
                const char *t = value_text(v);
                size_t total = n + strlen(t) + 1;
                e = malloc(total);
                if (!e)
                        return NULL;
                snprintf(e, total, HOOK_ENV_PREFIX "%s=%s", field, t);
        }
        /* Upper-case the name only. */
        for (char *p = e + strlen(HOOK_ENV_PREFIX); *p != '='; p++)
                if (*p >= 'a' && *p <= 'z')
                        *p = (char) (*p - 'a' + 'A');
        return e;
}

int hook_env_from_event(const char *line, size_t len, char ***ret) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        _cleanup_(hook_strv_freep) char **env = NULL;
        struct json_tokener *tok;
        size_t n = 0;

        if (len >= PN_MAX_LINE)
                return -EBADMSG;
        tok = json_tokener_new_ex(PN_MAX_JSON_DEPTH);
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, line, (int) len);
        bool complete = o && json_tokener_get_parse_end(tok) == len;
        json_tokener_free(tok);
        if (!complete || !json_object_is_type(o, json_type_object))
                return -EBADMSG;

        env = calloc(HOOK_ENV_MAX_FIELDS + 1, sizeof(char *));
        if (!env)
                return -ENOMEM;
        json_object_object_foreach(o, key, val) {
                if (n == HOOK_ENV_MAX_FIELDS)
                        break;
                if (!field_name_is_valid(key))
                        continue;
                env[n] = entry_new(key, val);
                if (!env[n])
                        return -ENOMEM;
                n++;
        }
        *ret = TAKE_PTR(env);
        return 0;
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
