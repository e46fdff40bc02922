/* What btzpack and btzunpack share: messages and exit status, option
 * values, safe output files (temporary + rename, removed on error or
 * signal), and the progress line. Only tools include this. */
#ifndef BTZ_ARCHIVER_CLI_H
#define BTZ_ARCHIVER_CLI_H

#include <stdint.h>
#include <stdio.h>

enum btz_exit { BTZ_EXIT_OK = 0, BTZ_EXIT_ERROR = 1, BTZ_EXIT_WARNING = 2 };

extern const char *btz_progname;
extern int btz_quiet;
extern int btz_verbose;

void btz_cli_init(const char *argv0);
/* error: exit status becomes 1; warning: 2 unless already 1. */
void btz_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void btz_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void btz_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like a warning, but the exit status stays 0 (tar's name stripping). */
void btz_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Files removed if a fatal signal arrives while they are being written. */
int btz_tmp_register(char *path);
void btz_tmp_unregister(char *path);
int btz_exit_status(void);
/* Prints the error, removes temporary outputs and exits 1. */
void btz_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

int btz_parse_threads(const char *s);
int btz_parse_size(const char *s, uint64_t *out);
int btz_online_cpus(void);

/* An output file being written: a temporary beside the final name until
 * btz_out_commit renames it. At most a few exist; signals clean them up. */
struct btz_out {
	char *final; /* NULL for standard output */
	char *tmp;
	int fd;
};

/* Opens the output; "-" or NULL means standard output. Refuses to
 * overwrite a file without force and to write archive data to a
 * terminal; devices and FIFOs are written in place. */
int btz_out_open(struct btz_out *o, const char *path, int force,
		 int refuse_tty);
int btz_out_commit(struct btz_out *o);
void btz_out_abort(struct btz_out *o);
void btz_signals_install(void);

/* A progress line on standard error, shown only with -v on a terminal. */
struct btz_progress {
	int active;
	const char *label;
	uint64_t total; /* 0 if unknown */
	uint64_t done;
	double start, last;
};

double btz_now(void);
void btz_progress_start(struct btz_progress *p, const char *label,
			uint64_t total);
void btz_progress_update(struct btz_progress *p, uint64_t done);
void btz_progress_end(struct btz_progress *p);
/* Human sizes ("12.3 MiB") into a caller buffer. */
const char *btz_human(char *buf, size_t n, double bytes);

#endif
