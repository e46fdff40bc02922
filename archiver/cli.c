/* Messages, exit status, safe output files, signals and progress. */
#include "archiver/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *btz_progname = "btz";
int btz_quiet;
int btz_verbose;
static int exit_status;

/* Temporary files to remove on a fatal signal; written before a signal
 * can see them and read only by the handler (async-signal-safe unlink). */
#define MAX_TMP 4
static char *volatile tmp_paths[MAX_TMP];

void btz_cli_init(const char *argv0)
{
	const char *s = strrchr(argv0, '/');

	btz_progname = s ? s + 1 : argv0;
}

static void vmsg(const char *kind, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: %s", btz_progname, kind);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void btz_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
	exit_status = BTZ_EXIT_ERROR;
}

void btz_warn(const char *fmt, ...)
{
	va_list ap;

	if (exit_status == BTZ_EXIT_OK)
		exit_status = BTZ_EXIT_WARNING;
	if (btz_quiet)
		return;
	va_start(ap, fmt);
	vmsg("warning: ", fmt, ap);
	va_end(ap);
}

void btz_note(const char *fmt, ...)
{
	va_list ap;

	if (!btz_verbose)
		return;
	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

void btz_info(const char *fmt, ...)
{
	va_list ap;

	if (btz_quiet)
		return;
	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
}

int btz_exit_status(void)
{
	return exit_status;
}

static void remove_tmps(void)
{
	for (int i = 0; i < MAX_TMP; i++)
		if (tmp_paths[i] != NULL)
			unlink(tmp_paths[i]);
}

void btz_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("", fmt, ap);
	va_end(ap);
	remove_tmps();
	exit(BTZ_EXIT_ERROR);
}

static void on_signal(int sig)
{
	remove_tmps();
	signal(sig, SIG_DFL);
	raise(sig);
}

void btz_signals_install(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&sa.sa_mask, sigs[i]);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction old;

		/* Keep an inherited "ignore" (nohup, shells' background). */
		if (sigaction(sigs[i], NULL, &old) == 0 &&
		    old.sa_handler == SIG_IGN)
			continue;
		sigaction(sigs[i], &sa, NULL);
	}
}

int btz_online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

int btz_parse_threads(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > 1024)
		return -1;
	return v == 0 ? btz_online_cpus() : (int)v;
}

int btz_parse_size(const char *s, uint64_t *out)
{
	static const struct { const char *suffix; unsigned shift; } units[] = {
		{ "", 0 }, { "K", 10 }, { "k", 10 }, { "KiB", 10 },
		{ "M", 20 }, { "m", 20 }, { "MiB", 20 },
	};
	char *end;
	unsigned long long v;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		if (v > (UINT64_MAX >> units[i].shift))
			return -1;
		*out = (uint64_t)v << units[i].shift;
		return 0;
	}
	return -1;
}

int btz_tmp_register(char *p)
{
	for (int i = 0; i < MAX_TMP; i++)
		if (tmp_paths[i] == NULL) {
			tmp_paths[i] = p;
			return 0;
		}
	return -1;
}

void btz_tmp_unregister(char *p)
{
	for (int i = 0; i < MAX_TMP; i++)
		if (tmp_paths[i] == p)
			tmp_paths[i] = NULL;
}

int btz_out_open(struct btz_out *o, const char *path, int force,
		 int refuse_tty)
{
	const char *slash;
	struct stat st;
	size_t dirlen;
	mode_t um;

	memset(o, 0, sizeof(*o));
	o->fd = -1;
	if (path == NULL || strcmp(path, "-") == 0) {
		if (refuse_tty && !force && isatty(STDOUT_FILENO)) {
			btz_error("refusing to write archive data to a "
				  "terminal (use -f to force)");
			return -1;
		}
		o->fd = STDOUT_FILENO;
		return 0;
	}
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) &&
	    !S_ISDIR(st.st_mode)) {
		/* A device or FIFO (/dev/null, a named pipe) is written in
		 * place: there is nothing to replace and nothing to lose. */
		o->fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
		if (o->fd < 0) {
			btz_error("%s: %s", path, strerror(errno));
			return -1;
		}
		if (refuse_tty && !force && isatty(o->fd)) {
			btz_error("%s: refusing to write archive data to a "
				  "terminal (use -f to force)", path);
			close(o->fd);
			o->fd = -1;
			return -1;
		}
		return 0;
	}
	if (lstat(path, &st) == 0) {
		if (!force) {
			btz_error("%s: already exists (use -f to overwrite)",
				  path);
			return -1;
		}
		if (S_ISDIR(st.st_mode)) {
			btz_error("%s: is a directory", path);
			return -1;
		}
	}
	o->final = strdup(path);
	slash = strrchr(path, '/');
	dirlen = slash ? (size_t)(slash - path) + 1 : 0;
	o->tmp = malloc(strlen(path) + 16);
	if (o->final == NULL || o->tmp == NULL) {
		btz_error("out of memory");
		btz_out_abort(o);
		return -1;
	}
	/* A hidden name beside the target keeps the rename on one file
	 * system and out of the way of globs. */
	sprintf(o->tmp, "%.*s.%s.XXXXXX", (int)dirlen, path, path + dirlen);
	if (btz_tmp_register(o->tmp) != 0) {
		btz_error("too many open outputs");
		btz_out_abort(o);
		return -1;
	}
	o->fd = mkstemp(o->tmp);
	if (o->fd < 0) {
		btz_error("%s: cannot create: %s", path, strerror(errno));
		btz_tmp_unregister(o->tmp);
		btz_out_abort(o);
		return -1;
	}
	um = umask(0);
	umask(um);
	fchmod(o->fd, 0666 & ~um);
	return 0;
}

int btz_out_commit(struct btz_out *o)
{
	int ret = 0;

	if (o->final == NULL)
		return 0;
	if (close(o->fd) != 0) {
		btz_error("%s: %s", o->final, strerror(errno));
		o->fd = -1;
		btz_out_abort(o);
		return -1;
	}
	o->fd = -1;
	if (rename(o->tmp, o->final) != 0) {
		btz_error("%s: cannot rename into place: %s", o->final,
			  strerror(errno));
		ret = -1;
		unlink(o->tmp);
	}
	btz_tmp_unregister(o->tmp);
	free(o->tmp);
	free(o->final);
	o->tmp = o->final = NULL;
	return ret;
}

void btz_out_abort(struct btz_out *o)
{
	if (o->final == NULL)
		return;
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	if (o->tmp != NULL) {
		unlink(o->tmp);
		btz_tmp_unregister(o->tmp);
	}
	free(o->tmp);
	free(o->final);
	o->tmp = o->final = NULL;
}

double btz_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

const char *btz_human(char *buf, size_t n, double bytes)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (bytes >= 1024 && u < 4) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
	return buf;
}

void btz_progress_start(struct btz_progress *p, const char *label,
			uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->active = btz_verbose && !btz_quiet && isatty(STDERR_FILENO);
	p->label = label;
	p->total = total;
	p->start = p->last = btz_now();
}

static void progress_print(struct btz_progress *p, double now)
{
	char a[32], r[32];
	double dt = now - p->start;
	double rate = dt > 0 ? p->done / dt : 0;

	fprintf(stderr, "\r%s: %s, %s/s", p->label,
		btz_human(a, sizeof(a), (double)p->done),
		btz_human(r, sizeof(r), rate));
	if (p->total && rate > 0 && p->done <= p->total) {
		unsigned long eta = (unsigned long)((p->total - p->done) / rate);

		fprintf(stderr, ", %.0f%%, ETA %lu:%02lu:%02lu",
			100.0 * p->done / p->total, eta / 3600,
			eta / 60 % 60, eta % 60);
	}
	fputs("\033[K", stderr);
}

void btz_progress_update(struct btz_progress *p, uint64_t done)
{
	double now;

	p->done = done;
	if (!p->active)
		return;
	now = btz_now();
	if (now - p->last < 0.25)
		return;
	p->last = now;
	progress_print(p, now);
}

void btz_progress_end(struct btz_progress *p)
{
	if (!p->active)
		return;
	progress_print(p, btz_now());
	fputc('\n', stderr);
}
