/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Event fields; see event-fields.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/json-util.h"
#include "common/macro.h"
#include "event-fields.h"
#include "request.h"


char **event_fields_free(char **fields) {
        for (size_t i = 0; fields && fields[i]; i++)
                free(fields[i]);
        free(fields);
        return NULL;
}

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

static char *entry_new(const char *prefix, const char *field, struct json_object *v) {
        size_t n = strlen(prefix) + strlen(field) + 1;
        char *e;

        if (json_object_is_type(v, json_type_array)) {
                size_t len = json_object_array_length(v), total = n + 1;
                for (size_t i = 0; i < len; i++)
                        total += strlen(value_text(json_object_array_get_idx(v, i))) + 1;
                e = malloc(total);
                if (!e)
                        return NULL;
                char *p = e + snprintf(e, total, "%s%s=", prefix, field);
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
                snprintf(e, total, "%s%s=%s", prefix, field, t);
        }
        /* Upper-case the name only. */
        for (char *p = e + strlen(prefix); *p != '='; p++)
                if (*p >= 'a' && *p <= 'z')
                        *p = (char) (*p - 'a' + 'A');
        return e;
}

int event_fields_from_line(const char *line, size_t len, const char *prefix, char ***ret) {
        _cleanup_(json_object_putp) struct json_object *o = NULL;
        _cleanup_(event_fields_freep) char **env = NULL;
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

        env = calloc(EVENT_FIELDS_MAX + 1, sizeof(char *));
        if (!env)
                return -ENOMEM;
        json_object_object_foreach(o, key, val) {
                if (n == EVENT_FIELDS_MAX)
                        break;
                if (!field_name_is_valid(key))
                        continue;
                env[n] = entry_new(prefix, key, val);
                if (!env[n])
                        return -ENOMEM;
                n++;
        }
        *ret = TAKE_PTR(env);
        return 0;
}

