/* The predictor chunk method: windows advanced in lockstep over one shared
 * range-coder stream, every model table validated before use; and the
 * order-0 test predictor. */
#include "coder/predict.h"

#include <inttypes.h>
#include <stdlib.h>

#include "coder/match.h"
#include "coder/rc.h"
#include "common/bytes.h"

/* The per-run buffers: window pointers and one table per window. */
struct predict_run {
	const uint8_t **windows;
	uint32_t (*freq)[256];
	size_t nwin;
	size_t last; /* length of the last window, in [1, window] */
	void *state; /* the predictor's own run state */
	int begun;
};

static enum btz_status run_open(struct predict_run *pr,
				const struct btz_predictor *pred,
				const uint8_t *base, size_t n,
				struct btz_error *err)
{
	size_t bytes;

	pr->windows = NULL;
	pr->freq = NULL;
	pr->state = NULL;
	pr->begun = 0;
	if (pred == NULL || pred->predict == NULL || pred->window == 0)
		return btz_fail(err, BTZ_E_ARG,
				"predictor: missing predict function or "
				"zero window");
	pr->nwin = (n - 1) / pred->window + 1;
	pr->last = n - (pr->nwin - 1) * pred->window;
	if (btz_mul_overflow(pr->nwin, sizeof(*pr->freq), &bytes))
		return btz_fail(err, BTZ_E_LIMIT,
				"predictor: %zu windows is too many", pr->nwin);
	pr->windows = malloc(pr->nwin * sizeof(*pr->windows));
	pr->freq = malloc(bytes);
	if (pr->windows == NULL || pr->freq == NULL)
		return btz_fail(err, BTZ_E_NOMEM,
				"predictor: no memory for %zu windows",
				pr->nwin);
	for (size_t i = 0; i < pr->nwin; i++)
		pr->windows[i] = base + i * pred->window;
	if (pred->begin != NULL) {
		BTZ_TRY(pred->begin(pred->ctx, pr->nwin, &pr->state, err));
		pr->begun = 1;
	}
	return BTZ_OK;
}

static void run_close(struct predict_run *pr, const struct btz_predictor *pred)
{
	if (pr->begun && pred->end != NULL)
		pred->end(pred->ctx, pr->state);
	free(pr->windows);
	free(pr->freq);
}

/* Windows still having a byte at pos: all, or all but the short last. */
static size_t run_active(const struct predict_run *pr, size_t pos)
{
	return pos < pr->last ? pr->nwin : pr->nwin - 1;
}

static enum btz_status run_predict(struct predict_run *pr,
				   const struct btz_predictor *pred,
				   size_t active, size_t pos,
				   struct btz_error *err)
{
	enum btz_status s;

	s = pred->predict(pred->ctx, pr->state,
			  (const uint8_t *const *)pr->windows, active, pos,
			  pr->freq, err);
	if (s != BTZ_OK && err != NULL)
		btz_fail_prefix(err, "predictor at position %zu", pos);
	return s;
}

/* Validates a model's table while building its cumulative form: one pass,
 * since both are needed for every coded byte. */
static enum btz_status table_cum(const uint32_t freq[256], uint32_t cum[257],
				 size_t win, size_t pos, struct btz_error *err)
{
	uint64_t acc = 0;
	int zero = -1;

	for (int s = 0; s < 256; s++) {
		cum[s] = (uint32_t)acc;
		acc += freq[s];
		if (freq[s] == 0 && zero < 0)
			zero = s;
	}
	cum[256] = (uint32_t)acc;
	if (zero >= 0)
		return btz_fail(err, BTZ_E_MODEL,
				"predictor gave an invalid table for window "
				"%zu, position %zu: frequency of byte %d is 0",
				win, pos, zero);
	if (acc != BTZ_RC_TOTAL)
		return btz_fail(err, BTZ_E_MODEL,
				"predictor gave an invalid table for window "
				"%zu, position %zu: total %" PRIu64
				", not 2^%d", win, pos, acc,
				BTZ_RC_TOTAL_BITS);
	return BTZ_OK;
}

/* The match layer's guesses for a whole chunk known in advance, in the
 * lockstep order a decoder finds them: guess[t] for byte t, and the byte
 * the predictor is asked about, query[t]. */
static void find_all(struct btz_match *m, size_t w, size_t nwin,
		     size_t last, int16_t *g, int16_t *guess, uint8_t *query)
{
	for (size_t pos = 0; pos < w; pos++) {
		size_t active = pos < last ? nwin : nwin - 1;

		btz_match_find(m, pos, g);
		for (size_t i = 0; i < active; i++) {
			guess[i * w + pos] = g[i];
			query[i * w + pos] = (uint8_t)(g[i] < 0 ? 0 : g[i]);
		}
	}
}

/* The encoder's fast path: the windows predicted by whole passes,
 * keeping only each byte's interval (8 bytes per byte; with the match
 * layer, also the frequency of the guessed byte), then coded in the same
 * lockstep order a decoder will use. */
static enum btz_status encode_by_window(const struct btz_predictor *pred,
					const uint8_t *in, size_t n,
					uint8_t *out, size_t cap,
					size_t *out_size, struct btz_error *err)
{
	size_t w = pred->window, nwin = (n - 1) / w + 1;
	size_t last = n - (nwin - 1) * w;
	uint32_t (*sym)[2] = malloc(n * sizeof(*sym)), *qfreq = NULL;
	int16_t *guess = NULL, *g = NULL;
	uint8_t *query = NULL;
	struct btz_match *m = NULL;
	struct btz_rc_enc rc;
	void *run = NULL;
	enum btz_status s = BTZ_OK;
	int begun = 0;

	if (sym == NULL)
		return btz_fail(err, BTZ_E_NOMEM, "predictor: out of memory");
	if (pred->match) {
		s = btz_match_new(&m, in, n, w, err);
		if (s != BTZ_OK)
			goto done;
		guess = malloc(n * sizeof(*guess));
		g = malloc(nwin * sizeof(*g));
		query = malloc(n);
		qfreq = malloc(n * sizeof(*qfreq));
		if (guess == NULL || g == NULL || query == NULL ||
		    qfreq == NULL) {
			s = btz_fail(err, BTZ_E_NOMEM,
				     "predictor: out of memory");
			goto done;
		}
		find_all(m, w, nwin, last, g, guess, query);
	}
	if (pred->begin != NULL) {
		s = pred->begin(pred->ctx, nwin, &run, err);
		begun = s == BTZ_OK;
	}
	if (s == BTZ_OK)
		s = pred->predict_chunk(pred->ctx, run, in, n, query, qfreq,
					sym, err);
	if (begun && pred->end != NULL)
		pred->end(pred->ctx, run);
	if (s != BTZ_OK)
		goto done;
	btz_rc_enc_init(&rc, out, cap);
	for (size_t pos = 0; pos < w && s == BTZ_OK; pos++) {
		size_t active = pos < last ? nwin : nwin - 1;

		for (size_t i = 0; i < active && s == BTZ_OK; i++) {
			size_t t = i * w + pos;
			uint32_t *p = sym[t];

			if (m != NULL && guess[t] >= 0) {
				if (qfreq[t] == 0 || qfreq[t] >= BTZ_RC_TOTAL)
					s = BTZ_E_ARG;
				else
					btz_match_interval(m, i, guess[t],
							   qfreq[t], in[t], p);
			}
			if (s == BTZ_OK)
				s = btz_rc_enc_put_cum(&rc, p[0], p[1]);
			if (s == BTZ_E_ARG)
				btz_fail(err, BTZ_E_MODEL,
					 "predictor gave an invalid interval "
					 "for window %zu, position %zu", i,
					 pos);
		}
		if (m != NULL)
			btz_match_learn(m, pos);
	}
	if (s == BTZ_OK)
		s = btz_rc_enc_finish(&rc, out_size);
	if (s == BTZ_E_BUF)
		btz_fail(err, s, "predictor: coded data exceeds %zu bytes",
			 cap);
done:
	btz_match_free(m);
	free(sym);
	free(guess);
	free(g);
	free(query);
	free(qfreq);
	return s;
}

enum btz_status btz_predict_encode(const struct btz_predictor *pred,
				   const uint8_t *in, size_t n, uint8_t *out,
				   size_t cap, size_t *out_size,
				   struct btz_error *err)
{
	struct predict_run pr;
	struct btz_match *m = NULL;
	struct btz_rc_enc rc;
	uint32_t cum[257];
	int16_t *g = NULL;
	enum btz_status s;

	*out_size = 0;
	if (n == 0)
		return BTZ_OK; /* an empty stream flushes to 0 bytes */
	if (pred != NULL && pred->predict_chunk != NULL && pred->window > 0)
		return encode_by_window(pred, in, n, out, cap, out_size, err);
	s = run_open(&pr, pred, in, n, err);
	if (s == BTZ_OK && pred->match)
		s = btz_match_new(&m, in, n, pred->window, err);
	if (s == BTZ_OK && m != NULL &&
	    (g = malloc(pr.nwin * sizeof(*g))) == NULL)
		s = btz_fail(err, BTZ_E_NOMEM, "predictor: out of memory");
	if (s != BTZ_OK)
		goto done;
	btz_rc_enc_init(&rc, out, cap);
	for (size_t pos = 0; pos < pred->window; pos++) {
		size_t active = run_active(&pr, pos);

		if (active == 0)
			break;
		if (m != NULL)
			btz_match_find(m, pos, g);
		s = run_predict(&pr, pred, active, pos, err);
		if (s != BTZ_OK)
			goto done;
		for (size_t i = 0; i < active; i++) {
			unsigned b = pr.windows[i][pos];

			s = table_cum(pr.freq[i], cum, i, pos, err);
			if (s != BTZ_OK)
				goto done;
			if (m != NULL)
				btz_match_table(m, i, g[i], pr.freq[i], cum);
			s = btz_rc_enc_put_cum(&rc, cum[b], pr.freq[i][b]);
			if (s != BTZ_OK)
				goto full;
		}
		if (m != NULL)
			btz_match_learn(m, pos);
	}
	s = btz_rc_enc_finish(&rc, out_size);
full:
	if (s == BTZ_E_BUF)
		btz_fail(err, s, "predictor: coded data exceeds %zu bytes",
			 cap);
done:
	btz_match_free(m);
	free(g);
	run_close(&pr, pred);
	return s;
}

/* One window of a lockstep decode: which part it belongs to, its length
 * and where its bytes go. */
struct dwin {
	size_t part, index, len;
	uint8_t *base;
};

/* Full windows first in (part, window) order, then the short last
 * windows, longest first: the windows still active at any position are
 * then a prefix, as predict() wants, and each part's windows keep their
 * order, as its coder stream wants. */
static int dwin_cmp(const void *a, const void *b)
{
	const struct dwin *x = a, *y = b;

	if (x->len != y->len)
		return x->len > y->len ? -1 : 1;
	if (x->part != y->part)
		return x->part < y->part ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static enum btz_status fail_all(struct btz_predict_part *parts, size_t k,
				enum btz_status s, const struct btz_error *err)
{
	for (size_t c = 0; c < k; c++) {
		parts[c].st = s;
		if (err != NULL)
			parts[c].err = *err;
		else
			btz_fail(&parts[c].err, s, "predictor failed");
	}
	return s;
}

enum btz_status btz_predict_decode_many(const struct btz_predictor *pred,
					struct btz_predict_part *parts,
					size_t k, struct btz_error *err)
{
	struct btz_error e0, *ep = err != NULL ? err : &e0;
	struct btz_rc_dec *rc = NULL;
	struct dwin *dw = NULL;
	const uint8_t **windows = NULL;
	uint32_t (*freq)[256] = NULL;
	uint32_t cum[257];
	struct btz_match **ms = NULL; /* per part, with the match layer */
	int16_t *gs = NULL;	      /* their guesses, by part and window */
	size_t *goff = NULL;	      /* where each part's guesses start */
	void *run = NULL;
	size_t nwin = 0, w, active;
	enum btz_status s = BTZ_OK;
	int begun = 0;

	if (pred == NULL || pred->predict == NULL || pred->window == 0)
		return fail_all(parts, k,
				btz_fail(ep, BTZ_E_ARG, "predictor: missing "
					 "predict function or zero window"),
				ep);
	w = pred->window;
	for (size_t c = 0; c < k; c++) {
		parts[c].st = BTZ_OK;
		if (parts[c].n == 0 && parts[c].in_size != 0)
			parts[c].st = btz_fail(&parts[c].err, BTZ_E_CORRUPT,
					       "predictor: %zu coded bytes "
					       "for an empty chunk",
					       parts[c].in_size);
		else if (parts[c].n > 0 &&
			 btz_add_overflow(nwin, (parts[c].n - 1) / w + 1,
					  &nwin))
			return fail_all(parts, k,
					btz_fail(ep, BTZ_E_LIMIT,
						 "predictor: too many "
						 "windows"), ep);
	}
	if (nwin == 0)
		return BTZ_OK;
	dw = calloc(nwin, sizeof(*dw));
	windows = malloc(nwin * sizeof(*windows));
	rc = calloc(k, sizeof(*rc));
	if (nwin <= SIZE_MAX / sizeof(*freq))
		freq = malloc(nwin * sizeof(*freq));
	if (dw == NULL || windows == NULL || rc == NULL || freq == NULL) {
		s = btz_fail(ep, BTZ_E_NOMEM, "predictor: no memory for %zu "
			     "windows", nwin);
		goto done;
	}
	nwin = 0;
	for (size_t c = 0; c < k; c++) {
		btz_rc_dec_init(&rc[c], parts[c].in, parts[c].in_size);
		for (size_t i = 0; i * w < parts[c].n; i++) {
			size_t left = parts[c].n - i * w;

			dw[nwin++] = (struct dwin){ c, i, left < w ? left : w,
						    parts[c].out + i * w };
		}
	}
	if (pred->match) {
		ms = calloc(k, sizeof(*ms));
		goff = calloc(k, sizeof(*goff));
		gs = malloc(nwin * sizeof(*gs));
		if (ms == NULL || goff == NULL || gs == NULL) {
			s = btz_fail(ep, BTZ_E_NOMEM, "predictor: no memory "
				     "for the match layer");
			goto done;
		}
		for (size_t c = 0, at = 0; c < k; c++) {
			goff[c] = at;
			if (parts[c].n == 0)
				continue;
			at += (parts[c].n - 1) / w + 1;
			s = btz_match_new(&ms[c], parts[c].out, parts[c].n, w,
					  ep);
			if (s != BTZ_OK)
				goto done;
		}
	}
	qsort(dw, nwin, sizeof(*dw), dwin_cmp);
	for (size_t i = 0; i < nwin; i++)
		windows[i] = dw[i].base;
	if (pred->begin != NULL) {
		s = pred->begin(pred->ctx, nwin, &run, ep);
		if (s != BTZ_OK)
			goto done;
		begun = 1;
	}
	active = nwin;
	for (size_t pos = 0; pos < w; pos++) {
		while (active > 0 && dw[active - 1].len <= pos)
			active--;
		if (active == 0)
			break;
		for (size_t c = 0; ms != NULL && c < k; c++)
			if (ms[c] != NULL)
				btz_match_find(ms[c], pos, gs + goff[c]);
		s = pred->predict(pred->ctx, run, windows, active, pos, freq,
				  ep);
		if (s != BTZ_OK) {
			btz_fail_prefix(ep, "predictor at position %zu", pos);
			goto done;
		}
		for (size_t i = 0; i < active; i++) {
			size_t c = dw[i].part, idx = dw[i].index;

			s = table_cum(freq[i], cum, idx, pos, ep);
			if (s != BTZ_OK)
				goto done;
			if (ms != NULL)
				btz_match_table(ms[c], idx, gs[goff[c] + idx],
						freq[i], cum);
			/* windows[] points into out: the model sees what
			 * was decoded so far. */
			dw[i].base[pos] =
				(uint8_t)btz_rc_dec_get_cum(&rc[c], cum);
		}
		for (size_t c = 0; ms != NULL && c < k; c++)
			if (ms[c] != NULL)
				btz_match_learn(ms[c], pos);
	}
	for (size_t c = 0; c < k; c++) {
		if (parts[c].st != BTZ_OK || parts[c].n == 0)
			continue;
		parts[c].st = btz_rc_dec_finish(&rc[c]);
		if (parts[c].st != BTZ_OK)
			btz_fail(&parts[c].err, parts[c].st,
				 "predictor: coded data is damaged (%zu "
				 "bytes read of %zu)", rc[c].pos,
				 parts[c].in_size);
	}
done:
	if (begun && pred->end != NULL)
		pred->end(pred->ctx, run);
	for (size_t c = 0; ms != NULL && c < k; c++)
		btz_match_free(ms[c]);
	free(ms);
	free(gs);
	free(goff);
	free(dw);
	free(windows);
	free(rc);
	free(freq);
	return s == BTZ_OK ? BTZ_OK : fail_all(parts, k, s, ep);
}

enum btz_status btz_predict_decode(const struct btz_predictor *pred,
				   const uint8_t *in, size_t in_size,
				   uint8_t *out, size_t n,
				   struct btz_error *err)
{
	struct btz_predict_part part = { .in = in, .in_size = in_size,
					 .out = out, .n = n };

	btz_predict_decode_many(pred, &part, 1, NULL);
	if (part.st != BTZ_OK && err != NULL)
		*err = part.err;
	return part.st;
}

/* Order-0 test predictor. Counts start at 1 and grow by 32 per byte, so
 * after pos bytes they total 256 + 32 pos. */
#define ORDER0_STEP 32
#define ORDER0_POS_MAX ((size_t)1 << 24)

struct order0_win {
	const uint8_t *base; /* the window the counts describe */
	size_t known;        /* counts cover base[0, known) */
	uint32_t cnt[256];
};

struct order0_run {
	size_t nwin;
	struct order0_win w[];
};

static void order0_reset(struct order0_win *w, const uint8_t *base)
{
	w->base = base;
	w->known = 0;
	for (int s = 0; s < 256; s++)
		w->cnt[s] = 1;
}

static enum btz_status order0_begin(void *ctx, size_t nwin, void **run,
				    struct btz_error *err)
{
	struct order0_run *r;
	size_t bytes;

	(void)ctx;
	if (btz_mul_overflow(nwin, sizeof(r->w[0]), &bytes) ||
	    btz_add_overflow(bytes, sizeof(*r), &bytes))
		return btz_fail(err, BTZ_E_LIMIT, "order0: too many windows");
	r = malloc(bytes);
	if (r == NULL)
		return btz_fail(err, BTZ_E_NOMEM, "order0: no memory for "
				"%zu windows", nwin);
	r->nwin = nwin;
	for (size_t i = 0; i < nwin; i++)
		order0_reset(&r->w[i], NULL);
	*run = r;
	return BTZ_OK;
}

static void order0_end(void *ctx, void *run)
{
	(void)ctx;
	free(run);
}

/* Scales counts totalling tot to 2^24: 1 + floor(cnt * (2^24 - 256) / tot)
 * per byte, via a 32.32 fixed-point factor (cnt <= tot keeps the product
 * below 2^56); the floors' shortfall goes to the most frequent byte. */
static void order0_scale(const uint32_t cnt[256], uint64_t tot,
			 uint32_t freq[256])
{
	uint64_t k = ((uint64_t)(BTZ_RC_TOTAL - 256) << 32) / tot;
	uint32_t sum = 0;
	int best = 0;

	for (int s = 0; s < 256; s++) {
		freq[s] = 1 + (uint32_t)((cnt[s] * k) >> 32);
		sum += freq[s];
		if (cnt[s] > cnt[best])
			best = s;
	}
	freq[best] += BTZ_RC_TOTAL - sum;
}

static enum btz_status order0_predict(void *ctx, void *run,
				      const uint8_t *const *windows,
				      size_t nwin, size_t pos,
				      uint32_t (*freq)[256],
				      struct btz_error *err)
{
	struct order0_run *r = run;

	(void)ctx;
	if (r == NULL || nwin > r->nwin)
		return btz_fail(err, BTZ_E_ARG, "order0: %zu windows, run "
				"has %zu", nwin, r == NULL ? 0 : r->nwin);
	if (pos >= ORDER0_POS_MAX)
		return btz_fail(err, BTZ_E_LIMIT, "order0: position %zu "
				"beyond 2^24", pos);
	for (size_t i = 0; i < nwin; i++) {
		struct order0_win *w = &r->w[i];

		if (w->base != windows[i] || w->known > pos)
			order0_reset(w, windows[i]);
		for (; w->known < pos; w->known++)
			w->cnt[windows[i][w->known]] += ORDER0_STEP;
		order0_scale(w->cnt, 256 + (uint64_t)ORDER0_STEP * pos,
			     freq[i]);
	}
	return BTZ_OK;
}

struct btz_predictor btz_predictor_order0(size_t window)
{
	return (struct btz_predictor){
		.ctx = NULL,
		.window = window,
		.begin = order0_begin,
		.predict = order0_predict,
		.end = order0_end,
	};
}
