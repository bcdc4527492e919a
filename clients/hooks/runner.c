/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The hook runner; see runner.h.
 *
 * Hooks are reference-counted: a running job holds its hook, so that a
 * reload (SIGHUP) can replace the set while old jobs finish with their own
 * settings. A hook of the same name in the new set takes over the old one's
 * running jobs and queue, so MaxConcurrent= stays true across a reload.
 *
 * The connection to the broker is libprocnotify's; the runner only watches
 * its descriptor. Since the library closes and re-opens it on its own
 * (errors, reconnects), every call into the library is followed by
 * runner_sync_io(), which moves the I/O source to the current descriptor.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "common/macro.h"
#include "common/log.h"
#include "hook-env.h"
#include "hook-file.h"
#include "hook-spawn.h"
#include "procnotify/client.h"
#include "protocol/utf8.h"
#include "runner.h"

#define RUNNER_BATCH 64                     /* events per loop iteration */
#define RECONNECT_MIN_USEC (100 * UINT64_C(1000))
#define RECONNECT_MAX_USEC (2 * UINT64_C(1000000))
#define RUNNER_CONNECT_TIMEOUT_USEC (10 * UINT64_C(1000000)) /* hello, replays, subscriptions */

extern char **environ;


/* What the log says about the event a hook runs for. */
typedef struct EventInfo {
        uint64_t seq;
        uint64_t ts_ns;         /* the kernel's CLOCK_MONOTONIC timestamp */
        PnEventType type;
        pid_t pid;              /* 0 for overruns */
        char comm[PN_COMM_SIZE]; /* as the broker sent it: valid UTF-8, not escaped */
} EventInfo;

typedef struct Queued {
        struct Queued *next;
        EventInfo info;
        size_t len;
        char line[]; /* the event's JSON line, with its newline */
} Queued;

typedef struct Hook {
        unsigned n_ref;
        HookFile *file;
        char *path;
        HookCred cred;
        char **user_env;        /* HOME=, USER=, LOGNAME=, SHELL= of User= */
        bool active;            /* in the current set, and accepted by the broker */
        uint64_t sub_id;        /* the library's subscription id, 0: none */

        unsigned n_running;
        Queued *queue_head, *queue_tail;
        unsigned n_queued;
        uint64_t dropped;       /* in the current burst, not yet reported */
        uint64_t dropped_total;
} Hook;

typedef struct Job {
        struct Job *prev, *next;
        Runner *runner;
        Hook *hook;
        pid_t pid;
        sd_event_source *child_source;
        sd_event_source *timer_source;
        uint64_t start_usec;
        EventInfo info;
        bool timed_out;
} Job;

typedef enum RunnerPhase {
        RUNNER_IDLE,        /* not connected; the reconnect timer may be armed */
        RUNNER_CONNECTING,  /* waiting for the hello (and the replayed subscriptions) */
        RUNNER_SUBSCRIBING, /* waiting for the answers to the current set's subscriptions */
        RUNNER_CONNECTED,
} RunnerPhase;

struct Runner {
        char *hooks_dir;
        char *socket_path;              /* NULL: the library's default */
        PnClient *client;
        sd_event *event;
        sd_event_source *io;
        int io_fd;
        uint32_t io_events;
        int fatal;                      /* the error that stopped the loop (logged), or 0 */
        sd_event_source *connect_timer; /* RUNNER_CONNECT_TIMEOUT_USEC to be connected */
        sd_event_source *more;          /* defer: parked events left after a batch */
        sd_event_source *reconnect;     /* timer */
        sd_event_source *stop_timer;
        uint64_t reconnect_delay;

        Hook **hooks;
        size_t n_hooks;
        bool union_subscription;        /* more hooks than RUNNER_MAX_SUBSCRIPTIONS */
        bool broker_limited;            /* the broker refused one subscription per hook */
        uint64_t union_sub_id;
        bool subscribed;                /* the current set's subscriptions are made */
        bool connected_once;
        bool ready_sent;
        bool stopping;
        bool retry_logged;
        bool reconnecting;              /* the reconnect timer is armed */
        bool reset_pending;             /* the next connect starts with a new client */
        bool reloading;                 /* RELOADING=1 sent, READY=1 not yet */
        RunnerPhase phase;
        unsigned generation;            /* of the subscription round; bumped to give one up */
        unsigned n_subscribing;         /* replies due in the current round */

        Job *jobs;
        unsigned n_running;
        size_t queued_bytes;
        uid_t uid;
};

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* --- hooks --- */

static Hook *hook_unref(Hook *h) {
        if (!h || --h->n_ref > 0)
                return NULL;
        Queued *q;
        while ((q = h->queue_head)) {
                h->queue_head = q->next;
                free(q);
        }
        hook_file_free(h->file);
        free(h->path);
        hook_cred_done(&h->cred);
        hook_strv_free(h->user_env);
        free(h);
        return NULL;
}

static Hook *hook_ref(Hook *h) {
        h->n_ref++;
        return h;
}

static void hooks_free(Hook **hooks, size_t n) {
        for (size_t i = 0; i < n; i++)
                hook_unref(hooks[i]);
        free(hooks);
}

static int resolve_uid(const char *name, uint32_t *ret) {
        struct passwd *pw = getpwnam(name);
        if (!pw)
                return -ENOENT;
        *ret = pw->pw_uid;
        return 0;
}

static void log_hook_error(const char *path, unsigned line, const char *name, const char *msg) {
        if (line > 0)
                log_error("%s:%u: %s; hook %s not loaded.", path, line, msg, name);
        else
                log_error("%s: %s; hook %s not loaded.", path, msg, name);
}

/* Resolve User= into credentials and the variables a login would set. */
static int hook_set_user(Hook *h, uid_t self, char *error, size_t size) {
        struct passwd *pw;
        char *env[5] = {};
        int n = 16;

        errno = 0;
        pw = getpwnam(h->file->user);
        if (!pw) {
                snprintf(error, size, "User=%s: no such user", h->file->user);
                return -ENOENT;
        }
        if (self != 0 && pw->pw_uid != self) {
                snprintf(error, size,
                         "User=%s: procnotify-hooks runs as uid %u, not root, and can run hooks "
                         "only as itself", h->file->user, (unsigned) self);
                return -EPERM;
        }
        if (self == 0) {
                h->cred.groups = malloc(sizeof(gid_t) * (size_t) n);
                if (!h->cred.groups)
                        return -ENOMEM;
                if (getgrouplist(pw->pw_name, pw->pw_gid, h->cred.groups, &n) < 0) {
                        gid_t *g = realloc(h->cred.groups, sizeof(gid_t) * (size_t) n);
                        if (!g)
                                return -ENOMEM;
                        h->cred.groups = g;
                        if (getgrouplist(pw->pw_name, pw->pw_gid, h->cred.groups, &n) < 0) {
                                snprintf(error, size, "User=%s: cannot read its groups",
                                         h->file->user);
                                return -EINVAL;
                        }
                }
                h->cred.n_groups = n;
                h->cred.uid = pw->pw_uid;
                h->cred.gid = pw->pw_gid;
                h->cred.set = true;
        }
        if (asprintf(&env[0], "HOME=%s", pw->pw_dir) < 0 ||
            asprintf(&env[1], "USER=%s", pw->pw_name) < 0 ||
            asprintf(&env[2], "LOGNAME=%s", pw->pw_name) < 0 ||
            asprintf(&env[3], "SHELL=%s",
                     pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh") < 0) {
                for (int i = 0; i < 4; i++)
                        free(env[i]);
                return -ENOMEM;
        }
        h->user_env = malloc(sizeof(env));
        if (!h->user_env) {
                for (int i = 0; i < 4; i++)
                        free(env[i]);
                return -ENOMEM;
        }
        memcpy(h->user_env, env, sizeof(env));
        return 0;
}

/* Read and check one hook file. Returns 0 and a hook, -EINVAL (logged:
 * the file is bad), or -ENOMEM. */
static int hook_load(Hook **ret, const char *dir, const char *file, uid_t self) {
        _cleanup_free_ char *path = NULL, *text = NULL, *name = NULL;
        _cleanup_(hook_file_freep) HookFile *hf = NULL;
        _cleanup_close_ int fd = -1;
        HookFileError err;
        char msg[512];
        struct stat st;
        ssize_t n;
        Hook *h;
        int r;

        if (asprintf(&path, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        name = strndup(file, strlen(file) - strlen(".conf"));
        if (!name)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 || fstat(fd, &st) < 0) {
                snprintf(msg, sizeof(msg), "cannot open: %s", strerror(errno));
                log_hook_error(path, 0, name, msg);
                return -EINVAL;
        }
        if (!S_ISREG(st.st_mode)) {
                log_hook_error(path, 0, name, "not a regular file");
                return -EINVAL;
        }
        /* A hook names a command to run as the runner (or as any user, for
         * root): only its owner may be able to change it. */
        if ((st.st_uid != 0 && st.st_uid != self) || (st.st_mode & (S_IWGRP | S_IWOTH))) {
                snprintf(
                        msg, sizeof(msg),
                        "owned by uid %u with mode %04o: a hook file must belong to root or to the "
                        "runner's user and be writable by its owner only",
                        (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777));
                log_hook_error(path, 0, name, msg);
                return -EINVAL;
        }
        text = malloc(HOOK_FILE_MAX_SIZE + 1);
        if (!text)
                return -ENOMEM;
        n = read(fd, text, HOOK_FILE_MAX_SIZE + 1);
        if (n < 0) {
                snprintf(msg, sizeof(msg), "cannot read: %s", strerror(errno));
                log_hook_error(path, 0, name, msg);
                return -EINVAL;
        }
        r = hook_file_parse(&hf, name, text, (size_t) n, resolve_uid, &err);
        if (r == -EINVAL) {
                log_hook_error(path, err.line, name, err.message);
                return r;
        }
        if (r < 0)
                return r;
        if (access(hf->argv[0], X_OK) < 0) {
                snprintf(msg, sizeof(msg), "Command=: %s: %s", hf->argv[0], strerror(errno));
                log_hook_error(path, hf->command_line, name, msg);
                return -EINVAL;
        }

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->n_ref = 1;
        h->file = TAKE_PTR(hf);
        h->path = TAKE_PTR(path);
        h->active = true;
        if (h->file->user) {
                r = hook_set_user(h, self, msg, sizeof(msg));
                if (r == -ENOMEM) {
                        hook_unref(h);
                        return r;
                }
                if (r < 0) {
                        log_hook_error(h->path, h->file->user_line, h->file->name, msg);
                        hook_unref(h);
                        return -EINVAL;
                }
        }
        *ret = h;
        return 0;
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Load every *.conf of dir, in name order. Bad files are logged and left
 * out. Returns 0 (with the number of bad files), or -ENOMEM. A missing or
 * unreadable directory is logged and gives no hooks. */
static int hooks_load_dir(const char *dir, uid_t self, Hook ***ret, size_t *ret_n,
                          unsigned *ret_bad) {
        _cleanup_(hook_strv_freep) char **names = NULL;
        Hook **hooks = NULL;
        size_t n_names = 0, n = 0;
        unsigned bad = 0;
        struct dirent *de;
        DIR *d;
        int r = 0;

        *ret_bad = 0;
        d = opendir(dir);
        if (!d) {
                log_warning_errno(
                        errno, "Failed to open the hooks directory %s, no hooks loaded: %m", dir);
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        names = calloc(RUNNER_MAX_HOOKS + 1, sizeof(char *));
        if (!names) {
                closedir(d);
                return -ENOMEM;
        }
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                if (de->d_name[0] == '.' || len <= 5 || !streq(de->d_name + len - 5, ".conf"))
                        continue;
                if (n_names == RUNNER_MAX_HOOKS) {
                        log_error("%s/%s: more than %d hook files; hook not loaded.", dir,
                                  de->d_name, RUNNER_MAX_HOOKS);
                        bad++;
                        continue;
                }
                if (!(names[n_names++] = strdup(de->d_name))) {
                        closedir(d);
                        return -ENOMEM;
                }
        }
        closedir(d);
        qsort(names, n_names, sizeof(char *), compare_names);

        hooks = calloc(n_names + 1, sizeof(Hook *));
        if (!hooks)
                return -ENOMEM;
        for (size_t i = 0; i < n_names; i++) {
                r = hook_load(&hooks[n], dir, names[i], self);
                if (r == -EINVAL) {
                        bad++;
                        continue;
                }
                if (r < 0) {
                        hooks_free(hooks, n);
                        return r;
                }
                n++;
        }
        *ret = hooks;
        *ret_n = n;
        *ret_bad = bad;
        return 0;
}

/* --- the broker connection --- */

/*
 * Nothing here waits: the connection is made, subscribed and replayed
 * through the library's non-blocking calls, and their replies come to
 * callbacks from runner_on_broker. The phases:
 *
 *     IDLE ──runner_connect──► CONNECTING ──hello (and replays)──► SUBSCRIBING ──► CONNECTED
 *       ▲                          │                                  │               │
 *       └──── reconnect timer ◄────┴── refused, lost, RUNNER_CONNECT_TIMEOUT_USEC ◄───┘
 *
 * A library callback never frees the client (it is called from inside it):
 * what must start over with a new client is done by runner_connect.
 */

static int runner_on_broker(sd_event_source *s, int fd, uint32_t revents, void *userdata);
static void runner_drain(Runner *r);
static void runner_connection_lost(Runner *r);
static void runner_schedule_reconnect(Runner *r);

/* A subscription asked for: its reply goes to the hook (or the union) of
 * the round it was asked in. */
typedef struct SubCall {
        Runner *runner;
        Hook *hook;             /* a reference; NULL for the union subscription */
        unsigned generation;
        uint64_t id;
} SubCall;

static SubCall *sub_call_free(SubCall *sc) {
        if (!sc)
                return NULL;
        hook_unref(sc->hook);
        free(sc);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(SubCall *, sub_call_free)

/* Watch the descriptor the library has now, for what it wants; none while
 * disconnected. */
/* The broker's connection cannot be watched: the runner would be deaf
 * from now on, so it stops (exit non-zero: the service manager restarts
 * it) rather than run on without events. Returns error. */
static int runner_fail(Runner *r, int error, const char *what) {
        log_error_errno(error, "Failed to %s: %m; exiting so that the runner is restarted.", what);
        if (r->fatal == 0)
                r->fatal = error;
        (void) sd_event_exit(r->event, EXIT_FAILURE);
        return error;
}

/* Returns 0, or -errno after runner_fail(): callers may ignore the result,
 * the loop ends. */
static int runner_sync_io(Runner *r) {
        int fd = r->client ? pn_client_get_fd(r->client) : -1;
        uint32_t events = 0;
        int k;

        if (fd >= 0)
                events = (uint32_t) pn_client_get_events(r->client) & (EPOLLIN | EPOLLOUT);
        if (fd == r->io_fd && (fd < 0) == !r->io) {
                if (r->io && events != r->io_events) {
                        k = sd_event_source_set_io_events(r->io, events);
                        if (k < 0)
                                return runner_fail(r, k, "watch the broker connection");
                        r->io_events = events;
                }
                return 0;
        }
        r->io = sd_event_source_disable_unref(r->io);
        r->io_fd = -1;
        if (fd < 0)
                return 0;
        k = sd_event_add_io(r->event, &r->io, fd, events, runner_on_broker, r);
        if (k < 0)
                return runner_fail(r, k, "watch the broker connection");
        (void) sd_event_source_set_description(r->io, "broker");
        r->io_fd = fd;
        r->io_events = events;
        return 0;
}

static void runner_disarm_connect_timer(Runner *r) {
        if (r->connect_timer)
                (void) sd_event_source_set_enabled(r->connect_timer, SD_EVENT_OFF);
}

/* End the current subscriptions (without waiting for the answers). */
static void runner_unsubscribe_all(Runner *r) {
        for (size_t i = 0; i < r->n_hooks; i++)
                if (r->hooks[i]->sub_id) {
                        (void) pn_client_unsubscribe_async(r->client, r->hooks[i]->sub_id, NULL, NULL);
                        r->hooks[i]->sub_id = 0;
                }
        if (r->union_sub_id) {
                (void) pn_client_unsubscribe_async(r->client, r->union_sub_id, NULL, NULL);
                r->union_sub_id = 0;
        }
        r->subscribed = false;
}

/* Start over with a new client: after a failure half-way through
 * subscribing, the old one's subscriptions are not known for sure. Never
 * from a library callback. */
static int runner_reset_client(Runner *r) {
        PnClient *c = NULL;
        int k = pn_client_new(&c, r->socket_path);

        if (k < 0)
                return log_error_errno(k, "Failed to create a broker client: %m");
        r->generation++; /* what the old client still answers is stale */
        r->io = sd_event_source_disable_unref(r->io);
        r->io_fd = -1;
        pn_client_free(r->client);
        r->client = c;
        for (size_t i = 0; i < r->n_hooks; i++)
                r->hooks[i]->sub_id = 0;
        r->union_sub_id = 0;
        r->subscribed = false;
        r->reset_pending = false;
        r->phase = RUNNER_IDLE;
        return 0;
}

static void runner_notify_ready(Runner *r, const char *state) {
        size_t active = 0;
        for (size_t i = 0; i < r->n_hooks; i++)
                active += r->hooks[i]->active;
        (void) sd_notifyf(false, "READY=1\nSTATUS=%zu hooks, %s", active, state);
        r->ready_sent = true;
        r->reloading = false;
}

/* The connection failed before it was ready: log, and try again later. */
static void runner_connect_failed(Runner *r, int k) {
        runner_disarm_connect_timer(r);
        r->phase = RUNNER_IDLE;
        if (r->client && pn_client_get_error_code(r->client)[0])
                log_error("The broker at %s refused: %s: %s; retrying.",
                          pn_client_get_path(r->client), pn_client_get_error_code(r->client),
                          pn_client_get_error_message(r->client));
        else if (!r->retry_logged)
                log_warning_errno(k, "Failed to connect to the broker at %s, retrying: %m",
                                  pn_client_get_path(r->client));
        r->retry_logged = true;
        (void) runner_sync_io(r);
        if (!r->ready_sent || r->reloading)
                runner_notify_ready(r, "waiting for the broker");
        runner_schedule_reconnect(r);
}

/* Subscribing failed (not a hook refused: the connection or the union):
 * start over on a new connection. */
static void runner_subscribe_failed(Runner *r, int k) {
        log_warning_errno(k, "Failed to subscribe at the broker, retrying: %m");
        r->generation++;
        r->reset_pending = true;
        r->retry_logged = true;
        r->io = sd_event_source_disable_unref(r->io);
        r->io_fd = -1;
        runner_connect_failed(r, k);
}

/* Connected, and the current set of hooks subscribed. */
static void runner_connected(Runner *r) {
        runner_disarm_connect_timer(r);
        r->phase = RUNNER_CONNECTED;
        r->subscribed = true;
        r->reconnect_delay = 0;
        r->retry_logged = false;
        if (!r->connected_once)
                log_info("Connected to the broker at %s (version %s); %s.",
                         pn_client_get_path(r->client), pn_client_get_version(r->client),
                         pn_client_get_sees_all(r->client)
                                 ? "it shows this runner every process"
                                 : "it shows this runner only the processes of its own user");
        r->connected_once = true;
        (void) runner_sync_io(r);
        if (!r->ready_sent || r->reloading)
                runner_notify_ready(r, "connected");
        else
                (void) sd_notify(false, "STATUS=connected");
        /* Events parked meanwhile are read on the next iteration, not from
         * inside the library's callback that got here. */
        (void) sd_event_source_set_enabled(r->more, SD_EVENT_ONESHOT);
}

static int runner_subscribe_all(Runner *r);

static void runner_on_subscribed(PnClient *c, int result, const char *reply, void *userdata) {
        _cleanup_(sub_call_freep) SubCall *sc = userdata;
        Runner *r = sc->runner;
        Hook *h = sc->hook;
        int k;

        if (result == -ECANCELED || r->stopping)
                return; /* the client is being freed */
        if (sc->generation != r->generation) {
                /* A round given up: what it made is not wanted. */
                if (result == 0)
                        (void) pn_client_unsubscribe_async(c, sc->id, NULL, NULL);
                return;
        }
        r->n_subscribing--;
        if (result == 0) {
                if (h)
                        h->sub_id = sc->id;
                else
                        r->union_sub_id = sc->id;
        } else if (result == -EUSERS && h) {
                /* The broker's MaxSubscriptions= is lower than the hooks:
                 * one subscription for all, matched here. The rest of this
                 * round is refused too, or given back. */
                log_notice("The broker allows fewer subscriptions than there are hooks (%s): "
                           "subscribing once for all of them.",
                           pn_client_get_error_message(c));
                r->generation++;
                runner_unsubscribe_all(r);
                r->broker_limited = true;
                k = runner_subscribe_all(r);
                if (k < 0)
                        runner_subscribe_failed(r, k);
                return;
        } else if (h && pn_client_get_error_code(c)[0]) {
                log_error("%s: the broker refused this hook's subscription: %s: %s; hook %s disabled.",
                          h->path, pn_client_get_error_code(c), pn_client_get_error_message(c),
                          h->file->name);
                h->active = false;
                h->sub_id = 0;
        } else {
                runner_subscribe_failed(r, result);
                return;
        }
        if (r->n_subscribing == 0)
                runner_connected(r);
}

/* Ask for one subscription of the current round. */
static int runner_subscribe_one(Runner *r, Hook *h, const char *const *events, const char *match) {
        _cleanup_(sub_call_freep) SubCall *sc = calloc(1, sizeof(*sc));
        int k;

        if (!sc)
                return -ENOMEM;
        sc->runner = r;
        sc->hook = h ? hook_ref(h) : NULL;
        sc->generation = r->generation;
        k = pn_client_subscribe_async(r->client, events, match, false, &sc->id, runner_on_subscribed, sc);
        if (k < 0)
                return k;
        TAKE_PTR(sc); /* runner_on_subscribed frees it */
        r->n_subscribing++;
        return 0;
}

/* Ask for the current set's subscriptions: one per hook (the broker
 * filters), or, with very many hooks, one for the union of their event
 * types (matched here only). The replies come to runner_on_subscribed; the
 * last one makes the runner connected. */
static int runner_subscribe_all(Runner *r) {
        int k;

        r->phase = RUNNER_SUBSCRIBING;
        r->n_subscribing = 0;
        r->union_subscription = r->n_hooks > RUNNER_MAX_SUBSCRIPTIONS || r->broker_limited;
        if (r->union_subscription) {
                uint32_t bits = 0;
                const char *names[_PN_EVENT_TYPE_MAX + 1];
                size_t n = 0;
                for (size_t i = 0; i < r->n_hooks; i++)
                        bits |= r->hooks[i]->file->events;
                for (int t = 0; t < _PN_EVENT_TYPE_MAX; t++)
                        if (bits & PN_EVENT_BIT(t))
                                names[n++] = pn_event_type_to_string((PnEventType) t);
                names[n] = NULL;
                k = runner_subscribe_one(r, NULL, n ? names : NULL, NULL);
                if (k < 0)
                        return k;
        } else
                for (size_t i = 0; i < r->n_hooks; i++) {
                        Hook *h = r->hooks[i];
                        k = runner_subscribe_one(r, h, (const char *const *) h->file->event_names,
                                                 h->file->match_json);
                        if (k == -EINVAL && pn_client_get_error_code(r->client)[0]) {
                                log_error("%s: the broker refused this hook's subscription: %s: "
                                          "%s; hook %s disabled.",
                                          h->path, pn_client_get_error_code(r->client),
                                          pn_client_get_error_message(r->client), h->file->name);
                                h->active = false;
                                continue;
                        }
                        if (k < 0)
                                return k;
                }
        (void) runner_sync_io(r);
        if (r->n_subscribing == 0)
                runner_connected(r);
        return 0;
}

static void runner_on_open(PnClient *c, int result, const char *reply, void *userdata) {
        Runner *r = userdata;
        int k;

        if (result == -ECANCELED || r->stopping)
                return;
        if (result < 0) {
                runner_connect_failed(r, result);
                return;
        }
        if (r->subscribed) {
                /* A reconnect: the library made the subscriptions again (and
                 * queued a "restart" overrun). */
                runner_connected(r);
                return;
        }
        k = runner_subscribe_all(r);
        if (k < 0)
                runner_subscribe_failed(r, k);
}

static int runner_on_reconnect(sd_event_source *s, uint64_t usec, void *userdata);

static void runner_schedule_reconnect(Runner *r) {
        int k;

        r->reconnecting = true;
        r->reconnect_delay = r->reconnect_delay == 0
                                     ? RECONNECT_MIN_USEC
                                     : MIN(r->reconnect_delay * 2, RECONNECT_MAX_USEC);
        if (r->reconnect) {
                k = sd_event_source_set_time_relative(r->reconnect, r->reconnect_delay);
                if (k >= 0)
                        k = sd_event_source_set_enabled(r->reconnect, SD_EVENT_ONESHOT);
        } else {
                k = sd_event_add_time_relative(r->event, &r->reconnect, CLOCK_MONOTONIC,
                                               r->reconnect_delay, 10000, runner_on_reconnect, r);
                if (k >= 0)
                        (void) sd_event_source_set_description(r->reconnect, "reconnect");
        }
        if (k < 0)
                log_error_errno(k, "Failed to arm the reconnect timer, not reconnecting: %m");
}

static int runner_on_connect_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Runner *r = userdata;

        if (r->phase == RUNNER_IDLE || r->phase == RUNNER_CONNECTED)
                return 0;
        log_warning("The broker at %s did not answer within %llu s, retrying.",
                    pn_client_get_path(r->client),
                    (unsigned long long) (RUNNER_CONNECT_TIMEOUT_USEC / UINT64_C(1000000)));
        r->retry_logged = true;
        (void) runner_reset_client(r);
        if (!r->ready_sent || r->reloading)
                runner_notify_ready(r, "waiting for the broker");
        runner_schedule_reconnect(r);
        return 0;
}

static int runner_arm_connect_timer(Runner *r) {
        int k;

        if (r->connect_timer) {
                k = sd_event_source_set_time_relative(r->connect_timer, RUNNER_CONNECT_TIMEOUT_USEC);
                if (k >= 0)
                        k = sd_event_source_set_enabled(r->connect_timer, SD_EVENT_ONESHOT);
        } else {
                k = sd_event_add_time_relative(r->event, &r->connect_timer, CLOCK_MONOTONIC,
                                               RUNNER_CONNECT_TIMEOUT_USEC, 10000,
                                               runner_on_connect_timeout, r);
                if (k >= 0)
                        (void) sd_event_source_set_description(r->connect_timer, "connect-timeout");
        }
        return k;
}

/* Start connecting (or reconnecting: the library then replays the
 * subscriptions and queues a "restart" overrun). The rest happens in
 * runner_on_open. */
static void runner_connect(Runner *r) {
        int k;

        if (r->stopping)
                return;
        r->reconnecting = false;
        if (r->reset_pending && runner_reset_client(r) < 0) {
                runner_schedule_reconnect(r);
                return;
        }
        r->phase = RUNNER_CONNECTING;
        k = pn_client_open_async(r->client, runner_on_open, r);
        if (k >= 0)
                k = runner_sync_io(r);
        if (k >= 0)
                k = runner_arm_connect_timer(r);
        if (k < 0) {
                if (pn_client_get_fd(r->client) >= 0)
                        r->reset_pending = true; /* give up this connection */
                runner_connect_failed(r, k);
        }
}

static int runner_on_reconnect(sd_event_source *s, uint64_t usec, void *userdata) {
        Runner *r = userdata;
        runner_connect(r);
        return 0;
}

static void runner_connection_lost(Runner *r) {
        (void) runner_sync_io(r);
        /* Before the connection was ready, the callbacks told of the loss. */
        if (r->stopping || r->reconnecting || r->phase != RUNNER_CONNECTED)
                return;
        r->phase = RUNNER_IDLE;
        log_warning("Lost the connection to the broker at %s; reconnecting (events until then are "
                    "not seen).", pn_client_get_path(r->client));
        (void) sd_notify(false, "STATUS=reconnecting to the broker");
        r->reconnect_delay = 0;
        runner_schedule_reconnect(r);
}

/* --- jobs --- */

static void runner_start_queued(Runner *r);

static Job *job_free(Job *j) {
        if (!j)
                return NULL;
        Runner *r = j->runner;
        if (j->prev)
                j->prev->next = j->next;
        else
                r->jobs = j->next;
        if (j->next)
                j->next->prev = j->prev;
        sd_event_source_disable_unref(j->child_source);
        sd_event_source_disable_unref(j->timer_source);
        j->hook->n_running--;
        r->n_running--;
        hook_unref(j->hook);
        free(j);
        return NULL;
}

const char *runner_log_escape(char *buf, size_t size, const char *s) {
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;

        for (size_t i = 0, n = strlen(s); i < n;) {
                unsigned char c = (unsigned char) s[i];
                char esc[8];
                size_t l, step = 1;

                if (c == '\\' || c == '\n' || c == '\t' || c == '\r') {
                        esc[0] = '\\';
                        esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : c == '\r' ? 'r' : '\\';
                        l = 2;
                } else if (c < 0x20 || c == 0x7f) {
                        memcpy(esc, (char[]){ '\\', 'x', hex[c >> 4], hex[c & 0xf] }, 4);
                        l = 4;
                } else if (c < 0x80) {
                        esc[0] = (char) c;
                        l = 1;
                } else if (c == 0xc2 && i + 1 < n && (unsigned char) s[i + 1] <= 0x9f &&
                           (unsigned char) s[i + 1] >= 0x80) {
                        unsigned char d = (unsigned char) s[i + 1];
                        memcpy(esc, (char[]){ '\\', 'u', '0', '0', hex[d >> 4], hex[d & 0xf] }, 6);
                        l = 6;
                        step = 2;
                } else if ((step = pn_utf8_char_len(s + i, n - i)) > 0) {
                        memcpy(esc, s + i, step);
                        l = step;
                } else {
                        memcpy(esc, (char[]){ '\\', 'x', hex[c >> 4], hex[c & 0xf] }, 4);
                        l = 4;
                        step = 1;
                }
                if (o + l >= size)
                        break;
                memcpy(buf + o, esc, l);
                o += l;
                i += step;
        }
        buf[o] = 0;
        return buf;
}

static void describe_event(char *buf, size_t size, const EventInfo *e) {
        char comm[PN_COMM_SIZE * 2];

        if (e->type == PN_EVENT_OVERRUN)
                snprintf(buf, size, "overrun%s%llu", e->seq ? " seq " : "",
                         (unsigned long long) e->seq);
        else
                snprintf(buf, size, "%s seq %llu of %d %s", pn_event_type_to_string(e->type),
                         (unsigned long long) e->seq, (int) e->pid,
                         e->comm[0] ? runner_log_escape(comm, sizeof(comm), e->comm) : "?");
}

static int job_on_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Job *j = userdata;
        Runner *r = j->runner;
        double ms = (double) (now_usec() - j->start_usec) / 1000.0;
        char what[160];

        describe_event(what, sizeof(what), &j->info);
        if (si->si_code == CLD_EXITED && si->si_status == 0)
                log_info("Hook %s: pid %d (%s) exited with status 0 after %.1f ms.",
                         j->hook->file->name, (int) j->pid, what, ms);
        else if (si->si_code == CLD_EXITED)
                log_warning("Hook %s: pid %d (%s) failed with exit status %d after %.1f ms.",
                            j->hook->file->name, (int) j->pid, what, si->si_status, ms);
        else
                log_warning(
                        "Hook %s: pid %d (%s) was killed by signal %d (SIG%s)%s after %.1f ms%s.",
                        j->hook->file->name, (int) j->pid, what, si->si_status,
                        sigabbrev_np(si->si_status) ? sigabbrev_np(si->si_status) : "?",
                        si->si_code == CLD_DUMPED ? ", dumping core" : "", ms,
                        j->timed_out ? ", at its timeout" : "");
        job_free(j);
        if (r->stopping && !r->jobs)
                (void) sd_event_exit(r->event, 0);
        else
                runner_start_queued(r);
        return 0;
}

static int job_on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Job *j = userdata;

        log_error("Hook %s: pid %d is still running at its timeout of %.3f s: killing its process "
                  "group.",
                  j->hook->file->name, (int) j->pid, (double) j->hook->file->timeout_usec / 1e6);
        j->timed_out = true;
        /* The leader is not reaped before its exit is handled, so its pid
         * (the group's id) cannot have been reused. */
        if (kill(-j->pid, SIGKILL) < 0)
                log_warning_errno(errno, "Hook %s: failed to kill process group %d: %m",
                                  j->hook->file->name, (int) j->pid);
        return 0;
}

/* Start h's command for one event line. Returns 0, or a negative errno
 * (logged). */
static int runner_start_job(Runner *r, Hook *h, const char *line, size_t len,
                            const EventInfo *info) {
        _cleanup_(hook_strv_freep) char **event_env = NULL, **env = NULL;
        _cleanup_(sd_event_source_unrefp) sd_event_source *child = NULL, *timer = NULL;
        char what[160];
        Job *j;
        int k;

        describe_event(what, sizeof(what), info);
        k = hook_env_from_event(line, len > 0 && line[len - 1] == '\n' ? len - 1 : len, &event_env);
        if (k >= 0)
                k = hook_env_build(&env, environ, h->user_env, event_env);
        if (k < 0)
                return log_error_errno(k, "Hook %s: failed to build the environment for %s: %m",
                                       h->file->name, what);
        j = calloc(1, sizeof(*j));
        if (!j)
                return log_error_errno(ENOMEM, "Out of memory.");

        k = hook_spawn(&j->pid, h->file->argv, env, line, len, &h->cred);
        if (k < 0) {
                free(j);
                return log_error_errno(k, "Hook %s: failed to start %s for %s: %m", h->file->name,
                                       h->file->argv[0], what);
        }
        j->start_usec = now_usec();
        k = sd_event_add_child(r->event, &child, j->pid, WEXITED, job_on_exit, j);
        /* From the fork, not from the loop's cached "now", which may be
         * older by everything this iteration did before. */
        if (k >= 0)
                k = sd_event_add_time(r->event, &timer, CLOCK_MONOTONIC,
                                      j->start_usec + h->file->timeout_usec, 1000, job_on_timeout,
                                      j);
        if (k < 0) {
                /* Not watched, so not bounded: it must not run. */
                (void) kill(-j->pid, SIGKILL);
                (void) waitpid(j->pid, NULL, 0);
                free(j);
                return log_error_errno(k, "Hook %s: failed to watch its process: %m",
                                       h->file->name);
        }
        (void) sd_event_source_set_description(child, "hook");
        (void) sd_event_source_set_description(timer, "hook-timeout");
        j->child_source = TAKE_PTR(child);
        j->timer_source = TAKE_PTR(timer);
        j->runner = r;
        j->hook = hook_ref(h);
        j->info = *info;
        j->next = r->jobs;
        if (r->jobs)
                r->jobs->prev = j;
        r->jobs = j;
        h->n_running++;
        r->n_running++;
        if (info->ts_ns > 0)
                log_debug("Hook %s: started pid %d for %s, %.0f us after the kernel's event.",
                          h->file->name, (int) j->pid, what,
                          (double) ((int64_t) (j->start_usec * 1000) - (int64_t) info->ts_ns) /
                                  1000.0);
        else
                log_debug("Hook %s: started pid %d for %s.", h->file->name, (int) j->pid, what);
        return 0;
}

static bool hook_can_start(const Runner *r, const Hook *h) {
        return h->n_running < h->file->max_concurrent && r->n_running < RUNNER_MAX_RUNNING;
}

static void hook_report_drops(Hook *h) {
        if (h->dropped <= 1) {
                h->dropped = 0;
                return;
        }
        log_warning(
                "Hook %s: %llu events were dropped in all while it was at MaxConcurrent=%u with "
                "MaxQueued=%u queued (%llu since start).",
                h->file->name, (unsigned long long) h->dropped, h->file->max_concurrent,
                h->file->max_queued, (unsigned long long) h->dropped_total);
        h->dropped = 0;
}

/* Start what the limits now allow, oldest events first. */
static void runner_start_queued(Runner *r) {
        bool progress = true;

        while (progress && r->n_running < RUNNER_MAX_RUNNING) {
                progress = false;
                for (size_t i = 0; i < r->n_hooks; i++) {
                        Hook *h = r->hooks[i];
                        Queued *q = h->queue_head;
                        if (!q || !hook_can_start(r, h))
                                continue;
                        h->queue_head = q->next;
                        if (!h->queue_head)
                                h->queue_tail = NULL;
                        h->n_queued--;
                        r->queued_bytes -= q->len;
                        (void) runner_start_job(r, h, q->line, q->len, &q->info);
                        free(q);
                        progress = true;
                }
        }
        for (size_t i = 0; i < r->n_hooks; i++)
                if (r->hooks[i]->n_queued == 0)
                        hook_report_drops(r->hooks[i]);
}

static void runner_submit(Runner *r, Hook *h, const PnEvent *ev, const char *line, size_t len) {
        EventInfo info = {
                .seq = pn_event_get_seq(ev),
                .ts_ns = pn_event_get_ts_ns(ev),
                .type = pn_event_get_type(ev),
        };
        const char *comm = pn_event_get_comm(ev);
        char what[160];

        if (info.type != PN_EVENT_OVERRUN) {
                info.pid = pn_event_get_tgid(ev);
                if (comm)
                        snprintf(info.comm, sizeof(info.comm), "%.*s",
                                 PN_UTF8_CUT(comm, sizeof(info.comm) - 1));
        }
        if (!h->queue_head && hook_can_start(r, h)) {
                (void) runner_start_job(r, h, line, len, &info);
                return;
        }
        if (h->n_queued < h->file->max_queued && r->queued_bytes + len <= RUNNER_MAX_QUEUED_BYTES) {
                Queued *q = malloc(sizeof(*q) + len);
                if (q) {
                        *q = (Queued) { .info = info, .len = len };
                        memcpy(q->line, line, len);
                        if (h->queue_tail)
                                h->queue_tail->next = q;
                        else
                                h->queue_head = q;
                        h->queue_tail = q;
                        h->n_queued++;
                        r->queued_bytes += len;
                        if (hook_can_start(r, h))
                                runner_start_queued(r);
                        return;
                }
        }
        describe_event(what, sizeof(what), &info);
        h->dropped_total++;
        if (h->dropped++ == 0)
                log_warning("Hook %s: dropped %s: %u running (MaxConcurrent=%u) and %u queued "
                            "(MaxQueued=%u%s); further drops are counted.",
                            h->file->name, what, h->n_running, h->file->max_concurrent, h->n_queued,
                            h->file->max_queued,
                            r->queued_bytes + len > RUNNER_MAX_QUEUED_BYTES
                                    ? ", or the runner's queue is full"
                                    : "");
}

/* --- events --- */

static void runner_log_overrun(Runner *r, const PnEvent *ev) {
        unsigned long long lost = pn_event_get_lost(ev);

        switch (pn_event_get_overrun_where(ev)) {
        case PN_OVERRUN_KERNEL:
                log_warning("The kernel dropped %llu events for the broker: hooks may have missed "
                            "events.",
                            lost);
                break;
        case PN_OVERRUN_CLIENT:
                log_warning("The broker dropped %llu events for this runner (seq %llu-%llu), which "
                            "read too "
                            "slowly: hooks may have missed events.",
                            lost, (unsigned long long) pn_event_get_first_seq(ev),
                            (unsigned long long) pn_event_get_last_seq(ev));
                break;
        case PN_OVERRUN_RESTART:
                log_warning("Reconnected to the broker (instance %s): events while disconnected "
                            "are not known.",
                            pn_client_get_instance_id(r->client));
                break;
        default:
                log_warning("Events were lost (%llu).", lost);
        }
}

static void runner_handle_event(Runner *r, const PnEvent *ev) {
        const char *line = pn_client_get_line(r->client);
        _cleanup_free_ char *text = NULL;
        size_t len;

        if (pn_event_get_type(ev) == PN_EVENT_OVERRUN)
                runner_log_overrun(r, ev);
        if (!line)
                return;
        /* The line the hook reads on stdin ends with a newline, as on the socket. */
        len = strlen(line);
        text = malloc(len + 2);
        if (!text) {
                log_error_errno(ENOMEM, "Out of memory: an event was not handed to hooks.");
                return;
        }
        memcpy(text, line, len);
        text[len++] = '\n';
        text[len] = 0;
        for (size_t i = 0; i < r->n_hooks; i++) {
                Hook *h = r->hooks[i];
                if (h->active && hook_file_match(h->file, ev))
                        runner_submit(r, h, ev, text, len);
        }
}

/* Handle up to a batch of events; if more are left (in the socket or
 * parked in the library), come back on the next loop iteration, so that
 * hook exits and signals are served in between. */
static void runner_drain(Runner *r) {
        const PnEvent *ev;

        if (r->stopping)
                return; /* the client is gone */

        for (unsigned i = 0; i < RUNNER_BATCH; i++) {
                int k = pn_client_next(r->client, &ev, 0);
                if (k == 0) {
                        (void) runner_sync_io(r); /* a reply's callback may have queued requests */
                        return;
                }
                if (k == -ECONNRESET || k == -EMSGSIZE || k == -ENOTCONN || k == -EPROTO) {
                        runner_connection_lost(r);
                        return;
                }
                if (k < 0) {
                        log_warning_errno(k, "Failed to read from the broker, ignoring: %m");
                        (void) runner_sync_io(r);
                        return;
                }
                runner_handle_event(r, ev);
        }
        (void) sd_event_source_set_enabled(r->more, SD_EVENT_ONESHOT);
}

static int runner_on_broker(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Runner *r = userdata;
        int k;

        /* Writes queued requests, reads the hello and replies (their
         * callbacks run from here); events are left for runner_drain. */
        k = pn_client_process(r->client);
        if (k < 0) {
                runner_connection_lost(r);
                return 0;
        }
        runner_drain(r);
        (void) runner_sync_io(r);
        return 0;
}

static int runner_on_more(sd_event_source *s, void *userdata) {
        Runner *r = userdata;
        runner_drain(r);
        return 0;
}

/* --- reload and stop --- */

static void runner_reload(Runner *r) {
        Hook **hooks = NULL;
        size_t n = 0;
        unsigned bad;
        bool connected;
        int k;

        (void) sd_notify(false, "RELOADING=1");
        r->reloading = true;
        k = hooks_load_dir(r->hooks_dir, r->uid, &hooks, &n, &bad);
        if (k < 0) {
                log_error_errno(k, "Failed to reload %s, keeping the hooks loaded before: %m",
                                r->hooks_dir);
                runner_notify_ready(r, "reload failed");
                return;
        }
        connected = r->phase == RUNNER_CONNECTED;
        if (connected)
                runner_unsubscribe_all(r);
        /* A hook of the same name takes over its predecessor's jobs and
         * queue: its limits keep counting them. */
        for (size_t i = 0; i < n; i++)
                for (size_t o = 0; o < r->n_hooks; o++) {
                        Hook *old = r->hooks[o], *h = hooks[i];
                        if (!streq(old->file->name, h->file->name))
                                continue;
                        for (Job *j = r->jobs; j; j = j->next)
                                if (j->hook == old) {
                                        hook_unref(old);
                                        j->hook = hook_ref(h);
                                        old->n_running--;
                                        h->n_running++;
                                }
                        h->queue_head = TAKE_PTR(old->queue_head);
                        h->queue_tail = TAKE_PTR(old->queue_tail);
                        h->n_queued = old->n_queued;
                        old->n_queued = 0;
                        h->dropped = old->dropped;
                        h->dropped_total = old->dropped_total;
                }
        for (size_t o = 0; o < r->n_hooks; o++) {
                Hook *old = r->hooks[o];
                if (old->n_queued > 0)
                        log_warning(
                                "Hook %s is gone after the reload: dropped its %u queued events.",
                                old->file->name, old->n_queued);
                for (Queued *q; (q = old->queue_head);) {
                        old->queue_head = q->next;
                        r->queued_bytes -= q->len;
                        free(q);
                }
                old->queue_tail = NULL;
                old->n_queued = 0;
        }
        hooks_free(r->hooks, r->n_hooks);
        r->hooks = hooks;
        r->n_hooks = n;
        log_info("Reloaded %s: %zu hooks%s.", r->hooks_dir, n,
                 bad ? ", some files with errors (see above)" : "");

        if (connected) {
                /* READY=1 once the new set is subscribed (runner_connected). */
                k = runner_subscribe_all(r);
                if (k < 0)
                        runner_subscribe_failed(r, k);
        } else if (r->phase != RUNNER_IDLE) {
                /* A connection half made, for the old set: make it again. */
                runner_disarm_connect_timer(r);
                if (runner_reset_client(r) >= 0)
                        runner_connect(r);
                else
                        runner_connect_failed(r, -ENOMEM);
        } else {
                /* Subscribed with the new set once connected. */
                (void) runner_reset_client(r);
                runner_notify_ready(r, "waiting for the broker");
        }
        runner_start_queued(r);
        runner_drain(r);
}

static int runner_on_stop_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Runner *r = userdata;
        for (Job *j = r->jobs; j; j = j->next) {
                log_warning("Hook %s: pid %d still running at shutdown: killing its process group.",
                            j->hook->file->name, (int) j->pid);
                (void) kill(-j->pid, SIGKILL);
        }
        return 0;
}

static void runner_stop(Runner *r, int sig) {
        if (r->stopping) {
                /* Asked twice: do not wait any longer. */
                runner_on_stop_timeout(NULL, 0, r);
                return;
        }
        log_info("Received SIG%s, stopping.", sigabbrev_np(sig));
        r->stopping = true;
        (void) sd_notify(false, "STOPPING=1");
        r->io = sd_event_source_disable_unref(r->io);
        r->io_fd = -1;
        r->reconnect = sd_event_source_disable_unref(r->reconnect);
        r->connect_timer = sd_event_source_disable_unref(r->connect_timer);
        r->client = pn_client_free(r->client);
        for (size_t i = 0; i < r->n_hooks; i++) {
                Hook *h = r->hooks[i];
                if (h->n_queued > 0)
                        log_warning("Hook %s: dropped %u queued events at shutdown.", h->file->name,
                                    h->n_queued);
                for (Queued *q; (q = h->queue_head);) {
                        h->queue_head = q->next;
                        free(q);
                }
                h->queue_tail = NULL;
                h->n_queued = 0;
        }
        r->queued_bytes = 0;
        if (!r->jobs) {
                (void) sd_event_exit(r->event, 0);
                return;
        }
        for (Job *j = r->jobs; j; j = j->next)
                (void) kill(-j->pid, SIGTERM);
        if (sd_event_add_time_relative(r->event, &r->stop_timer, CLOCK_MONOTONIC,
                                       RUNNER_STOP_GRACE_USEC, 10000, runner_on_stop_timeout,
                                       r) < 0)
                runner_on_stop_timeout(NULL, 0, r);
}

static int runner_on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Runner *r = userdata;

        if (si->ssi_signo == SIGHUP) {
                if (!r->stopping)
                        runner_reload(r);
                return 0;
        }
        runner_stop(r, (int) si->ssi_signo);
        return 0;
}

/* --- the object --- */

int runner_new(Runner **ret, const char *hooks_dir, const char *socket_path) {
        Runner *r = calloc(1, sizeof(*r));
        int k;

        if (!r)
                return -ENOMEM;
        r->io_fd = -1;
        r->uid = geteuid();
        r->hooks_dir = strdup(hooks_dir ? hooks_dir : RUNNER_DEFAULT_HOOKS_DIR);
        r->socket_path = socket_path ? strdup(socket_path) : NULL;
        if (!r->hooks_dir || (socket_path && !r->socket_path)) {
                runner_free(r);
                return -ENOMEM;
        }
        k = pn_client_new(&r->client, socket_path);
        if (k < 0) {
                runner_free(r);
                return k;
        }
        *ret = r;
        return 0;
}

Runner *runner_free(Runner *r) {
        if (!r)
                return NULL;
        while (r->jobs)
                job_free(r->jobs); /* only after the loop failed: the processes go on alone */
        sd_event_source_disable_unref(r->io);
        sd_event_source_disable_unref(r->more);
        sd_event_source_disable_unref(r->reconnect);
        sd_event_source_disable_unref(r->connect_timer);
        sd_event_source_disable_unref(r->stop_timer);
        hooks_free(r->hooks, r->n_hooks);
        pn_client_free(r->client);
        sd_event_unref(r->event);
        free(r->hooks_dir);
        free(r->socket_path);
        free(r);
        return NULL;
}

int runner_check(Runner *r, unsigned *ret_loaded) {
        Hook **hooks = NULL;
        size_t n = 0;
        unsigned bad;
        int k = hooks_load_dir(r->hooks_dir, r->uid, &hooks, &n, &bad);

        if (k < 0)
                return k;
        hooks_free(hooks, n);
        *ret_loaded = (unsigned) n;
        return (int) bad;
}

int runner_run(Runner *r) {
        sigset_t mask;
        unsigned bad;
        int k;

        /* The hook processes get them back (hook_spawn resets every signal). */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m");
        (void) signal(SIGPIPE, SIG_IGN);

        k = sd_event_default(&r->event);
        if (k < 0)
                return log_error_errno(k, "Failed to create the event loop: %m");
        int sigs[] = { SIGTERM, SIGINT, SIGHUP };
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++) {
                k = sd_event_add_signal(r->event, NULL, sigs[i], runner_on_signal, r);
                if (k < 0)
                        return log_error_errno(k, "Failed to watch signals: %m");
        }
        k = sd_event_add_defer(r->event, &r->more, runner_on_more, r);
        if (k < 0)
                return log_error_errno(k, "Failed to create the event loop: %m");
        (void) sd_event_source_set_enabled(r->more, SD_EVENT_OFF);
        (void) sd_event_source_set_description(r->more, "broker-more");

        k = hooks_load_dir(r->hooks_dir, r->uid, &r->hooks, &r->n_hooks, &bad);
        if (k < 0)
                return log_error_errno(k, "Failed to load %s: %m", r->hooks_dir);
        log_info("Loaded %zu hooks from %s%s.", r->n_hooks, r->hooks_dir,
                 bad ? "; some files have errors (see above) and were left out" : "");

        runner_connect(r);
        k = sd_event_loop(r->event);
        if (k < 0)
                return log_error_errno(k, "Event loop failed: %m");
        if (r->fatal < 0)
                return r->fatal;
        log_info("Stopped.");
        return 0;
}
