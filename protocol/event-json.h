/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The JSON form of an event (protocol v1, see PROTOCOL.md): encoding for the
 * broker, decoding for clients. Pure: no I/O, no logging.
 */
#pragma once

#include "jsonbuf.h"
#include "procnotify/event.h"

struct json_object;

/* Append ev as one JSON object followed by '\n'. Check jsonbuf_failed(). */
void event_json_format(JsonBuf *b, const PnEvent *ev);

/*
 * Fill ev from a parsed JSON object of an event message. Strings in ev point
 * into obj and live as long as it does. Returns 0, or -EBADMSG when obj is not
 * an event (no known "type").
 */
int event_json_parse(struct json_object *obj, PnEvent *ev);

/* The inverse of event_json_format_time(): nanoseconds (microsecond
 * precision), 0 if s is not of that form. */
uint64_t event_json_parse_time(const char *s);

/* Format a CLOCK_REALTIME nanosecond count as RFC 3339 UTC with microseconds. */
void event_json_format_time(char buf[static 32], uint64_t time_ns);
