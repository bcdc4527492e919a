/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Supervisor implementation; see supervisor.h.
 *
 * Children and tracked orphans are kept in one small array (bounded by
 * MaxChildren and SUPERVISOR_MAX_ORPHANS), searched linearly: it is short,
 * and touched once per wait status or request.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syslog.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <systemd/sd-journal.h>

#include "common/linux-compat.h"
#include "common/macro.h"
#include "config.h"
#include "policy.h"
#include "protocol/event-json.h"
#include "protocol/filter.h"
#include "procfs.h"
#include "protocol/reply.h"
#include "source-pidfd.h"
#include "spawn.h"
#include "supervisor.h"

#define SUPERVISOR_MAX_ORPHANS 4096
#define SUPERVISOR_MAX_GROUPS 256
#define SUPERVISOR_EXEC_TIMEOUT_MS 2000
#define JOURNAL_STDOUT "/run/systemd/journal/stdout"

typedef struct Child {
        pid_t pid;
        int pidfd;          /* -1 without kernel pidfds */
        bool adopted;       /* an orphan of a child, not started by a request */
        bool failed;        /* did not get to exec: not listed */
        bool stopped;
        bool registered;    /* its statuses are routed to us (reaper_watch_add()) */
        uint32_t uid;       /* runs as; UINT32_MAX: not known (orphans) */
        uid_t requester;
        char name[RUN_MAX_NAME + 1];
        char *command;      /* argv[0] */
        uint64_t started_ns; /* CLOCK_REALTIME */
} Child;

struct Supervisor {
        Reaper *reaper;
        SupervisorOptions opt;
        char *log_directory;
        SupervisorCallbacks cb;
        void *userdata;
        Child **children;
        size_t n_children, cap_children;
        unsigned n_supervised, n_adopted;
        bool stopping;
        SupervisorStats stats;
};

static uint64_t realtime_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static uint64_t monotonic_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* --- pure translations --- */

bool supervisor_event_from_status(pid_t pid, int status, uint64_t ts_ns, PnEvent *ev) {
        *ev = (PnEvent){
                .ts_ns = ts_ns,
                .sources = PN_SOURCE_CHILD,
                .pid = pid,
                .tgid = pid,
                .uid = UINT32_MAX,
        };
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
                ev->type = PN_EVENT_EXIT;
                pn_event_set_exit_status(ev, status);
                return true;
        }
        if (WIFSTOPPED(status) && (status >> 16) == 0 && WSTOPSIG(status) != (SIGTRAP | 0x80)) {
                ev->type = PN_EVENT_STOP;
                ev->stop.signal = WSTOPSIG(status);
                return true;
        }
        if (WIFCONTINUED(status)) {
                ev->type = PN_EVENT_CONTINUE;
                return true;
        }
        return false;
}

/* The form of the patched kernel's signals (seeds 000, 001): SI_USER, as
 * a kill() from si_pid would look, so the form alone proves nothing. */
static bool siginfo_kernel_form(const struct signalfd_siginfo *si) {
        return si->ssi_code == SI_USER && (pid_t) si->ssi_pid > 0;
}

bool supervisor_event_from_predump_siginfo(const struct signalfd_siginfo *si, uint64_t ts_ns,
                                           PnEvent *ev) {
        if (!siginfo_kernel_form(si))
                return false;
        *ev = (PnEvent){
                .type = PN_EVENT_PREDUMP,
                .ts_ns = ts_ns,
                .sources = PN_SOURCE_PRCTL,
                .pid = (pid_t) si->ssi_pid,
                .tgid = (pid_t) si->ssi_pid,
                .uid = si->ssi_uid,
                .predump = { .rss = -1, .core_limit = PN_CORE_LIMIT_UNKNOWN },
        };
        return true;
}

bool supervisor_event_from_adopt_siginfo(const struct signalfd_siginfo *si, pid_t self,
                                         uint64_t ts_ns, PnEvent *ev) {
        if (!siginfo_kernel_form(si) || (pid_t) si->ssi_status <= 0 || (pid_t) si->ssi_pid == self)
                return false;
        *ev = (PnEvent){
                .type = PN_EVENT_ADOPT,
                .ts_ns = ts_ns,
                .sources = PN_SOURCE_PRCTL,
                .pid = (pid_t) si->ssi_pid,
                .tgid = (pid_t) si->ssi_pid,
                .uid = si->ssi_uid,
                .adopt = { .old_parent = (pid_t) si->ssi_status, .new_parent = self },
        };
        return true;
}

void supervisor_default_name(const char *argv0, char *buf, size_t size) {
        const char *base = strrchr(argv0, '/');
        size_t n = 0;

        base = base && base[1] ? base + 1 : argv0;
        if (size == 0)
                return;
        if (*base == '.' || *base == '-')
                buf[n++] = '_';
        for (; *base && n + 1 < size && n < RUN_MAX_NAME; base++)
                buf[n++] = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-",
                                  *base) ? *base : '_';
        if (n == 0)
                buf[n++] = '_';
        buf[n] = 0;
}

/* --- children --- */

static Child *supervisor_find(const Supervisor *s, pid_t pid) {
        for (size_t i = 0; i < s->n_children; i++)
                if (s->children[i]->pid == pid)
                        return s->children[i];
        return NULL;
}

/* Room for one more entry. */
static int supervisor_reserve(Supervisor *s) {
        if (s->n_children == s->cap_children) {
                size_t cap = s->cap_children ? s->cap_children * 2 : 16;
                Child **a = realloc(s->children, cap * sizeof(*a));
                if (!a)
                        return -ENOMEM;
                s->children = a;
                s->cap_children = cap;
        }
        return 0;
}

static int supervisor_add(Supervisor *s, Child *c) {
        int r = supervisor_reserve(s);
        if (r < 0)
                return r;
        s->children[s->n_children++] = c;
        if (c->adopted)
                s->n_adopted++;
        else
                s->n_supervised++;
        return 0;
}

static void child_free(Child *c) {
        if (!c)
                return;
        safe_close(c->pidfd);
        free(c->command);
        free(c);
}

static void supervisor_remove(Supervisor *s, Child *c) {
        for (size_t i = 0; i < s->n_children; i++)
                if (s->children[i] == c) {
                        s->children[i] = s->children[--s->n_children];
                        break;
                }
        if (c->adopted)
                s->n_adopted--;
        else
                s->n_supervised--;
        if (c->registered)
                reaper_watch_remove(s->reaper, c->pid);
        child_free(c);
        if (s->stopping && s->n_children == 0 && s->cb.on_empty)
                s->cb.on_empty(s->userdata);
}

static int child_signal(const Child *c, int sig) {
        if (c->pidfd >= 0)
                return pn_pidfd_send_signal(c->pidfd, sig, NULL, 0) < 0 ? -errno : 0;
        /* No pidfds in this kernel: the pid of a child not yet waited for
         * cannot be reused, so it is as safe. */
        return kill(c->pid, sig) < 0 ? -errno : 0;
}

/* A status of a process of ours: publish, and forget it when it ended. */
static void supervisor_on_status_of(Supervisor *s, Child *c, pid_t pid, int status) {
        PnEvent ev;

        if (!supervisor_event_from_status(pid, status, monotonic_ns(), &ev))
                return;
        ev.ppid = getpid(); /* its wait status came to us: we are its parent */
        if (c && ev.type == PN_EVENT_STOP)
                c->stopped = true;
        else if (c && ev.type == PN_EVENT_CONTINUE)
                c->stopped = false;
        s->cb.on_event(s->userdata, &ev);
        if (ev.type != PN_EVENT_EXIT)
                return;
        if (!c || c->adopted)
                s->stats.orphans_reaped++;
        if (c) {
                if (!c->adopted && !c->failed) {
                        s->stats.ended++;
                        if (s->cb.on_ended)
                                s->cb.on_ended(s->userdata, c->pid, c->name, status);
                }
                supervisor_remove(s, c);
        }
}

static void supervisor_on_status(pid_t pid, int status, void *userdata) {
        Supervisor *s = userdata;
        supervisor_on_status_of(s, supervisor_find(s, pid), pid, status);
}

void supervisor_handle_orphan_status(Supervisor *s, pid_t pid, int status) {
        supervisor_on_status_of(s, supervisor_find(s, pid), pid, status);
}

void supervisor_adopted(Supervisor *s, pid_t pid, uint32_t uid) {
        siginfo_t si = {};
        Child *c;
        int fd;

        if (supervisor_find(s, pid) || s->n_adopted >= SUPERVISOR_MAX_ORPHANS)
                return;
        fd = pidfd_open_process(pid);
        if (fd < 0)
                fd = -1;
        /* Ours? A peek (WNOWAIT) that collects nothing: the reaper stays
         * the only collector. ECHILD: not our child (anymore). */
        if (fd >= 0 && waitid((idtype_t) P_PIDFD, (id_t) fd, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
                close(fd);
                return;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                safe_close(fd);
                return;
        }
        *c = (Child){ .pid = pid, .pidfd = fd, .adopted = true, .uid = uid,
                      .requester = (uid_t) -1, .started_ns = realtime_ns() };
        snprintf(c->name, sizeof(c->name), "adopted");
        if (supervisor_add(s, c) < 0) {
                child_free(c);
                return;
        }
        /* The reaper asks registered pids only for continued statuses:
         * register the orphan, or its continues are never seen. A ptrace
         * watch may hold it already (-EEXIST): then it reports them. */
        c->registered = reaper_watch_add(s->reaper, pid, supervisor_on_status, s) == 0;
        if (s->stopping)
                (void) child_signal(c, SIGTERM);
}

/* --- run --- */

typedef struct RunUser {
        uid_t uid;
        gid_t gid;
        char name[RUN_MAX_NAME + 1];
        char *home, *shell;
        gid_t groups[SUPERVISOR_MAX_GROUPS];
        int n_groups;
} RunUser;

static void run_user_done(RunUser *u) {
        free(u->home);
        free(u->shell);
        u->home = u->shell = NULL;
}

/* Resolve the user a child runs as (NSS, in the parent: the child only
 * makes system calls). Returns 0, or a PN_ERR_* code with msg filled. */
static const char *run_user_resolve(RunUser *u, const char *name, int64_t uid, char *msg, size_t size) {
        struct passwd pw, *res = NULL;
        char buf[4096];
        int r;

        if (name)
                r = getpwnam_r(name, &pw, buf, sizeof(buf), &res);
        else
                r = getpwuid_r((uid_t) uid, &pw, buf, sizeof(buf), &res);
        if (r != 0 || !res) {
                if (name)
                        snprintf(msg, size, "no user \"%s\"", name);
                else
                        snprintf(msg, size, "no user with uid %lld", (long long) uid);
                return PN_ERR_NOT_FOUND;
        }
        if (strlen(pw.pw_name) > RUN_MAX_NAME) {
                snprintf(msg, size, "user name of uid %u too long", (unsigned) pw.pw_uid);
                return PN_ERR_INVALID_REQUEST;
        }
        u->uid = pw.pw_uid;
        u->gid = pw.pw_gid;
        strcpy(u->name, pw.pw_name);
        u->home = strdup(pw.pw_dir ? pw.pw_dir : "/");
        u->shell = strdup(pw.pw_shell ? pw.pw_shell : "/bin/sh");
        u->n_groups = SUPERVISOR_MAX_GROUPS;
        if (!u->home || !u->shell) {
                snprintf(msg, size, "out of memory");
                return PN_ERR_INTERNAL;
        }
        if (getgrouplist(pw.pw_name, pw.pw_gid, u->groups, &u->n_groups) < 0) {
                snprintf(msg, size, "user \"%s\" is in more than %d groups", pw.pw_name,
                         SUPERVISOR_MAX_GROUPS);
                return PN_ERR_INVALID_REQUEST;
        }
        return NULL;
}

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

static void reply_running(JsonBuf *b, const Child *c, const char *output) {
        jsonbuf_begin_object(b);
        jsonbuf_field_str(b, "type", "running");
        jsonbuf_field_int(b, "pid", c->pid);
        jsonbuf_field_str(b, "name", c->name);
        jsonbuf_field_uint(b, "uid", c->uid);
        jsonbuf_field_str(b, "output", output);
        jsonbuf_end_object(b);
        jsonbuf_append_char(b, '\n');
}

static Filter *follow_filter(pid_t pid) {
        struct json_object *m = json_object_new_object();
        Filter *f = NULL;
        char err[128];

        if (!m)
                return NULL;
        json_object_object_add(m, "descendants_of", json_object_new_int64(pid));
        (void) filter_new_from_json(&f, NULL, NULL, m, err, sizeof(err));
        json_object_put(m);
        return f;
}

static unsigned supervisor_count_for(const Supervisor *s, uid_t requester) {
        unsigned n = 0;
        for (size_t i = 0; i < s->n_children; i++)
                n += !s->children[i]->adopted && s->children[i]->requester == requester;
        return n;
}

static void supervisor_run(Supervisor *s, const PeerCreds *peer, const Request *req,
                           SinkControlReply *reply) {
        _cleanup_(run_user_done) RunUser user = {};
        _cleanup_close_ int out = -1;
        char msg[320], name[RUN_MAX_NAME + 1], output[512];
        const char *code;
        char **env = NULL;
        SpawnError err;
        pid_t pid = 0;
        int pidfd = -1, r;
        bool clone3 = false;

        if (!s->opt.enabled) {
                reply_error(reply->line, PN_ERR_ACCESS_DENIED,
                            "running children is disabled in this broker ([Run] Enabled=no)");
                return;
        }
        if (s->stopping) {
                reply_error(reply->line, PN_ERR_LIMIT_EXCEEDED, "the broker is shutting down");
                return;
        }
        if (s->n_supervised >= s->opt.max_children) {
                snprintf(msg, sizeof(msg), "at most %u supervised children (MaxChildren)",
                         s->opt.max_children);
                reply_error(reply->line, PN_ERR_LIMIT_EXCEEDED, msg);
                return;
        }
        if (peer->uid != 0 && supervisor_count_for(s, peer->uid) >= s->opt.max_children_per_uid) {
                snprintf(msg, sizeof(msg), "at most %u supervised children per user (MaxChildrenPerUser)",
                         s->opt.max_children_per_uid);
                reply_error(reply->line, PN_ERR_LIMIT_EXCEEDED, msg);
                return;
        }
        if (req->run.follow && !reply->can_subscribe) {
                reply_error(reply->line, PN_ERR_LIMIT_EXCEEDED,
                            "\"follow\" needs a subscription and this connection has no room (MaxSubscriptions)");
                return;
        }

        code = run_user_resolve(&user, req->run.user, req->run.user ? -1
                                                      : req->run.uid >= 0 ? req->run.uid
                                                                          : (int64_t) peer->uid,
                                msg, sizeof(msg));
        if (code) {
                reply_error(reply->line, code, msg);
                return;
        }
        /* Running as someone else is root's: a group member may run
         * commands, as itself. */
        if (user.uid != peer->uid && peer->uid != 0) {
                snprintf(msg, sizeof(msg), "only root may run a command as another user (\"%s\")",
                         user.name);
                reply_error(reply->line, PN_ERR_ACCESS_DENIED, msg);
                return;
        }

        if (req->run.name)
                snprintf(name, sizeof(name), "%s", req->run.name);
        else
                supervisor_default_name(req->run.argv[0], name, sizeof(name));

        r = spawn_env_new(&env, user.name, user.home, user.shell, name, req->run.env, req->run.n_env);
        if (r < 0) {
                reply_error(reply->line, PN_ERR_INTERNAL, "out of memory");
                return;
        }
        r = supervisor_open_output(s, name, &out, msg, sizeof(msg));
        if (r < 0) {
                spawn_env_free(env);
                s->stats.failed++;
                if (s->cb.on_failed)
                        s->cb.on_failed(s->userdata, name, peer->uid, msg);
                reply_error(reply->line, PN_ERR_SPAWN_FAILED, msg);
                return;
        }
        if (out < 0)
                snprintf(output, sizeof(output), "null");
        else if (s->opt.output == CONFIG_RUN_OUTPUT_JOURNAL ||
                 (s->opt.output == CONFIG_RUN_OUTPUT_AUTO && access(JOURNAL_STDOUT, W_OK) == 0))
                snprintf(output, sizeof(output), "journal");
        else
                snprintf(output, sizeof(output), "%s/%s.log", s->log_directory, name);

        /* Everything that can fail for lack of memory, before there is a
         * child to clean up after. */
        _cleanup_free_ Child *c = calloc(1, sizeof(*c));
        if (c)
                c->command = strdup(req->run.argv[0]);
        if (!c || !c->command || supervisor_reserve(s) < 0) {
                if (c)
                        free(c->command);
                spawn_env_free(env);
                reply_error(reply->line, PN_ERR_INTERNAL, "out of memory");
                return;
        }

        SpawnParams p = {
                .argv = req->run.argv,
                .envp = env,
                .set_ids = true,
                .uid = user.uid,
                .gid = user.gid,
                .groups = user.groups,
                .n_groups = (size_t) user.n_groups,
                .output_fd = out,
        };
        r = spawn_start(&p, SUPERVISOR_EXEC_TIMEOUT_MS, &pid, &pidfd, &clone3, &err);
        spawn_env_free(env);
        if (r < 0) {
                free(c->command);
                s->stats.failed++;
                if (s->cb.on_failed)
                        s->cb.on_failed(s->userdata, name, peer->uid, err.message);
                reply_error(reply->line, PN_ERR_SPAWN_FAILED, err.message);
                return;
        }
        c->pid = pid;
        c->pidfd = pidfd;
        c->uid = user.uid;
        c->requester = peer->uid;
        c->failed = r == SPAWN_E_CHILD_FAILED;
        c->started_ns = realtime_ns();
        snprintf(c->name, sizeof(c->name), "%s", name);
        (void) supervisor_add(s, c); /* reserved */
        Child *child = TAKE_PTR(c);
        if (s->cb.on_created)
                s->cb.on_created(s->userdata, pid);
        child->registered = reaper_watch_add(s->reaper, pid, supervisor_on_status, s) == 0;
        if (!child->registered) {
                /* Cannot supervise it: do not leave it running. Its status
                 * then comes through the fallback, which finds it here. */
                (void) child_signal(child, SIGKILL);
                child->failed = true;
                reply_error(reply->line, PN_ERR_INTERNAL, "out of memory");
                return;
        }
        if (r == SPAWN_E_CHILD_FAILED) {
                s->stats.failed++;
                if (s->cb.on_failed)
                        s->cb.on_failed(s->userdata, name, peer->uid, err.message);
                reply_error(reply->line, PN_ERR_SPAWN_FAILED, err.message);
                return;
        }
        s->stats.started++;
        if (s->cb.on_started)
                s->cb.on_started(s->userdata, pid, child->name, user.uid, peer->uid, clone3);
        if (req->run.follow) {
                reply->subscribe = follow_filter(pid);
                reply->tag = (uint64_t) pid;
        }
        reply_running(reply->line, child, output);
}

/* --- children, kill --- */

static void supervisor_list(Supervisor *s, SinkControlReply *reply) {
        JsonBuf *b = reply->line;

        jsonbuf_begin_object(b);
        jsonbuf_field_str(b, "type", "children");
        jsonbuf_begin_array_field(b, "children");
        for (size_t i = 0; i < s->n_children; i++) {
                const Child *c = s->children[i];
                char time[32];
                if (c->failed)
                        continue;
                jsonbuf_begin_object(b);
                jsonbuf_field_int(b, "pid", c->pid);
                jsonbuf_field_str(b, "name", c->name);
                if (c->uid == UINT32_MAX)
                        jsonbuf_field_null(b, "uid");
                else
                        jsonbuf_field_uint(b, "uid", c->uid);
                jsonbuf_field_str(b, "state", c->stopped ? "stopped" : "running");
                jsonbuf_field_bool(b, "adopted", c->adopted);
                if (c->adopted)
                        jsonbuf_field_null(b, "requester_uid");
                else
                        jsonbuf_field_uint(b, "requester_uid", c->requester);
                jsonbuf_field_str(b, "command", c->command);
                event_json_format_time(time, c->started_ns);
                jsonbuf_field_str(b, "started", time);
                jsonbuf_end_object(b);
        }
        jsonbuf_end_array(b);
        jsonbuf_end_object(b);
        jsonbuf_append_char(b, '\n');
}

static void supervisor_kill(Supervisor *s, const PeerCreds *peer, const Request *req,
                            SinkControlReply *reply) {
        pid_t done[64];
        size_t n_done = 0, n_denied = 0;
        int last_error = 0;
        char msg[160];

        for (size_t i = 0; i < s->n_children && n_done < ELEMENTSOF(done); i++) {
                Child *c = s->children[i];
                if (c->failed)
                        continue;
                if (req->kill.pid ? c->pid != req->kill.pid
                                  : c->adopted || !streq(c->name, req->kill.name))
                        continue;
                /* Root, or the user the child runs as. */
                if (peer->uid != 0 && c->uid != peer->uid) {
                        n_denied++;
                        continue;
                }
                int r = child_signal(c, req->kill.signal);
                if (r < 0)
                        last_error = r;
                else
                        done[n_done++] = c->pid;
        }
        if (n_done == 0) {
                if (n_denied)
                        reply_error(reply->line, PN_ERR_ACCESS_DENIED,
                                    "only root or the user a child runs as may signal it");
                else if (last_error) {
                        snprintf(msg, sizeof(msg), "signalling failed: %s", strerror(-last_error));
                        reply_error(reply->line, PN_ERR_INTERNAL, msg);
                } else {
                        if (req->kill.pid)
                                snprintf(msg, sizeof(msg), "no supervised child with pid %d",
                                         (int) req->kill.pid);
                        else
                                snprintf(msg, sizeof(msg), "no supervised child named \"%s\"",
                                         req->kill.name);
                        reply_error(reply->line, PN_ERR_NOT_FOUND, msg);
                }
                return;
        }
        JsonBuf *b = reply->line;
        jsonbuf_begin_object(b);
        jsonbuf_field_str(b, "type", "killed");
        jsonbuf_field_int(b, "signal", req->kill.signal);
        jsonbuf_begin_array_field(b, "pids");
        for (size_t i = 0; i < n_done; i++)
                jsonbuf_elem_uint(b, (uint64_t) done[i]);
        jsonbuf_end_array(b);
        jsonbuf_end_object(b);
        jsonbuf_append_char(b, '\n');
}

void supervisor_handle_request(Supervisor *s, const PeerCreds *peer, SinkOwner owner,
                               const Request *req, SinkControlReply *reply) {
        (void) owner; /* children outlive the connection that started them */
        if (!policy_may_act(peer, POLICY_ACTION_RUN, 0, UINT32_MAX, getpid())) {
                reply_error(reply->line, PN_ERR_ACCESS_DENIED,
                            "only root and members of the broker's group may run, list or signal "
                            "supervised children");
                return;
        }
        switch (req->op) {
        case REQUEST_RUN:
                supervisor_run(s, peer, req, reply);
                break;
        case REQUEST_CHILDREN:
                supervisor_list(s, reply);
                break;
        case REQUEST_KILL:
                supervisor_kill(s, peer, req, reply);
                break;
        default:
                reply_error(reply->line, PN_ERR_UNKNOWN_OP, "not a supervisor op");
                break;
        }
}

/* --- lifetime --- */

unsigned supervisor_stop(Supervisor *s, int sig) {
        unsigned n = 0;

        s->stopping = true;
        for (size_t i = 0; i < s->n_children; i++) {
                Child *c = s->children[i];
                if (child_signal(c, sig) < 0)
                        continue;
                n++;
                /* A stopped process would keep the signal pending until
                 * SIGKILL: continue it, as a service manager does. */
                if (c->stopped && sig != SIGKILL && sig != SIGCONT)
                        (void) child_signal(c, SIGCONT);
        }
        return n;
}

unsigned supervisor_count(const Supervisor *s) {
        return (unsigned) s->n_children;
}

/* --- a patched kernel's signals --- */

/* Is pid dumping core now? CoreDumping: 1 in /proc/PID/status (Linux 4.15):
 * the kernel sets it before it sends the predump signal. */
static bool core_dumping(pid_t pid) {
        char path[64], buf[2048];
        const char *p;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return false;
        buf[n] = 0;
        p = strstr(buf, "\nCoreDumping:");
        return p && atoi(p + strlen("\nCoreDumping:")) == 1;
}

/* The dump may be over before the broker looks (a small core, RLIMIT_CORE
 * 0): then the child is dead, not yet reaped, of a signal whose default
 * action dumps core. A peek (WNOWAIT) that collects nothing. */
static bool died_dumping(const Child *c) {
        siginfo_t si = {};
        int r;

        if (c->pidfd >= 0)
                r = waitid((idtype_t) P_PIDFD, (id_t) c->pidfd, &si, WEXITED | WNOHANG | WNOWAIT);
        else
                r = waitid(P_PID, (id_t) c->pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if (r < 0 || si.si_pid != c->pid)
                return false;
        if (si.si_code == CLD_DUMPED)
                return true;
        if (si.si_code != CLD_KILLED)
                return false;
        switch (si.si_status) {
        case SIGQUIT: case SIGILL: case SIGTRAP: case SIGABRT: case SIGBUS: case SIGFPE:
        case SIGSEGV: case SIGXCPU: case SIGXFSZ: case SIGSYS:
                return true;
        default:
                return false;
        }
}

bool supervisor_accept_predump_signal(Supervisor *s, const struct signalfd_siginfo *si, uint64_t ts_ns,
                                      PnEvent *ev) {
        Child *c;

        /* Anyone allowed to signal the broker can send SI_USER with its own
         * pid: only a child of ours that is dumping core is believed. The
         * child is not reaped yet (we reap it), so its pid names it still:
         * what /proc says is about this child, and its pidfd confirms. */
        if (supervisor_event_from_predump_siginfo(si, ts_ns, ev) && (c = supervisor_find(s, ev->pid)) &&
            (core_dumping(c->pid) || died_dumping(c))) {
                s->stats.predump_signals_accepted++;
                ev->ppid = getpid();
                return true;
        }
        s->stats.predump_signals_refused++;
        s->stats.refused_signals++;
        return false;
}

/* The parent of pid now, from /proc/PID/stat; -1 if gone. */
static pid_t parent_of(pid_t pid) {
        char path[64], buf[1024];
        ProcInfo info = { 0 };
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -1;
        buf[n] = 0;
        return procfs_parse_stat(buf, (size_t) n, &info) < 0 ? -1 : info.ppid;
}

bool supervisor_accept_adopt_signal(Supervisor *s, const struct signalfd_siginfo *si, pid_t self,
                                    uint64_t ts_ns, PnEvent *ev) {
        Child *c;

        /* An orphan whose parent is now the broker; a child we started was
         * never anyone else's orphan. */
        if (supervisor_event_from_adopt_siginfo(si, self, ts_ns, ev) &&
            !((c = supervisor_find(s, ev->pid)) && !c->adopted) && parent_of(ev->pid) == self) {
                s->stats.adopt_signals_accepted++;
                return true;
        }
        s->stats.adopt_signals_refused++;
        s->stats.refused_signals++;
        return false;
}

const SupervisorStats *supervisor_get_stats(const Supervisor *s) {
        ((Supervisor *) s)->stats.children = s->n_supervised;
        ((Supervisor *) s)->stats.adopted = s->n_adopted;
        return &s->stats;
}

void supervisor_visit_stats(Supervisor *s, const StatsVisitor *v) {
        const SupervisorStats *st = supervisor_get_stats(s);

        stats_section_begin(v, "run");
        stats_bool(v, "enabled", s->opt.enabled);
        stats_uint(v, "children", st->children);
        stats_uint(v, "adopted", st->adopted);
        stats_uint(v, "started", st->started);
        stats_uint(v, "failed", st->failed);
        stats_uint(v, "ended", st->ended);
        stats_uint(v, "orphans_reaped", st->orphans_reaped);
        stats_uint(v, "refused_signals", st->refused_signals);
        stats_uint(v, "predump_signals_accepted", st->predump_signals_accepted);
        stats_uint(v, "predump_signals_refused", st->predump_signals_refused);
        stats_uint(v, "adopt_signals_accepted", st->adopt_signals_accepted);
        stats_uint(v, "adopt_signals_refused", st->adopt_signals_refused);
        stats_section_end(v);
}

int supervisor_set_options(Supervisor *s, const SupervisorOptions *o) {
        char *dir = strdup(o->log_directory ? o->log_directory : CONFIG_DEFAULT_RUN_LOG_DIRECTORY);
        if (!dir)
                return -ENOMEM;
        free(s->log_directory);
        s->log_directory = dir;
        s->opt = *o;
        s->opt.log_directory = s->log_directory;
        return 0;
}

int supervisor_new(Supervisor **ret, Reaper *reaper, const SupervisorOptions *o,
                   const SupervisorCallbacks *cb, void *userdata) {
        Supervisor *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->reaper = reaper;
        s->cb = *cb;
        s->userdata = userdata;
        r = supervisor_set_options(s, o);
        if (r < 0) {
                free(s);
                return r;
        }
        *ret = s;
        return 0;
}

Supervisor *supervisor_free(Supervisor *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_children; i++) {
                if (s->children[i]->registered)
                        reaper_watch_remove(s->reaper, s->children[i]->pid);
                child_free(s->children[i]);
        }
        free(s->children);
        free(s->log_directory);
        free(s);
        return NULL;
}
