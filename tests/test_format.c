#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
/* Unit tests of format/: varints, header, footer, index, chunk methods,
 * and the writer/reader pair, including damaged input. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "format/io.h"
#include "format/method.h"
#include "tests/check.h"

static void test_varint(void)
{
	static const uint64_t vals[] = { 0, 1, 127, 128, 16383, 16384,
					 UINT32_MAX, (uint64_t)1 << 63,
					 UINT64_MAX };
	uint8_t b[16];
	uint64_t v;

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		size_t n = btz_varint_encode(b, vals[i]);

		CHECK_EQ(btz_varint_decode(b, n, &v), n);
		CHECK_EQ(v, vals[i]);
		CHECK_EQ(btz_varint_decode(b, n - 1, &v), 0); /* truncated */
	}
	/* Non-minimal, overlong and over-64-bit encodings are rejected. */
	memcpy(b, "\x80\x00", 2);
	CHECK_EQ(btz_varint_decode(b, 2, &v), 0);
	memset(b, 0xff, 10);
	b[9] = 0x02;
	CHECK_EQ(btz_varint_decode(b, 10, &v), 0);
	memset(b, 0x80, 11);
	CHECK_EQ(btz_varint_decode(b, 11, &v), 0);
}

static void test_header_footer(void)
{
	uint8_t h[BTZ_HEADER_SIZE], f[BTZ_FOOTER_SIZE];
	struct btz_footer in = { 100, 50, 0x1234 }, out;
	struct btz_error err;

	btz_header_encode(h, 0, 0xffffffffu); /* unknown optional bits: fine */
	CHECK_EQ(btz_header_decode(h, &err), BTZ_OK);
	btz_header_encode(h, 1, 0);
	CHECK_EQ(btz_header_decode(h, &err), BTZ_E_UNSUPPORTED);
	CHECK(strstr(err.msg, "0x00000001") != NULL);
	btz_header_encode(h, 0, 0);
	h[20] ^= 1; /* reserved bytes are covered by the checksum */
	CHECK_EQ(btz_header_decode(h, &err), BTZ_E_CHECKSUM);
	h[20] ^= 1;
	h[0] = 'X';
	CHECK_EQ(btz_header_decode(h, &err), BTZ_E_CORRUPT);
	CHECK(strstr(err.msg, "not a btz archive") != NULL);

	btz_footer_encode(f, &in);
	CHECK_EQ(btz_footer_decode(f, 182, &out, &err), BTZ_OK);
	CHECK_EQ(out.index_offset, 100);
	CHECK_EQ(out.index_size, 50);
	CHECK_EQ(out.index_checksum, 0x1234);
	CHECK_EQ(btz_footer_decode(f, 183, &out, &err), BTZ_E_CORRUPT);
	for (int i = 0; i < BTZ_FOOTER_SIZE; i++) {
		f[i] ^= 0x10;
		CHECK(btz_footer_decode(f, 182, &out, &err) != BTZ_OK);
		f[i] ^= 0x10;
	}
}

static void fill_index(struct btz_index *ix)
{
	struct btz_error err;
	struct btz_member m;
	struct btz_chunk c;
	static const uint8_t fp[16] = { 1, 2, 3 };

	btz_index_init(ix);
	CHECK_EQ(btz_index_add_model(ix, fp, "text", &err), BTZ_OK);
	memset(&m, 0, sizeof(m));
	m.type = BTZ_TYPE_DIR;
	m.path = "d";
	m.mode = 02775;
	m.uname = "user";
	m.gname = "";
	m.mtime = -5; /* before 1970: zigzag */
	m.mtime_nsec = 999999999;
	CHECK_EQ(btz_index_add_member(ix, &m, &err), BTZ_OK);
	m.type = BTZ_TYPE_FILE;
	m.path = "d/f";
	m.size = (uint64_t)5 << 30; /* over 4 GiB */
	m.checksum = 42;
	m.uid = UINT32_MAX + (uint64_t)7;
	m.modality = BTZ_MOD_TEXT;
	CHECK_EQ(btz_index_add_member(ix, &m, &err), BTZ_OK);
	m.type = BTZ_TYPE_SYMLINK;
	m.path = "d/s";
	m.target = "f";
	CHECK_EQ(btz_index_add_member(ix, &m, &err), BTZ_OK);
	m.type = BTZ_TYPE_HARDLINK;
	m.path = "d/h";
	m.target = "d/f";
	CHECK_EQ(btz_index_add_member(ix, &m, &err), BTZ_OK);
	for (int i = 0; i < 80; i++) {
		memset(&c, 0, sizeof(c));
		c.method = BTZ_METHOD_REPEAT;
		c.raw_size = BTZ_CHUNK_MAX;
		c.coded_size = 1;
		c.checksum = (uint64_t)i;
		CHECK_EQ(btz_index_add_chunk(ix, &c, &err), BTZ_OK);
	}
}

static void test_index(void)
{
	struct btz_index ix, back;
	struct btz_error err;
	struct btz_buf b;
	uint64_t end = BTZ_HEADER_SIZE;

	fill_index(&ix);
	for (size_t i = 0; i < ix.nchunks; i++)
		end += btz_chunk_head_size(&ix.chunks[i]) + 1;
	btz_buf_init(&b);
	CHECK_EQ(btz_index_encode(&ix, &b, &err), BTZ_OK);
	CHECK_EQ(btz_index_decode(b.data, b.len, end, &back, &err), BTZ_OK);
	CHECK_EQ(back.nmodels, 1);
	CHECK(strcmp(back.models[0].name, "text") == 0);
	CHECK_EQ(back.nmembers, 4);
	CHECK_EQ(back.members[0].mode, 02775);
	CHECK_EQ(back.members[0].mtime, (uint64_t)(int64_t)-5);
	CHECK_EQ(back.members[0].mtime_nsec, 999999999);
	CHECK(strcmp(back.members[0].uname, "user") == 0);
	CHECK_EQ(back.members[1].size, (uint64_t)5 << 30);
	CHECK_EQ(back.members[1].uid, UINT32_MAX + (uint64_t)7);
	CHECK_EQ(back.members[1].modality, BTZ_MOD_TEXT);
	CHECK(strcmp(back.members[2].target, "f") == 0);
	CHECK(strcmp(back.members[3].target, "d/f") == 0);
	CHECK_EQ(back.nchunks, 80);
	CHECK_EQ(back.chunks[79].offset, 79 * BTZ_CHUNK_MAX);
	CHECK_EQ(btz_index_chunk_at(&back, 0), 0);
	CHECK_EQ(btz_index_chunk_at(&back, BTZ_CHUNK_MAX), 1);
	CHECK_EQ(btz_index_chunk_at(&back, 80 * BTZ_CHUNK_MAX), 80);
	btz_index_free(&back);

	/* Every truncation and every byte flip fails cleanly or decodes to
	 * something consistent; none may crash (ASan run in CI). */
	for (size_t n = 0; n < b.len; n++) {
		CHECK(btz_index_decode(b.data, n, end, &back, &err) != BTZ_OK);
		btz_index_free(&back);
	}
	for (size_t i = 0; i < b.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			b.data[i] ^= (uint8_t)(1 << bit);
			btz_index_decode(b.data, b.len, end, &back, &err);
			btz_index_free(&back);
			b.data[i] ^= (uint8_t)(1 << bit);
		}
	}
	/* The chunks must end exactly where the index starts. */
	CHECK_EQ(btz_index_decode(b.data, b.len, end + 1, &back, &err),
		 BTZ_E_CORRUPT);
	btz_index_free(&back);
	/* Files needing more bytes than the chunks hold. */
	ix.nchunks--;
	btz_buf_free(&b);
	btz_buf_init(&b);
	CHECK_EQ(btz_index_encode(&ix, &b, &err), BTZ_OK);
	CHECK_EQ(btz_index_decode(b.data, b.len, end - 1 -
				  btz_chunk_head_size(&ix.chunks[0]),
				  &back, &err), BTZ_E_CORRUPT);
	btz_index_free(&back);
	btz_buf_free(&b);
	btz_index_free(&ix);
}

static void test_methods(void)
{
	size_t n = 200000;
	uint8_t *in = malloc(n), *out = malloc(n), *scr = malloc(n),
		*back = malloc(n);
	uint32_t preset = 6;
	struct btz_method lz;
	const struct btz_method *cand[1] = { &lz };
	struct btz_methods ms;
	struct btz_chunk c;
	struct btz_error err;
	uint32_t x = 1;

	btz_methods_init(&ms);
	btz_method_lzma2(&lz, &preset);
	/* Text-like: lzma2 wins. */
	for (size_t i = 0; i < n; i++)
		in[i] = "the quick brown fox "[i % 20] ^ (i % 997 == 0);
	CHECK_EQ(btz_chunk_encode(cand, 1, in, n, NULL, 12345, out, scr, &c, &err),
		 BTZ_OK);
	CHECK_EQ(c.method, BTZ_METHOD_LZMA2);
	CHECK(c.coded_size < n / 10);
	CHECK_EQ(btz_chunk_decode(&ms, &c, out, back, &err), BTZ_OK);
	CHECK(memcmp(in, back, n) == 0);
	/* The checksum is seeded with the offset: a moved chunk fails. */
	c.offset++;
	CHECK_EQ(btz_chunk_decode(&ms, &c, out, back, &err), BTZ_E_CHECKSUM);
	c.offset--;
	out[c.coded_size / 2] ^= 4;
	CHECK(btz_chunk_decode(&ms, &c, out, back, &err) != BTZ_OK);
	/* Random: stored wins. */
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		in[i] = (uint8_t)(x >> 23);
	}
	CHECK_EQ(btz_chunk_encode(cand, 1, in, n, NULL, 0, out, scr, &c, &err),
		 BTZ_OK);
	CHECK_EQ(c.method, BTZ_METHOD_STORED);
	CHECK_EQ(c.coded_size, n);
	CHECK_EQ(btz_chunk_decode(&ms, &c, out, back, &err), BTZ_OK);
	CHECK(memcmp(in, back, n) == 0);
	/* Constant: repeat, one byte. */
	memset(in, 0xab, n);
	CHECK_EQ(btz_chunk_encode(cand, 1, in, n, NULL, 0, out, scr, &c, &err),
		 BTZ_OK);
	CHECK_EQ(c.method, BTZ_METHOD_REPEAT);
	CHECK_EQ(c.coded_size, 1);
	CHECK_EQ(btz_chunk_decode(&ms, &c, out, back, &err), BTZ_OK);
	CHECK(memcmp(in, back, n) == 0);
	/* One byte: nothing beats stored. */
	CHECK_EQ(btz_chunk_encode(cand, 1, in, 1, NULL, 0, out, scr, &c, &err),
		 BTZ_OK);
	CHECK_EQ(c.coded_size, 1);
	/* Garbage given to lzma2 fails cleanly. */
	memset(out, 0x5a, 100);
	c.method = BTZ_METHOD_LZMA2;
	c.raw_size = 1000;
	c.coded_size = 100;
	CHECK(btz_chunk_decode(&ms, &c, out, back, &err) != BTZ_OK);
	c.method = 0x80;
	CHECK_EQ(btz_chunk_decode(&ms, &c, out, back, &err), BTZ_E_MODEL);
	free(in);
	free(out);
	free(scr);
	free(back);
}

static void test_writer_reader(void)
{
	struct btz_writer w;
	struct btz_reader r;
	struct btz_error err;
	struct btz_member m;
	struct btz_chunk c;
	struct btz_methods ms;
	const char *data = "hello, world\n";
	uint8_t buf[64], raw[64];
	int fd = memfd_create("t", 0);
	off_t size;

	CHECK(fd >= 0);
	btz_methods_init(&ms);
	CHECK_EQ(btz_writer_open(&w, fd, &err), BTZ_OK);
	memset(&m, 0, sizeof(m));
	m.type = BTZ_TYPE_FILE;
	m.path = "f";
	m.uname = m.gname = "";
	m.size = strlen(data);
	m.checksum = XXH3_64bits(data, m.size);
	CHECK_EQ(btz_writer_add_member(&w, &m, &err), BTZ_OK);
	m.path = "";
	CHECK_EQ(btz_writer_add_member(&w, &m, &err), BTZ_E_LIMIT);
	memset(&c, 0, sizeof(c));
	c.method = BTZ_METHOD_STORED;
	c.raw_size = c.coded_size = m.size;
	c.checksum = btz_chunk_checksum((const uint8_t *)data, m.size, 0);
	c.offset = 1;
	CHECK_EQ(btz_writer_add_chunk(&w, &c, (const uint8_t *)data, &err),
		 BTZ_E_ARG); /* out of order */
	c.offset = 0;
	CHECK_EQ(btz_writer_add_chunk(&w, &c, (const uint8_t *)data, &err),
		 BTZ_OK);
	CHECK_EQ(btz_writer_finish(&w, &err), BTZ_OK);
	btz_writer_free(&w);

	CHECK_EQ(btz_reader_open(&r, fd, &err), BTZ_OK);
	CHECK_EQ(r.ix.nmembers, 1);
	CHECK_EQ(r.ix.nchunks, 1);
	CHECK_EQ(btz_reader_read_chunk(&r, 0, buf, &err), BTZ_OK);
	CHECK_EQ(btz_chunk_decode(&ms, &r.ix.chunks[0], buf, raw, &err),
		 BTZ_OK);
	CHECK(memcmp(raw, data, m.size) == 0);
	btz_reader_free(&r);

	/* Every truncation of the file is refused at open. */
	size = lseek(fd, 0, SEEK_END);
	for (off_t n = size - 1; n >= 0; n--) {
		CHECK_EQ(ftruncate(fd, n), 0);
		CHECK(btz_reader_open(&r, fd, &err) != BTZ_OK);
		btz_reader_free(&r);
	}
	close(fd);
}

int main(void)
{
	test_varint();
	test_header_footer();
	test_index();
	test_methods();
	test_writer_reader();
	if (failures) {
		fprintf(stderr, "test_format: %d checks failed\n", failures);
		return 1;
	}
	printf("test_format: all checks passed\n");
	return 0;
}
