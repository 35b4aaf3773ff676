#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static enum log_level current_level = LOG_INFO;

static const char *const level_names[] = {
	[LOG_ERROR] = "error",
	[LOG_WARN] = "warn",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

void log_set_level(enum log_level level)
{
	current_level = level;
}

bool log_enabled(enum log_level level)
{
	return level <= current_level;
}

int log_level_parse(const char *text, enum log_level *level)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(text, level_names[i]) == 0) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *log_level_name(enum log_level level)
{
	return level_names[level];
}

void log_event(enum log_level level, const char *event, const char *format, ...)
{
	char line[2048];
	struct timeval now;
	struct tm utc;
	size_t used;
	va_list args;

	if (!log_enabled(level))
		return;

	gettimeofday(&now, NULL);
	gmtime_r(&now.tv_sec, &utc);
	used = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &utc);
	used += (size_t)snprintf(line + used, sizeof(line) - used, ".%03ldZ level=%s event=%s",
				 (long)(now.tv_usec / 1000), level_names[level], event);
	if (format != NULL && format[0] != '\0' && used < sizeof(line) - 1) {
		line[used++] = ' ';
		va_start(args, format);
		vsnprintf(line + used, sizeof(line) - used, format, args);
		va_end(args);
	}

	/* One write per line, so that lines from several processes do not interleave. */
	fprintf(stderr, "%s\n", line);
	fflush(stderr);
}

bool log_ratelimit_allow(struct log_ratelimit *limit, uint64_t now_ms, uint64_t *suppressed)
{
	if (now_ms - limit->window_start_ms >= limit->interval_ms || now_ms < limit->window_start_ms) {
		limit->window_start_ms = now_ms;
		limit->logged_in_window = 0;
	}
	if (limit->logged_in_window >= limit->burst) {
		limit->suppressed++;
		return false;
	}
	limit->logged_in_window++;
	*suppressed = limit->suppressed;
	limit->suppressed = 0;
	return true;
}
