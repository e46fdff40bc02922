/* Writes archives that btzpack never would: hostile member names and
 * unsupported features, built with the real format library so that every
 * checksum is valid and only the intended property is wrong. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "format/io.h"
#include "format/method.h"
#include "model/btm.h"

static struct btz_writer w;
static struct btz_error err;

static void check(enum btz_status s)
{
	if (s != BTZ_OK) {
		fprintf(stderr, "mkarchive: %s\n", err.msg);
		exit(99);
	}
}

static void member(enum btz_type type, const char *path, const char *target,
		   uint64_t size, uint64_t checksum)
{
	struct btz_member m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.path = (char *)path;
	m.target = (char *)target;
	m.mode = type == BTZ_TYPE_DIR ? 0755 : 0644;
	m.uname = m.gname = "";
	m.mtime = 1000000000;
	m.size = size;
	m.checksum = checksum;
	check(btz_writer_add_member(&w, &m, &err));
}

/* A file member followed by its data in one chunk of the given method. */
static void file(const char *path, const char *data, uint8_t method)
{
	size_t n = strlen(data);
	struct btz_chunk c;

	member(BTZ_TYPE_FILE, path, NULL, n, XXH3_64bits(data, n));
	memset(&c, 0, sizeof(c));
	c.method = method;
	c.raw_size = n;
	c.coded_size = n;
	c.offset = w.chunk_bytes;
	c.checksum = btz_chunk_checksum((const uint8_t *)data, n, c.offset);
	check(btz_writer_add_chunk(&w, &c, (const uint8_t *)data, &err));
}

int main(int argc, char **argv)
{
	const char *type, *arg;
	char path[4200];
	uint8_t h[BTZ_HEADER_SIZE];
	int fd;

	if (argc < 3) {
		fprintf(stderr, "usage: mkarchive OUT TYPE [ARG]\n"
			"types: abs DIR, dotdot, symlink DIR, hardlink, "
			"required-feature, version, unknown-method, model, "
			"long-chunk MODEL BYTES, good\n");
		return 99;
	}
	type = argv[2];
	arg = argc > 3 ? argv[3] : "/nonexistent";
	fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(argv[1]);
		return 99;
	}
	check(btz_writer_open(&w, fd, &err));
	if (strcmp(type, "abs") == 0) {
		snprintf(path, sizeof(path), "%s/evil", arg);
		file(path, "evil\n", BTZ_METHOD_STORED);
	} else if (strcmp(type, "dotdot") == 0) {
		file("../evil", "evil\n", BTZ_METHOD_STORED);
	} else if (strcmp(type, "symlink") == 0) {
		member(BTZ_TYPE_SYMLINK, "l", arg, 0, 0);
		file("l/evil", "evil\n", BTZ_METHOD_STORED);
	} else if (strcmp(type, "hardlink") == 0) {
		member(BTZ_TYPE_HARDLINK, "h", "../outside", 0, 0);
	} else if (strcmp(type, "unknown-method") == 0) {
		file("a", "some text\n", 0x7f);
	} else if (strcmp(type, "long-chunk") == 0 && argc > 4) {
		/* A model chunk of argv[4] bytes for the model file argv[3]
		 * (its fingerprint as the loader gives it): the reader must
		 * weigh its windows before decoding any. */
		static const uint8_t zero[1 << 18], junk[8] = { 1, 2, 3 };
		size_t n = (size_t)strtoul(argv[4], NULL, 10);
		struct btz_model *m;
		struct btz_chunk c;

		if (n == 0 || n > sizeof(zero)) {
			fprintf(stderr, "mkarchive: size not 1 to %zu\n",
				sizeof(zero));
			return 99;
		}
		check(btz_model_load(&m, argv[3], &err));
		check(btz_index_add_model(&w.ix, m->fingerprint, "long", &err));
		btz_model_free(m);
		member(BTZ_TYPE_FILE, "a", NULL, n, XXH3_64bits(zero, n));
		memset(&c, 0, sizeof(c));
		c.method = BTZ_METHOD_MODEL0;
		c.raw_size = n;
		c.coded_size = sizeof(junk);
		c.offset = w.chunk_bytes;
		c.checksum = btz_chunk_checksum(zero, n, c.offset);
		check(btz_writer_add_chunk(&w, &c, junk, &err));
	} else if (strcmp(type, "model") == 0) {
		static const uint8_t fp[16] = { 0xb7, 0x2e, 0x11, 0x05 };

		check(btz_index_add_model(&w.ix, fp, "text-small", &err));
		file("a", "some text\n", BTZ_METHOD_MODEL0);
	} else {
		file("a", "some text\n", BTZ_METHOD_STORED);
	}
	check(btz_writer_finish(&w, &err));
	/* Header variants: rewrite it with a valid checksum. */
	if (strcmp(type, "required-feature") == 0 ||
	    strcmp(type, "version") == 0) {
		btz_header_encode(h, strcmp(type, "version") ? 0x100u : 0, 0);
		if (strcmp(type, "version") == 0) {
			btz_put_le16(h + 8, 2);
			btz_put_le64(h + 24, XXH3_64bits_withSeed(h, 24, 0));
		}
		if (pwrite(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
			perror(argv[1]);
			return 99;
		}
	}
	btz_writer_free(&w);
	return close(fd) == 0 ? 0 : 99;
}
