/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The run op of the supervisor (see supervisor.h), without waiting inside
 * the loop. A run goes through three steps, each started by an event:
 *
 * 1. the user it runs as is looked up (NSS: getpwnam_r, getgrouplist, which
 *    may ask a remote directory) on a thread of its own (lookup-thread.h);
 *    the loop only reads the result;
 * 2. the child is created (spawn_start(): clone and return) and tracked;
 *    with "follow" the requester gets its subscription now, before any of
 *    the child's events can be published;
 * 3. the child's report pipe (an I/O source) tells whether it reached exec;
 *    its exit, or SUPERVISOR_EXEC_TIMEOUT_MS without a word (taken as
 *    started, as before), answers too. Then the slot is answered.
 *
 * The thread touches nothing but its RunLookup; lookup threads are the only
 * other threads of the broker: the child of step 2 makes only system calls
 * between clone and exec (spawn.c), so a lookup running meanwhile is safe.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syslog.h>
#include <unistd.h>

#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>

#include "common/macro.h"
#include "config.h"
#include "lookup-thread.h"
#include "spawn.h"
#include "supervisor-internal.h"

#define SUPERVISOR_MAX_GROUPS 256
#define SUPERVISOR_EXEC_TIMEOUT_MS 2000
#define JOURNAL_STDOUT "/run/systemd/journal/stdout"

typedef struct RunUser {
        uid_t uid;
        gid_t gid;
        char name[RUN_MAX_NAME + 1];
        char *home, *shell;
        gid_t groups[SUPERVISOR_MAX_GROUPS];
        int n_groups;
} RunUser;

/* Step 1's question (a name, or a uid when name is NULL) and answer: the
 * lookup thread's until it is done, then the loop's. */
typedef struct RunLookup {
        char *user_name;
        int64_t uid;
        RunUser user;
        const char *code;           /* NULL: found */
        char message[256];
} RunLookup;

struct RunJob {
        int n_ref;                  /* the loop's, and the child's until it told */
        RunUser user;               /* step 1's answer */
        Supervisor *s;
        RunJob *next;               /* in s->lookups, during step 1 */
        ControlSlot *slot;
        PeerCreds peer;
        bool follow;
        char name[RUN_MAX_NAME + 1];
        char **argv, **extra;       /* copies: the request is gone after step 1 */
        size_t n_extra;
        LookupThread *lookup;
        sd_event_source *report, *timer;
        Child *child;               /* step 3 */
        char **env;
        SpawnParams params;
        int report_fd;
        bool clone3;
        uint64_t follow_tag;
        char output[512];
};

static void run_user_done(RunUser *u) {
        free(u->home);
        free(u->shell);
        u->home = u->shell = NULL;
}

static char **strv_copy(const char *const *v, size_t n) {
        char **c = calloc(n + 1, sizeof(*c));
        for (size_t i = 0; c && i < n; i++)
                if (!(c[i] = strdup(v[i])))
                        return spawn_env_free(c); /* a NULL-terminated array, as an environment */
        return c;
}

static void run_lookup_free(void *data) {
        RunLookup *l = data;

        if (!l)
                return;
        run_user_done(&l->user);
        free(l->user_name);
        free(l);
}

static RunJob *run_job_unref(RunJob *j) {
        if (!j || --j->n_ref > 0)
                return NULL;
        lookup_thread_free(j->lookup);
        sd_event_source_disable_unref(j->report);
        sd_event_source_disable_unref(j->timer);
        safe_close(j->report_fd);
        control_slot_unref(j->slot);
        run_user_done(&j->user);
        spawn_env_free(j->argv);
        spawn_env_free(j->extra);
        spawn_env_free(j->env);
        free(j);
        return NULL;
}

/* --- step 1: the user, on a thread --- */

/* Resolve the user a child runs as (on the lookup thread). Sets j->code (a
 * PN_ERR_*) and j->message when it cannot. */
static void run_user_resolve(void *data) {
        RunLookup *j = data;
        RunUser *u = &j->user;
        struct passwd pw, *res = NULL;
        char buf[4096];
        int r;

        if (j->user_name)
                r = getpwnam_r(j->user_name, &pw, buf, sizeof(buf), &res);
        else
                r = getpwuid_r((uid_t) j->uid, &pw, buf, sizeof(buf), &res);
        if (r != 0 || !res) {
                j->code = PN_ERR_NOT_FOUND;
                if (j->user_name)
                        snprintf(j->message, sizeof(j->message), "no user \"%s\"", j->user_name);
                else
                        snprintf(j->message, sizeof(j->message), "no user with uid %lld", (long long) j->uid);
                return;
        }
        if (strlen(pw.pw_name) > RUN_MAX_NAME) {
                j->code = PN_ERR_INVALID_REQUEST;
                snprintf(j->message, sizeof(j->message), "user name of uid %u too long", (unsigned) pw.pw_uid);
                return;
        }
        u->uid = pw.pw_uid;
        u->gid = pw.pw_gid;
        strcpy(u->name, pw.pw_name);
        u->home = strdup(pw.pw_dir ? pw.pw_dir : "/");
        u->shell = strdup(pw.pw_shell ? pw.pw_shell : "/bin/sh");
        u->n_groups = SUPERVISOR_MAX_GROUPS;
        if (!u->home || !u->shell) {
                j->code = PN_ERR_INTERNAL;
                snprintf(j->message, sizeof(j->message), "out of memory");
                return;
        }
        if (getgrouplist(pw.pw_name, pw.pw_gid, u->groups, &u->n_groups) < 0) {
                j->code = PN_ERR_INVALID_REQUEST;
                snprintf(j->message, sizeof(j->message), "user \"%s\" is in more than %d groups",
                         pw.pw_name, SUPERVISOR_MAX_GROUPS);
        }
}

/* --- step 3: the child's report --- */

static void run_job_finish(RunJob *j, int r, const SpawnError *err) {
        Supervisor *s = j->s;
        Child *c = j->child;

        j->report = sd_event_source_disable_unref(j->report);
        j->timer = sd_event_source_disable_unref(j->timer);
        c->start = NULL;
        j->child = NULL;
        /* r < 0: its report could not be read. The child exists (its pidfd
         * and exit are ours to report), so it is taken as started, as after
         * the timeout with no word from it. */
        if (r == SPAWN_E_CHILD_FAILED) {
                c->failed = true;
                s->stats.failed++;
                if (s->cb.on_failed)
                        s->cb.on_failed(s->userdata, c->name, j->peer.uid, err->message);
                if (j->follow_tag)
                        control_slot_unsubscribe(j->slot, j->follow_tag);
                control_slot_fail(j->slot, REQUEST_RUN, PN_ERR_SPAWN_FAILED, "%s", err->message);
        } else {
                s->stats.started++;
                if (s->cb.on_started)
                        s->cb.on_started(s->userdata, c->pid, c->name, c->uid, j->peer.uid, j->clone3);
                control_slot_complete(j->slot, &(ControlResult){
                        .op = REQUEST_RUN,
                        .running = { .pid = c->pid, .name = c->name, .uid = c->uid, .output = j->output } });
        }
        run_job_unref(j);
}

static int run_on_report(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        RunJob *j = userdata;
        SpawnError err;
        int r;

        (void) src, (void) revents;
        r = spawn_read_report(&j->params, fd, &err);
        if (r != SPAWN_E_PENDING)
                run_job_finish(j, r, &err);
        return 0;
}

static int run_on_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        RunJob *j = userdata;
        SpawnError err = { 0 };

        (void) src, (void) usec;
        /* No word from it: taken as started. */
        run_job_finish(j, 0, &err);
        return 0;
}

void supervisor_run_child_exited(Supervisor *s, Child *c) {
        RunJob *j = c->start;
        SpawnError err;
        int r;

        (void) s;
        /* It has exited: whatever it wrote is in the pipe. */
        r = spawn_read_report(&j->params, j->report_fd, &err);
        run_job_finish(j, r == SPAWN_E_PENDING ? 0 : r, &err);
}

/* --- step 2: the child --- */

/* Where the child's stdout and stderr go: a journal stream, a log file, or
 * /dev/null (-1). Returns 0 or -errno with msg filled. */
static int supervisor_open_output(Supervisor *s, const char *name, int *ret_fd, char *msg,
                                  size_t size) {
        _cleanup_free_ char *path = NULL;
        int mode = s->opt.output, fd;

        *ret_fd = -1;
        if (mode == CONFIG_RUN_OUTPUT_NULL)
                return 0;
        if (mode == CONFIG_RUN_OUTPUT_JOURNAL ||
            (mode == CONFIG_RUN_OUTPUT_AUTO && access(JOURNAL_STDOUT, W_OK) == 0)) {
                fd = sd_journal_stream_fd(name, LOG_INFO, 0);
                if (fd >= 0) {
                        *ret_fd = fd;
                        return 0;
                }
                if (mode == CONFIG_RUN_OUTPUT_JOURNAL) {
                        snprintf(msg, size, "cannot connect the output to the journal: %s",
                                 strerror(-fd));
                        return fd;
                }
        }
        if (mkdir(s->log_directory, 0750) < 0 && errno != EEXIST) {
                int r = -errno;
                snprintf(msg, size, "cannot create %s: %s", s->log_directory, strerror(-r));
                return r;
        }
        if (asprintf(&path, "%s/%s.log", s->log_directory, name) < 0)
                return -ENOMEM;
        /* The name was validated (no '/'); O_NOFOLLOW keeps a planted
         * symlink from redirecting a root-opened file. */
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
        if (fd < 0) {
                int r = -errno;
                snprintf(msg, size, "cannot open %s: %s", path, strerror(-r));
                return r;
        }
        *ret_fd = fd;
        return 0;
}

/* The user is known: check, create the child, wait for its report. */
static void run_job_spawn(RunJob *j) {
        Supervisor *s = j->s;
        sd_event *e = reaper_get_event(s->reaper);
        _cleanup_close_ int out = -1;
        char msg[320];
        SpawnError err;
        Child *c;
        int r;

        /* Running as someone else is root's: a group member may run
         * commands, as itself. */
        if (j->user.uid != j->peer.uid && j->peer.uid != 0) {
                control_slot_fail(j->slot, REQUEST_RUN, PN_ERR_ACCESS_DENIED,
                                  "only root may run a command as another user (\"%s\")", j->user.name);
                return;
        }
        if (s->stopping) {
                control_slot_fail(j->slot, REQUEST_RUN, PN_ERR_LIMIT_EXCEEDED, "the broker is shutting down");
                return;
        }
        r = spawn_env_new(&j->env, j->user.name, j->user.home, j->user.shell, j->name,
                          (const char *const *) j->extra, j->n_extra);
        if (r < 0) {
                control_slot_fail(j->slot, REQUEST_RUN, PN_ERR_INTERNAL, "out of memory");
                return;
        }
        r = supervisor_open_output(s, j->name, &out, msg, sizeof(msg));
        if (r < 0) {
                s->stats.failed++;
                if (s->cb.on_failed)
                        s->cb.on_failed(s->userdata, j->name, j->peer.uid, msg);
                control_slot_fail(j->slot, REQUEST_RUN, PN_ERR_SPAWN_FAILED, "%s", msg);
                return;
        }
        if (out < 0)
                snprintf(j->output, sizeof(j->output), "null");
        else if (s->opt.output == CONFIG_RUN_OUTPUT_JOURNAL ||
                 (s->opt.output == CONFIG_RUN_OUTPUT_AUTO && access(JOURNAL_STDOUT, W_OK) == 0))
                snprintf(j->output, sizeof(j->output), "journal");
        else
                snprintf(j->output, sizeof(j->output), "%s/%s.log", s->log_directory, j->name);

        /* Everything that can fail for lack of memory, before there is a
         * child to clean up after. */
        _cleanup_free_ Child *n = calloc(1, sizeof(*n));
        if (n)
                n->command = strdup(j->argv[0]);
        if (!n || !n->command || supervisor_reserve(s) < 0 ||
            sd_event_add_time_relative(e, &j->timer, CLOCK_MONOTONIC,
                                       SUPERVISOR_EXEC_TIMEOUT_MS * 1000ull, 0, run_on_timeout, j) < 0) {
                if (n)
                        free(n->command);
                control_slot_fail(j->slot, REQUEST_RUN, PN_ERR_INTERNAL, "out of memory");
                return;
        }
        (void) sd_event_source_set_enabled(j->timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(j->timer, "run-exec-timeout");

        j->params = (SpawnParams){
                .argv = (const char *const *) j->argv,
                .envp = j->env,
                .set_ids = true,
                .uid = j->user.uid,
                .gid = j->user.gid,
                .groups = j->user.groups,
                .n_groups = (size_t) j->user.n_groups,
                .output_fd = out,
        };
        r = spawn_start(&j->params, &n->pid, &n->pidfd, &j->report_fd, &j->clone3, &err);
        if (r < 0) {
                free(n->command);
                s->stats.failed++;
                if (s->cb.on_failed)
                        s->cb.on_failed(s->userdata, j->name, j->peer.uid, err.message);
                control_slot_fail(j->slot, REQUEST_RUN, PN_ERR_SPAWN_FAILED, "%s", err.message);
                return;
        }
        n->uid = j->user.uid;
        n->requester = j->peer.uid;
        n->started_ns = supervisor_realtime_ns();
        snprintf(n->name, sizeof(n->name), "%s", j->name);
        (void) supervisor_add(s, n); /* reserved */
        c = TAKE_PTR(n);
        if (s->cb.on_created)
                s->cb.on_created(s->userdata, c->pid);
        c->registered = reaper_watch_add(s->reaper, c->pid, supervisor_on_status, s) == 0;
        if (!c->registered) {
                /* Cannot supervise it: do not leave it running. Its status
                 * then comes through the fallback, which finds it here. */
                (void) supervisor_child_signal(c, SIGKILL);
                c->failed = true;
                control_slot_fail(j->slot, REQUEST_RUN, PN_ERR_INTERNAL, "out of memory");
                return;
        }
        if (j->follow) {
                Filter *f = NULL;
                uint64_t id;
                /* Now, before the loop can publish the child's fork. */
                if (filter_new_numeric(&f, FILTER_DESCENDANTS_OF, c->pid, false) >= 0 &&
                    control_slot_subscribe(j->slot, f, (uint64_t) c->pid, &id) == 0)
                        j->follow_tag = (uint64_t) c->pid;
        }
        r = sd_event_add_io(e, &j->report, j->report_fd, EPOLLIN, run_on_report, j);
        if (r < 0) {
                /* Cannot wait for its word: taken as started, as after the timeout. */
                j->child = c;
                c->start = j;
                __atomic_add_fetch(&j->n_ref, 1, __ATOMIC_ACQ_REL);
                run_job_finish(j, 0, &err);
                return;
        }
        (void) sd_event_source_set_description(j->report, "run-exec-report");
        (void) sd_event_source_set_enabled(j->timer, SD_EVENT_ONESHOT);
        j->child = c;
        c->start = j;
        j->n_ref++; /* held by the child until it told */
}

static void run_on_lookup(void *data, void *userdata) {
        RunLookup *l = data;
        RunJob *j = userdata;
        Supervisor *s = j->s;

        for (RunJob **p = &s->lookups; *p; p = &(*p)->next)
                if (*p == j) {
                        *p = j->next;
                        break;
                }
        s->n_lookups--;
        if (l->code)
                control_slot_fail(j->slot, REQUEST_RUN, l->code, "%s", l->message);
        else {
                /* The answer is the job's now: l goes with the thread. */
                j->user = l->user;
                l->user.home = l->user.shell = NULL;
                run_job_spawn(j);
        }
        j->lookup = lookup_thread_free(j->lookup); /* frees l */
        run_job_unref(j);
}

static unsigned supervisor_count_for(const Supervisor *s, uid_t requester) {
        unsigned n = 0;
        for (size_t i = 0; i < s->n_children; i++)
                n += !s->children[i]->adopted && s->children[i]->requester == requester;
        for (RunJob *j = s->lookups; j; j = j->next)
                n += j->peer.uid == requester;
        return n;
}

void supervisor_run(Supervisor *s, const PeerCreds *peer, const Request *req, ControlSlot *slot) {
        sd_event *e = reaper_get_event(s->reaper);
        RunLookup *l;
        RunJob *j;
        int r;

        if (!s->opt.enabled) {
                control_slot_fail(slot, REQUEST_RUN, PN_ERR_ACCESS_DENIED,
                                  "running children is disabled in this broker ([Run] Enabled=no)");
                return;
        }
        if (s->stopping) {
                control_slot_fail(slot, REQUEST_RUN, PN_ERR_LIMIT_EXCEEDED, "the broker is shutting down");
                return;
        }
        if (s->n_supervised + s->n_lookups >= s->opt.max_children) {
                control_slot_fail(slot, REQUEST_RUN, PN_ERR_LIMIT_EXCEEDED,
                                  "at most %u supervised children (MaxChildren)", s->opt.max_children);
                return;
        }
        if (peer->uid != 0 && supervisor_count_for(s, peer->uid) >= s->opt.max_children_per_uid) {
                control_slot_fail(slot, REQUEST_RUN, PN_ERR_LIMIT_EXCEEDED,
                                  "at most %u supervised children per user (MaxChildrenPerUser)",
                                  s->opt.max_children_per_uid);
                return;
        }
        if (req->run.follow && !control_slot_can_subscribe(slot)) {
                control_slot_fail(slot, REQUEST_RUN, PN_ERR_LIMIT_EXCEEDED,
                                  "\"follow\" needs a subscription and this connection has no room "
                                  "(MaxSubscriptions)");
                return;
        }

        j = calloc(1, sizeof(*j));
        l = calloc(1, sizeof(*l));
        if (!j || !l) {
                free(j);
                free(l);
                control_slot_fail(slot, REQUEST_RUN, PN_ERR_INTERNAL, "out of memory");
                return;
        }
        *j = (RunJob){ .n_ref = 1, .report_fd = -1, .s = s, .slot = control_slot_ref(slot),
                       .peer = *peer, .follow = req->run.follow };
        l->uid = req->run.user ? -1 : req->run.uid >= 0 ? req->run.uid : (int64_t) peer->uid;
        if (req->run.name)
                snprintf(j->name, sizeof(j->name), "%s", req->run.name);
        else
                supervisor_default_name(req->run.argv[0], j->name, sizeof(j->name));
        j->argv = strv_copy(req->run.argv, req->run.n_argv);
        j->extra = strv_copy(req->run.env, req->run.n_env);
        j->n_extra = req->run.n_env;
        if (!j->argv || !j->extra || (req->run.user && !(l->user_name = strdup(req->run.user)))) {
                control_slot_fail(slot, REQUEST_RUN, PN_ERR_INTERNAL, "out of memory");
                run_lookup_free(l);
                run_job_unref(j);
                return;
        }
        r = lookup_thread_start(&j->lookup, e, "run-user-lookup", run_user_resolve, run_on_lookup, l,
                                run_lookup_free, j);
        if (r < 0) {
                control_slot_fail(slot, REQUEST_RUN, PN_ERR_INTERNAL, "cannot look the user up: %s",
                                  strerror(-r));
                run_job_unref(j);
                return;
        }
        j->next = s->lookups;
        s->lookups = j;
        s->n_lookups++;
}

void supervisor_run_forget_all(Supervisor *s) {
        while (s->lookups) {
                RunJob *j = s->lookups;
                s->lookups = j->next;
                /* Not answered: the thread, which may still run, holds
                 * only its RunLookup, freed by whichever ends last. */
                j->lookup = lookup_thread_free(j->lookup);
                j->slot = control_slot_unref(j->slot);
                run_job_unref(j);
        }
        s->n_lookups = 0;
        for (size_t i = 0; i < s->n_children; i++) {
                RunJob *j = s->children[i]->start;
                if (!j)
                        continue;
                s->children[i]->start = NULL;
                j->child = NULL;
                run_job_unref(j);
        }
}
