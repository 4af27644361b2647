/*
 * The built-in local featuriser (issue 14, point 3): a task's text to a
 * short dense vector without any model, so clustering works offline.
 *
 * Features: hashed lower-cased word unigrams and bigrams, and character
 * 4-grams at each end of a word ("<wor" and "ord>" of "<word>", weighted
 * down: a word's form, not a word).  Each is weighted by TF-IDF
 * (sublinear term frequency 1 + ln tf, idf = 1 + ln((1 + N) / (1 + df)))
 * with document frequencies counted in a hashed table over the first
 * `warmup` texts; then a seeded sparse random projection (each feature adds
 * +-w to GYRE_FEATURIZE_NNZ of the `dims` coordinates, Achlioptas / Li's
 * very sparse projections) reduces it, and the vector is L2-normalised.
 *
 * Streaming with a warm-up: the IDF needs document frequencies, so the
 * first `warmup` texts are kept as sparse features (a few KB each) until the
 * table is frozen (at `warmup` texts or at gyre_featurizer_flush); their
 * vectors are delivered then, every later one at once.  The sink receives
 * each text's vector and its naming terms (its distinct words of 3 to 24
 * letters but a few stop words, as ids into the featuriser's term
 * dictionary).
 */
#ifndef GYRE_LOOP_FEATURIZE_H
#define GYRE_LOOP_FEATURIZE_H

#include <stddef.h>
#include <stdint.h>

/* Coordinates each hashed feature touches in the projection. */
#define GYRE_FEATURIZE_NNZ 4
/* A text is featurised from its first this many bytes: a task of 1-2 KB is typical, and the bound keeps one
 * pathological conversation from costing more than ~20 ordinary ones. */
#define GYRE_FEATURIZE_MAX_TEXT ((size_t)32 << 10)
/* Texts whose features are held until the document frequencies freeze. */
#define GYRE_FEATURIZE_DEFAULT_WARMUP 4096
/* No term id (the dictionary was full, or the slot is unused). */
#define GYRE_FEATURIZE_NO_TERM UINT32_MAX

typedef struct gyre_featurizer gyre_featurizer_t;

/* Called once per text, in add order: `vec` (dims floats, L2-normalised; all zero for a text with no feature)
 * and the text's distinct naming term ids (none unless wanted), in the order they first appear (at most 8192; valid until the
 * callback returns). */
typedef void (*gyre_feature_sink_cb)(void *ctx, size_t idx, const float *vec, const uint32_t *terms, size_t nterms);

/* warmup 0: GYRE_FEATURIZE_DEFAULT_WARMUP. */
gyre_featurizer_t *gyre_featurizer_new(unsigned dims, unsigned seed, size_t warmup, gyre_feature_sink_cb sink,
                                       void *ctx);
/* Featurises text number `idx` (the caller's running index).  Texts over GYRE_FEATURIZE_MAX_TEXT are read to it.
 * want_terms 0: the sink gets no naming terms for it (finding them costs more than the rest). */
void gyre_featurizer_add(gyre_featurizer_t *f, size_t idx, const char *text, size_t len, int want_terms);
/* Freezes the document frequencies if not yet and delivers every held text. */
void gyre_featurizer_flush(gyre_featurizer_t *f);
/* A naming term's text ("" for an unknown id); valid until the featuriser is freed. */
const char *gyre_featurizer_term(const gyre_featurizer_t *f, uint32_t id);
void gyre_featurizer_free(gyre_featurizer_t *f);

/* A longer dense vector (an embeddings route's) reduced to `dims` by a seeded dense random projection
 * (Gaussian-like +-1 entries), then L2-normalised; with in_dims <= dims it is copied and zero-padded. */
void gyre_featurize_project_dense(unsigned seed, const float *in, size_t in_dims, float *out, size_t dims);

#endif
