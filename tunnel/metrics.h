/*
 * The metrics listener: a small HTTP/1.x server that responds to GET
 * /metrics with the daemon's counters in the Prometheus text format, one
 * request per connection.
 */
#ifndef WALGUARD_METRICS_H
#define WALGUARD_METRICS_H

#include "daemon.h"

/* Clients served at once; more are reset on accept. */
#define METRICS_MAX_CLIENTS 8

/* A client must send its request and read the response within this time. */
#define METRICS_REQUEST_TIMEOUT_MS 5000

/* Bind and listen on config->metrics_listen. Returns -1 (logged) on failure. */
int metrics_start(struct daemon *daemon);

/* Close the listener and every client connection. */
void metrics_stop(struct daemon *daemon);

#endif
