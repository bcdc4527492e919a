/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An event as flat NAME=value fields, named after its JSON members: the one
 * mapping behind hook environments (PROCNOTIFY_EXIT_CODE=139) and journal
 * entries (the same names), so that a field reads the same wherever it is
 * met. Pure: no I/O, no logging.
 */
#pragma once

#include <stddef.h>

#include "common/macro.h"

#define EVENT_FIELDS_MAX 128 /* members of an event taken */

/* MESSAGE_ID= of procnotifyd's journal entries (procnotifyd(8) lists them),
 * as the broker writes them and procnotifyctl list reads them. */
#define EVENT_JOURNAL_ID_PREDUMP "81474ad908af49f0be087c384d60e564"
#define EVENT_JOURNAL_ID_CRASH "d9d1079b5bf64b9e899f9d6636e82516" /* an exit by a signal */
#define EVENT_JOURNAL_ID_ADOPT "e238efbf21884c86b69fe817888cf8c7"
#define EVENT_JOURNAL_ID_OVERRUN "ba007ada19504adebb897b30b54efcd0"

/*
 * One "<prefix><FIELD>=<value>" entry for each top-level member of the
 * event's JSON line (len bytes, no newline), in the line's order: FIELD is
 * the member's name upper-cased ("exit_code" → EXIT_CODE). Values: a string
 * as it is (up to an embedded NUL), a number as written, true/false, null as
 * the empty string, an array as its elements joined with ","
 * ("connector,pidfd"), an object as its JSON text. Members whose name is not
 * of [a-z0-9_] are left out. Returns 0 and a NULL-terminated array (free
 * with event_fields_free()), -EBADMSG if the line is not a JSON object, or
 * -ENOMEM.
 */
int event_fields_from_line(const char *line, size_t len, const char *prefix, char ***ret);
char **event_fields_free(char **fields);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, event_fields_free)
