/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Broker: owns the event loop and everything on it (sources, process table,
 * dispatcher, sinks), wires them together, handles signals (SIGTERM/SIGINT
 * stop, SIGHUP reloads), and is — with main.c — the only part that logs.
 */
#pragma once

#include "config.h"

typedef struct Broker Broker;

/* Set up everything from config (taken over) and start serving. config_path
 * is remembered for reloads (NULL: no file). Returns 0 or -errno, logged. */
int broker_new(Broker **ret, Config *config, const char *config_path);
Broker *broker_free(Broker *b);

/* Run until SIGTERM/SIGINT. Returns the process exit code. */
int broker_run(Broker *b);
