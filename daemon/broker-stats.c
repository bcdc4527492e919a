/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The broker's status figures: what `status` and the Statistics D-Bus
 * property report of the connector, the process table and every part.
 */
#include "broker-internal.h"
#include "common/clock.h"

static void broker_add_tgid(const ProcEntry *e, void *ctx) {
        *(uint64_t *) ctx += (uint64_t) e->tgid;
}

void broker_visit_stats(void *userdata, const StatsVisitor *v) {
        Broker *b = userdata;
        const CnprocStats *cs = cnproc_get_stats(b->cnproc);
        const ProcTableStats *ts = proctable_get_stats(b->table);
        const DispatcherStats *ds = dispatcher_get_stats(b->dispatcher);

        stats_str(v, "version", PROCNOTIFY_VERSION);
        stats_str(v, "instance_id", b->instance_id);
        stats_uint(v, "uptime_ns", clock_ns(CLOCK_MONOTONIC) - b->started_ns);
        stats_uint(v, "seq", dispatcher_last_seq(b->dispatcher));
        stats_section_begin(v, "kernel_features");
        stats_kernel_features(v, &b->features);
        stats_section_end(v);
        stats_bool(v, "sees_all", v->sees_all);
        stats_section_begin(v, "connector");
        /* What the kernel reported of every process on the host: its rate is
         * other users' activity. Loss is everyone's (overruns go to all). */
        if (v->sees_all)
                stats_uint(v, "received", cs->received);
        stats_uint(v, "lost", cs->lost);
        stats_uint(v, "enobufs", cs->enobufs);
        stats_uint(v, "resets", cs->resets);
        stats_uint(v, "malformed", cs->malformed);
        stats_uint(v, "receive_buffer", cs->receive_buffer);
        stats_uint(v, "overrun_events", b->overrun_events);
        stats_section_end(v);
        if (v->sees_all) {
                /* Every figure below describes processes of any user. */
                stats_section_begin(v, "process_table");
                stats_uint(v, "entries", ts->entries);
                /* With entries, a fingerprint of the table that tests compare with
                 * /proc: one pass over the table, only when status is asked for. */
                uint64_t tgid_sum = 0;
                proctable_foreach(b->table, broker_add_tgid, &tgid_sum);
                stats_uint(v, "tgid_sum", tgid_sum);
                stats_uint(v, "resyncs", ts->resyncs);
                stats_uint(v, "inferred_exits", ts->inferred_exits);
                stats_uint(v, "adoptions", ts->adoptions);
                stats_uint(v, "full", ts->full);
                stats_uint(v, "merged_exits", ts->merged_exits);
                stats_uint(v, "unmerged_exits", ts->unmerged_exits);
                stats_uint(v, "merged_predumps", ts->merged_predumps);
                stats_uint(v, "unmerged_predumps", ts->unmerged_predumps);
                stats_uint(v, "merged_adoptions", ts->merged_adoptions);
                stats_uint(v, "unmerged_adoptions", ts->unmerged_adoptions);
                stats_uint(v, "deferred_full", ts->deferred_full);
                stats_uint(v, "lost", ts->lost);
                stats_section_end(v);
                if (b->watches)
                        watch_table_visit_stats(b->watches, v);
                stats_section_begin(v, "events");
                for (int t = 0; t < _PN_EVENT_TYPE_MAX; t++)
                        stats_uint(v, pn_event_type_to_string(t), ds->events[t]);
                stats_section_end(v);
        }
        if (b->supervisor && v->sees_all)
                supervisor_visit_stats(b->supervisor, v);
        if (b->sink_socket)
                sink_socket_visit_stats(b->sink_socket, v);
        if (b->sink_dbus)
                sink_dbus_visit_stats(b->sink_dbus, v);
        if (b->sink_journal)
                sink_journal_visit_stats(b->sink_journal, v);
}
