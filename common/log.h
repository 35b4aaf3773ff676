/*
 * One line per event on stderr, in logfmt:
 *
 *   2026-12-04T20:01:02.345Z level=warn event=handshake_rejected peer=standby-1 addr=198.18.0.2:40412 error="..."
 *
 * Callers pass the fields after "event=" as a printf format. Never pass key
 * material.
 */
#ifndef WALGUARD_LOG_H
#define WALGUARD_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level {
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
};

void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);

/* Parse "error", "warn", "info" or "debug"; returns -1 for anything else. */
int log_level_parse(const char *text, enum log_level *level);
const char *log_level_name(enum log_level level);

void log_event(enum log_level level, const char *event, const char *format, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * A limit on how often one kind of line is logged: at most burst lines per
 * interval. Lines over the limit are counted, and the count is handed to
 * the next line that is allowed, which should log it as "suppressed=N".
 */
struct log_ratelimit {
	uint64_t interval_ms;
	uint32_t burst;
	uint64_t window_start_ms;
	uint32_t logged_in_window;
	uint64_t suppressed;
};

#define LOG_RATELIMIT_INIT(interval_ms, burst) { (interval_ms), (burst), 0, 0, 0 }

/*
 * Decide whether a line may be logged at now_ms. When it may, *suppressed
 * receives the number of lines dropped since the last one logged.
 */
bool log_ratelimit_allow(struct log_ratelimit *limit, uint64_t now_ms, uint64_t *suppressed);

#endif
