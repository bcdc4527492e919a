/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Config: procnotify.conf read, checked and defaulted (every error reported
 * with its line, in one pass); see config.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "common/linux-compat.h"
#include "common/macro.h"
#include "config.h"
#include "protocol/utf8.h"

int config_new(Config **ret) {
        Config *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->socket_path = strdup(CONFIG_DEFAULT_SOCKET);
        c->dbus = strdup("system");
        c->group = strdup("procnotify");
        if (!c->socket_path || !c->dbus || !c->group) {
                config_free(c);
                return -ENOMEM;
        }
        /* Memory is charged only for what is queued: this is what a
         * 1,000,000-event burst needs while the broker shares 2 CPUs with
         * the generator and the subscriber (32M lost events 2 runs in 6). */
        c->receive_buffer = 128u << 20;
        c->max_clients = 1024;
        c->max_clients_per_uid = 64;
        c->max_subscriptions = 64;
        c->max_subscriptions_per_uid = 256;
        c->client_queue_bytes = 1u << 20;
        c->max_processes = 1u << 22;
        c->max_watches = 64;
        c->max_watches_per_uid = 256;
        c->max_traced_threads = 4096;
        c->log_level = LOG_INFO;
        c->journal = true;
        c->override_receive_buffer = UINT64_MAX;
        c->override_log_level = -1;
        c->run_output = CONFIG_RUN_OUTPUT_AUTO;
        c->run_log_directory = strdup(CONFIG_DEFAULT_RUN_LOG_DIRECTORY);
        c->run_stop_timeout = 5;
        c->max_children = 64;
        c->max_children_per_uid = 16;
        if (!c->run_log_directory) {
                config_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

void config_apply_overrides(Config *c) {
        if (c->override_receive_buffer != UINT64_MAX)
                c->receive_buffer = c->override_receive_buffer;
        if (c->override_log_level >= 0)
                c->log_level = c->override_log_level;
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        free(c->socket_path);
        free(c->dbus);
        free(c->group);
        free(c->run_log_directory);
        free(c);
        return NULL;
}

int config_parse_size(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (!s || !*s || *s == '-')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s)
                return -EINVAL;
        unsigned shift = 0;
        switch (*end) {
        case 0: break;
        case 'K': case 'k': shift = 10; end++; break;
        case 'M': case 'm': shift = 20; end++; break;
        case 'G': case 'g': shift = 30; end++; break;
        default: return -EINVAL;
        }
        if (*end || (shift && v > (UINT64_MAX >> shift)))
                return -EINVAL;
        *ret = (uint64_t) v << shift;
        return 0;
}

static int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret) {
        uint64_t v;
        if (config_parse_size(s, &v) < 0 || v < min || v > max)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

static int parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = { "yes", "true", "on", "1" };
        static const char *const no[] = { "no", "false", "off", "0" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

int config_parse_prctl_signal(const char *s, int *ret) {
        static const struct {
                const char *name;
                int sig;
        } names[] = {
                { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "PWR", SIGPWR },   { "URG", SIGURG },
                { "WINCH", SIGWINCH }, { "IO", SIGIO },   { "ALRM", SIGALRM },
        };
        char *end;
        long v = -1;

        if (!s || !*s)
                return -EINVAL;
        if (strncmp(s, "SIG", 3) == 0)
                s += 3;
        if (*s >= '0' && *s <= '9') {
                v = strtol(s, &end, 10);
                if (*end)
                        return -EINVAL;
        } else if (strncmp(s, "RTMIN", 5) == 0) {
                v = SIGRTMIN;
                if (s[5] == '+') {
                        long off = strtol(s + 6, &end, 10);
                        if (*end || s[6] < '0' || s[6] > '9' || off > SIGRTMAX - SIGRTMIN)
                                return -EINVAL;
                        v += off;
                } else if (s[5])
                        return -EINVAL;
        } else {
                for (size_t i = 0; i < ELEMENTSOF(names); i++)
                        if (streq(s, names[i].name))
                                v = names[i].sig;
        }
        if (v < 1 || v > SIGRTMAX || v == SIGKILL || v == SIGSTOP || v == SIGCHLD || v == SIGTERM ||
            v == SIGINT || v == SIGHUP || v == SIGCONT || v == SIGSEGV || v == SIGBUS ||
            v == SIGFPE || v == SIGILL || v == SIGPIPE)
                return -EINVAL;
        *ret = (int) v;
        return 0;
}

/* A prctl option number: any positive int (the patched numbers collide with
 * upstream ones, so nothing is assumed about them). */
static int parse_prctl_number(const char *s, int *ret) {
        unsigned v;
        int r = parse_unsigned(s, 1, INT32_MAX, &v);
        if (r < 0)
                return r;
        *ret = (int) v;
        return 0;
}

static int parse_events(const char *s, uint32_t *ret) {
        static const struct {
                const char *name;
                uint32_t bit;
        } names[] = {
                { "fork", PROC_EVENT_FORK },       { "exec", PROC_EVENT_EXEC },
                { "uid", PROC_EVENT_UID },         { "gid", PROC_EVENT_GID },
                { "sid", PROC_EVENT_SID },         { "ptrace", PROC_EVENT_PTRACE },
                { "comm", PROC_EVENT_COMM },       { "predump", PROC_EVENT_COREDUMP },
                { "exit", PROC_EVENT_EXIT },
        };
        uint32_t mask = 0;
        _cleanup_free_ char *copy = strdup(s);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        for (char *w = strtok_r(copy, " ,", &save); w; w = strtok_r(NULL, " ,", &save)) {
                size_t i;
                if (streq(w, "all")) {
                        mask = PROC_EVENT_ALL;
                        continue;
                }
                for (i = 0; i < ELEMENTSOF(names); i++)
                        if (streq(w, names[i].name))
                                break;
                if (i == ELEMENTSOF(names))
                        return -EINVAL;
                mask |= names[i].bit;
        }
        if (!mask)
                return -EINVAL;
        /* The process table always needs these to stay exact. */
        mask |= PROC_EVENT_FORK | PROC_EVENT_EXEC | PROC_EVENT_EXIT | PROC_EVENT_UID;
        *ret = mask == PROC_EVENT_ALL ? 0 : mask;
        return 0;
}

static int set_string(char **slot, const char *v) {
        char *s = strdup(v);
        if (!s)
                return -ENOMEM;
        free(*slot);
        *slot = s;
        return 0;
}

typedef struct ParseCtx {
        Config *c;
        const char *cursor;   /* the text not yet handed to inih */
        unsigned line;        /* the line inih is parsing now */
        bool section_known;   /* false in an unknown section: its keys are not reported again */
        unsigned n_errors, n_shown;
        char *error;          /* every error, "line N: message" a line */
        size_t error_size, error_len;
} ParseCtx;

static const char *const config_sections[] = { "Broker", "Connector", "Limits", "Run", "Policy" };

/* Record one error; a message for a line names it. When the caller's
 * buffer is full the count still grows, and the last line says how many
 * more there were. */
_printf_(3, 4) static void parse_error(ParseCtx *p, unsigned line, const char *fmt, ...) {
        char msg[256];
        va_list ap;
        int n;

        p->n_errors++;
        if (!p->error || p->error_size == 0)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        /* Keep room for the "…and N more" line. */
        size_t room = p->error_size > 48 ? p->error_size - 48 : 0;
        if (line)
                n = snprintf(NULL, 0, "%sline %u: %s", p->error_len ? "\n" : "", line, msg);
        else
                n = snprintf(NULL, 0, "%s%s", p->error_len ? "\n" : "", msg);
        if (n < 0 || p->error_len + (size_t) n >= room)
                return;
        if (line)
                snprintf(p->error + p->error_len, p->error_size - p->error_len, "%sline %u: %s",
                         p->error_len ? "\n" : "", line, msg);
        else
                snprintf(p->error + p->error_len, p->error_size - p->error_len, "%s%s",
                         p->error_len ? "\n" : "", msg);
        p->error_len += (size_t) n;
        p->n_shown++;
}

static bool is_blank(char ch) {
        return ch == ' ' || ch == '\t' || ch == '\r';
}

/* inih's line reader, over the text in p->cursor. It counts lines (the
 * packaged libinih gives handlers no line number) and normalises each line
 * before inih sees it, so that the grammar is the documented one:
 * - leading blanks are dropped: a setting is never taken as the
 *   continuation of the one above;
 * - a comment may follow a value, after a blank: "Key=value   # why"
 *   (libinih as packaged knows only ';' there);
 * - a line that is neither blank, a comment, a [Section] nor Key=Value, an
 *   unknown section and a line too long for inih are reported here, with
 *   their line, and inih gets an empty line instead, so that it goes on. */
static char *parse_read_line(char *buf, int size, void *stream) {
        ParseCtx *p = stream;
        const char *nl;
        size_t len;
        char *s, *e;

        if (!*p->cursor)
                return NULL;
        nl = strchrnul(p->cursor, '\n');
        len = (size_t) (nl - p->cursor);
        p->line++;
        buf[0] = 0;
        if (len >= (size_t) size - 1) {
                parse_error(p, p->line, "line longer than %d characters", size - 2);
                p->cursor = *nl ? nl + 1 : nl;
                return buf;
        }
        memcpy(buf, p->cursor, len);
        buf[len] = 0;
        p->cursor = *nl ? nl + 1 : nl;

        s = buf;
        while (is_blank(*s))
                s++;
        if (*s == '#' || *s == ';') {
                buf[0] = 0;
                return buf;
        }
        for (e = s; *e; e++)
                if ((*e == '#' || *e == ';') && e > s && is_blank(e[-1])) {
                        *e = 0;
                        break;
                }
        e = s + strlen(s);
        while (e > s && is_blank(e[-1]))
                *--e = 0;
        memmove(buf, s, (size_t) (e - s) + 1);

        if (!buf[0])
                return buf;
        if (buf[0] == '[') {
                size_t n = strlen(buf);
                size_t i;
                if (n < 3 || buf[n - 1] != ']') {
                        parse_error(p, p->line, "expected [Section], got \"%.*s\"", PN_UTF8_CUT(buf, 64));
                        buf[0] = 0;
                        return buf;
                }
                for (i = 0; i < ELEMENTSOF(config_sections); i++)
                        if (strlen(config_sections[i]) == n - 2 &&
                            strncasecmp(buf + 1, config_sections[i], n - 2) == 0)
                                break;
                p->section_known = i < ELEMENTSOF(config_sections);
                if (!p->section_known)
                        parse_error(p, p->line, "unknown section %.*s", PN_UTF8_CUT(buf, 66));
                return buf;
        }
        if (buf[0] == '=' || !strchr(buf, '=')) {
                parse_error(p, p->line, "expected Key=Value, got \"%.*s\"", PN_UTF8_CUT(buf, 64));
                buf[0] = 0;
        }
        return buf;
}

/* libinih as packaged calls handlers without a line number, and keeps going
 * after an error: the reader above counts lines, and every error is kept. */
static int on_value(void *userdata, const char *section, const char *key, const char *value) {
        ParseCtx *p = userdata;
        Config *c = p->c;
        int r = -ENOENT;

        if (!section[0]) {
                parse_error(p, p->line, "%.*s= before any [Section]", PN_UTF8_CUT(key, 64));
                return 1;
        }
        if (!p->section_known)
                return 1; /* reported at its header */
        if (strcasecmp(section, "Broker") == 0) {
                if (streq(key, "Socket")) {
                        r = value[0] == '/' ? set_string(&c->socket_path, value) : -EINVAL;
                } else if (streq(key, "DBus")) {
                        r = set_string(&c->dbus, value);
                } else if (streq(key, "Journal")) {
                        r = parse_bool(value, &c->journal);
                } else if (streq(key, "LogLevel")) {
                        static const char *const levels[] = { "emerg", "alert", "crit", "err",
                                                              "warning", "notice", "info", "debug" };
                        r = -EINVAL;
                        for (int i = 0; i < 8; i++)
                                if (streq(value, levels[i])) {
                                        c->log_level = i;
                                        r = 0;
                                }
                }
        } else if (strcasecmp(section, "Connector") == 0) {
                if (streq(key, "ReceiveBuffer"))
                        r = config_parse_size(value, &c->receive_buffer);
                else if (streq(key, "Events"))
                        r = parse_events(value, &c->kernel_events);
        } else if (strcasecmp(section, "Limits") == 0) {
                if (streq(key, "MaxClients"))
                        r = parse_unsigned(value, 1, 1u << 20, &c->max_clients);
                else if (streq(key, "MaxClientsPerUser"))
                        r = parse_unsigned(value, 1, 1u << 20, &c->max_clients_per_uid);
                else if (streq(key, "MaxSubscriptions"))
                        r = parse_unsigned(value, 1, 4096, &c->max_subscriptions);
                else if (streq(key, "MaxSubscriptionsPerUser"))
                        r = parse_unsigned(value, 1, 1u << 20, &c->max_subscriptions_per_uid);
                else if (streq(key, "ClientQueue")) {
                        r = config_parse_size(value, &c->client_queue_bytes);
                        if (r == 0 && c->client_queue_bytes < 4096)
                                r = -EINVAL;
                } else if (streq(key, "MaxProcesses"))
                        r = config_parse_size(value, &c->max_processes);
                else if (streq(key, "MaxChildren"))
                        r = parse_unsigned(value, 1, 65536, &c->max_children);
                else if (streq(key, "MaxChildrenPerUser"))
                        r = parse_unsigned(value, 1, 65536, &c->max_children_per_uid);
                else if (streq(key, "MaxWatches"))
                        r = parse_unsigned(value, 1, 1u << 16, &c->max_watches);
                else if (streq(key, "MaxWatchesPerUser"))
                        r = parse_unsigned(value, 1, 1u << 20, &c->max_watches_per_uid);
                else if (streq(key, "MaxTracedThreads"))
                        r = parse_unsigned(value, 1, 1u << 20, &c->max_traced_threads);
        } else if (strcasecmp(section, "Run") == 0) {
                if (streq(key, "Enabled"))
                        r = parse_bool(value, &c->run_enabled);
                else if (streq(key, "Output")) {
                        static const char *const outputs[] = { "auto", "journal", "file", "null" };
                        r = -EINVAL;
                        for (int i = 0; i < 4; i++)
                                if (streq(value, outputs[i])) {
                                        c->run_output = i;
                                        r = 0;
                                }
                } else if (streq(key, "LogDirectory"))
                        r = value[0] == '/' ? set_string(&c->run_log_directory, value) : -EINVAL;
                else if (streq(key, "StopTimeout"))
                        r = parse_unsigned(value, 0, 3600, &c->run_stop_timeout);
                else if (streq(key, "PredumpSignalPrctl"))
                        r = parse_prctl_number(value, &c->predump_prctl);
                else if (streq(key, "PredumpSignal"))
                        r = config_parse_prctl_signal(value, &c->predump_signal);
                else if (streq(key, "AdoptSignalPrctl"))
                        r = parse_prctl_number(value, &c->adopt_prctl);
                else if (streq(key, "AdoptSignal"))
                        r = config_parse_prctl_signal(value, &c->adopt_signal);
        } else if (strcasecmp(section, "Policy") == 0) {
                if (streq(key, "Group"))
                        r = set_string(&c->group, value);
        }
        if (r == -ENOENT)
                parse_error(p, p->line, "unknown key \"%.*s\" in [%.*s]", PN_UTF8_CUT(key, 64),
                            PN_UTF8_CUT(section, 64));
        else if (r < 0)
                parse_error(p, p->line, "invalid value \"%.*s\" for %.*s=", PN_UTF8_CUT(value, 64),
                            PN_UTF8_CUT(key, 64));
        return 1; /* every error is ours to report; inih goes on */
}

int config_parse_string(Config *c, const char *text, char *error, size_t error_size) {
        ParseCtx p = { .c = c, .cursor = text, .section_known = true, .error = error,
                       .error_size = error_size };
        int r;

        if (error && error_size)
                error[0] = 0;
        r = ini_parse_stream(parse_read_line, &p, on_value, &p);
        if (r == -2)
                return -ENOMEM;
        /* A prctl number without its signal (or the reverse) is a
         * half-configured patched kernel: refuse rather than guess. */
        if (!c->predump_prctl != !c->predump_signal)
                parse_error(&p, 0, "[Run] PredumpSignalPrctl= and PredumpSignal= must be set together");
        if (!c->adopt_prctl != !c->adopt_signal)
                parse_error(&p, 0, "[Run] AdoptSignalPrctl= and AdoptSignal= must be set together");
        if (c->predump_signal && c->predump_signal == c->adopt_signal)
                parse_error(&p, 0, "[Run] PredumpSignal= and AdoptSignal= must differ");
        if (p.n_errors == 0)
                return 0;
        if (p.n_shown < p.n_errors && error && error_size)
                snprintf(error + p.error_len, error_size - p.error_len, "%sand %u more error(s)",
                         p.error_len ? "\n" : "", p.n_errors - p.n_shown);
        return -EINVAL;
}

int config_load_file(Config *c, const char *path, bool optional, char *error, size_t error_size) {
        FILE *f = fopen(path, "re");
        char *text = NULL;
        size_t len = 0;
        int r;

        if (!f) {
                r = -errno;
                if (optional && r == -ENOENT)
                        return 0;
                snprintf(error, error_size, "cannot open: %s", strerror(-r));
                return r;
        }
        /* Config files are small; refuse anything absurd. */
        text = malloc(1 << 20);
        if (!text) {
                fclose(f);
                return -ENOMEM;
        }
        len = fread(text, 1, (1 << 20) - 1, f);
        text[len] = 0;
        if (ferror(f)) {
                /* A read error (EISDIR for a directory, EIO) is no empty
                 * file: the defaults must not replace what was meant. */
                r = errno > 0 ? -errno : -EIO;
                fclose(f);
                free(text);
                snprintf(error, error_size, "cannot read: %s", strerror(-r));
                return r;
        }
        if (memchr(text, 0, len)) {
                fclose(f);
                free(text);
                snprintf(error, error_size, "contains a NUL byte: not a configuration file");
                return -EINVAL;
        }
        bool more = fgetc(f) != EOF;
        fclose(f);
        if (more) {
                free(text);
                snprintf(error, error_size, "larger than 1 MiB: not a configuration file");
                return -EFBIG;
        }
        r = config_parse_string(c, text, error, error_size);
        free(text);
        return r;
}
