/*
 * k-means for the clusterer (cluster.h): k-means++ seeding (Arthur and
 * Vassilvitskii, 2007), Lloyd iterations with a bound, squared Euclidean
 * distance over row-major float vectors, deterministic for a seed.
 *
 * k chosen automatically by the silhouette (Rousseeuw, 1987) on a sample:
 * for each k in [kmin, kmax] a fit on the sample, the mean silhouette of
 * the sample's points under it, the k with the highest (the smaller k on a
 * tie).  Why the silhouette and not an elbow or BIC: it peaks at the
 * natural number of well-separated groups without a model of their shape
 * (BIC assumes spherical Gaussians of one variance, which L2-normalised,
 * projected text vectors are not) and needs no judgement of where a curve
 * bends (the elbow); its cost is one distance matrix over the sample,
 * shared by every k.
 */
#ifndef GYRE_LOOP_KMEANS_H
#define GYRE_LOOP_KMEANS_H

#include <stddef.h>
#include <stdint.h>

/* Lloyd iterations at most per fit (a fit stops earlier when no point changes cluster). */
#define GYRE_KMEANS_MAX_ITER 50

/*
 * Fits k centroids to the n points x (n x d): k-means++ seeding from `seed`, then Lloyd iterations until no
 * point moves or max_iter.  centroids: k x d, written; assign: n, written (may be NULL).  Returns the inertia
 * (the sum of squared distances to the nearest centroid).  k must be 1..n.  A cluster left empty takes the
 * point farthest from its centroid.
 */
double gyre_kmeans_fit(const float *x, size_t n, unsigned d, unsigned k, uint64_t seed, unsigned max_iter,
                       float *centroids, int32_t *assign);
/* Each point's nearest centroid (ties to the lower index) and, when dist2 is not NULL, its squared distance. */
void gyre_kmeans_assign(const float *x, size_t n, unsigned d, const float *centroids, unsigned k, int32_t *assign,
                        float *dist2);
/* The mean silhouette of n points under `assign` (k clusters), from their n x n distance matrix. */
double gyre_kmeans_silhouette(const float *dmat, size_t n, const int32_t *assign, unsigned k);
/* The k in [kmin, kmax] (kmax capped at n - 1) whose fit on x has the highest silhouette over the first
 * min(n, GYRE_KMEANS_SIL_SAMPLE) points; *silhouette gets it.  kmin >= 2; n >= 3. */
#define GYRE_KMEANS_SIL_SAMPLE 1500
unsigned gyre_kmeans_choose_k(const float *x, size_t n, unsigned d, unsigned kmin, unsigned kmax, uint64_t seed,
                              double *silhouette);

#endif
