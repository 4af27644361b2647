/*
 * src/trace/tracelog.c: records round-trip; a reader resynchronises on the
 * next good record, so flipping any one byte of a record loses exactly that
 * record (and a byte of a segment header loses none), a cut or overwritten
 * region loses only the records it touched; the size bound refuses with
 * -EFBIG; every start writes a new segment and a reader crosses them; the
 * checkpoint survives a torn slot.
 */
#include "trace/tracelog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "test.h"

static char dir[64];

static void quiet_cb(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    (void)line;
    (void)len;
}

/* Each damaged record is reported; hundreds of reports are noise in a test that makes them on purpose. */
static void gyre_log_set_quiet(int on)
{
    gyre_log_set_hook(on ? quiet_cb : NULL, NULL);
}

static void rm_dir(const char *p)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
    CHECK_INT(system(cmd), 0);
}

static const char *fresh_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/gyre-tracelog-test-%d", (int)getpid());
    rm_dir(dir);
    return dir;
}

static void make_trace(gyre_trace_t *t, int n, const char *body)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->trace_id, sizeof(t->trace_id), "%032x", n);
    snprintf(t->otel_trace_id, sizeof(t->otel_trace_id), "%032x", n + 1000);
    snprintf(t->span_id, sizeof(t->span_id), "%016x", n);
    t->started_us = 1764583200000000 + n;
    t->ended_us = t->started_us + 1234;
    t->ttft_us = -1;
    t->status = 200;
    t->cost_usd = 0.25;
    t->prompt_tokens = 10 + n;
    t->completion_tokens = -1;
    t->cached_tokens = -1;
    t->reasoning_tokens = -1;
    t->model = (gyre_tstr_t){"gpt-4o-mini", 11};
    t->request_body = (gyre_tstr_t){(char *)body, strlen(body)};
}

/* Appends n traces into a new log at `d` and closes it. */
static void write_log(const char *d, int from, int n, int zstd_level)
{
    gyre_tracelog_t *l;
    char err[256];
    gyre_tracelog_config_t cfg = {.zstd_level = zstd_level};
    CHECK_INT(gyre_tracelog_open(d, &cfg, 0, &l, err, sizeof(err)), 0);
    gyre_trace_t t;
    for (int i = from; i < from + n; i++) {
        make_trace(&t, i, "{\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}");
        CHECK_INT(gyre_tracelog_append(l, &t), 0);
    }
    gyre_tracelog_close(l);
}

/* Reads the whole log at `d`: the trace numbers found, into got[] (at most max); their count. */
static int read_all(const char *d, int *got, int max)
{
    gyre_tracelog_t *l;
    char err[256];
    if (gyre_tracelog_open(d, NULL, GYRE_TRACELOG_READONLY, &l, err, sizeof(err)) != 0)
        return -1;
    gyre_tracelog_reader_t *r = gyre_tracelog_reader_create(l);
    gyre_tracelog_pos_t pos = gyre_tracelog_start(l);
    gyre_trace_t *out[64];
    int n = 0;
    for (int k; (k = gyre_tracelog_read(r, &pos, out, 64, 0)) > 0;) {
        for (int i = 0; i < k; i++) {
            if (n < max)
                got[n] = (int)strtol(out[i]->trace_id, NULL, 16);
            n++;
            free(out[i]);
        }
    }
    gyre_tracelog_reader_destroy(r);
    gyre_tracelog_close(l);
    return n;
}

/* The only segment's path in `d`. */
static void only_segment(const char *d, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%016x.seg", d, 1);
}

static size_t slurp(const char *p, unsigned char *buf, size_t max)
{
    FILE *f = fopen(p, "rb");
    CHECK(f != NULL);
    size_t n = f ? fread(buf, 1, max, f) : 0;
    if (f)
        fclose(f);
    return n;
}

static void spit(const char *p, const unsigned char *buf, size_t n)
{
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK_INT(fwrite(buf, 1, n, f), n);
        fclose(f);
    }
}

TEST(trace_tracelog_round_trips_every_field_it_is_given)
{
    const char *d = fresh_dir();
    write_log(d, 0, 3, 0);
    gyre_tracelog_t *l;
    char err[256];
    CHECK_INT(gyre_tracelog_open(d, NULL, GYRE_TRACELOG_READONLY, &l, err, sizeof(err)), 0);
    gyre_tracelog_reader_t *r = gyre_tracelog_reader_create(l);
    gyre_tracelog_pos_t pos = gyre_tracelog_start(l);
    gyre_trace_t *out[8];
    CHECK_INT(gyre_tracelog_read(r, &pos, out, 8, 0), 3);
    CHECK_STR(out[2]->trace_id, "00000000000000000000000000000002");
    CHECK_STR(out[2]->otel_trace_id, "000000000000000000000000000003ea");
    CHECK_INT(out[2]->started_us, 1764583200000002);
    CHECK_INT(out[2]->prompt_tokens, 12);
    CHECK_INT(out[2]->completion_tokens, -1);
    CHECK_MEM(out[2]->model.p, out[2]->model.len, "gpt-4o-mini");
    CHECK_MEM(out[2]->request_body.p, out[2]->request_body.len,
              "{\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}");
    CHECK(out[2]->cost_usd == 0.25);
    for (int i = 0; i < 3; i++)
        free(out[i]);
    CHECK_INT(gyre_tracelog_read(r, &pos, out, 8, 0), 0);
    gyre_tracelog_reader_destroy(r);
    gyre_tracelog_close(l);
    rm_dir(d);
}

/* The record boundaries of a segment file (offsets where each record starts), by walking the lengths. */
static int record_starts(const unsigned char *b, size_t n, size_t *starts, int max)
{
    int k = 0;
    for (size_t off = GYRE_TRACELOG_SEGMENT_HEADER_SIZE; off + GYRE_TRACELOG_RECORD_HEADER_SIZE <= n && k < max;) {
        starts[k++] = off;
        uint32_t len = (uint32_t)b[off + 4] | (uint32_t)b[off + 5] << 8 | (uint32_t)b[off + 6] << 16 |
                       (uint32_t)b[off + 7] << 24;
        off += GYRE_TRACELOG_RECORD_HEADER_SIZE + len;
    }
    return k;
}

static void flip_each_byte(int zstd_level)
{
    const char *d = fresh_dir();
    enum { N = 5 };
    write_log(d, 0, N, zstd_level);
    char seg[128];
    only_segment(d, seg, sizeof(seg));
    static unsigned char orig[8192], b[8192];
    size_t n = slurp(seg, orig, sizeof(orig));
    size_t starts[N];
    CHECK_INT(record_starts(orig, n, starts, N), N);
    gyre_log_set_quiet(1); /* each flip is reported; 1,000 reports are noise here */
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(b, orig, n);
        b[i] ^= 0x01;
        spit(seg, b, n);
        int got[N + 1];
        int k = read_all(d, got, N + 1);
        /* Which record the byte belongs to: -1 for the segment header. */
        int owner = -1;
        for (int r = 0; r < N; r++)
            if (i >= starts[r])
                owner = r;
        int want = owner < 0 ? N : N - 1;
        int ok = k == want;
        for (int j = 0, r = 0; ok && r < N; r++) {
            if (r == owner)
                continue;
            ok = got[j++] == r;
        }
        if (!ok && bad++ < 5)
            fprintf(stderr, "    flipping byte %zu (record %d): read %d traces, wanted %d\n", i, owner, k, want);
    }
    gyre_log_set_quiet(0);
    CHECK_INT(bad, 0);
    rm_dir(d);
}

TEST(trace_tracelog_flipping_any_one_byte_loses_exactly_its_record_uncompressed)
{
    flip_each_byte(-1);
}

TEST(trace_tracelog_flipping_any_one_byte_loses_exactly_its_record_zstd)
{
    flip_each_byte(0);
}

TEST(trace_tracelog_a_segment_cut_in_its_last_record_keeps_every_record_before_it)
{
    const char *d = fresh_dir();
    write_log(d, 0, 5, 0);
    char seg[128];
    only_segment(d, seg, sizeof(seg));
    struct stat st;
    CHECK_INT(stat(seg, &st), 0);
    CHECK_INT(truncate(seg, st.st_size - 7), 0);
    int got[8];
    gyre_log_set_quiet(1);
    CHECK_INT(read_all(d, got, 8), 4);
    gyre_log_set_quiet(0);
    for (int i = 0; i < 4; i++)
        CHECK_INT(got[i], i);
    rm_dir(d);
}

TEST(trace_tracelog_garbage_over_two_records_loses_those_two_and_no_other)
{
    const char *d = fresh_dir();
    write_log(d, 0, 6, -1);
    char seg[128];
    only_segment(d, seg, sizeof(seg));
    static unsigned char b[8192];
    size_t n = slurp(seg, b, sizeof(b));
    size_t starts[6];
    CHECK_INT(record_starts(b, n, starts, 6), 6);
    /* From the middle of record 2 to the middle of record 3. */
    for (size_t i = starts[2] + 10; i < starts[3] + 10; i++)
        b[i] = (unsigned char)(i * 131 + 7);
    spit(seg, b, n);
    gyre_tracelog_t *l;
    char err[256];
    CHECK_INT(gyre_tracelog_open(d, NULL, GYRE_TRACELOG_READONLY, &l, err, sizeof(err)), 0);
    gyre_tracelog_reader_t *r = gyre_tracelog_reader_create(l);
    gyre_tracelog_pos_t pos = gyre_tracelog_start(l);
    gyre_trace_t *out[8];
    gyre_log_set_quiet(1);
    CHECK_INT(gyre_tracelog_read(r, &pos, out, 8, 0), 4);
    gyre_log_set_quiet(0);
    int want[] = {0, 1, 4, 5};
    for (int i = 0; i < 4; i++) {
        CHECK_INT(strtol(out[i]->trace_id, NULL, 16), want[i]);
        free(out[i]);
    }
    gyre_tracelog_damage_t dmg;
    gyre_tracelog_damage(l, &dmg);
    CHECK_INT(dmg.regions, 1);
    CHECK_INT(dmg.bytes, starts[4] - starts[2]);
    CHECK_INT(dmg.last_off, starts[2]);
    gyre_tracelog_reader_destroy(r);
    gyre_tracelog_close(l);
    rm_dir(d);
}

TEST(trace_tracelog_append_past_max_bytes_is_refused_with_efbig_and_counted)
{
    const char *d = fresh_dir();
    gyre_tracelog_t *l;
    char err[256];
    gyre_tracelog_config_t cfg = {.max_bytes = 4096, .segment_bytes = 4096, .zstd_level = -1};
    CHECK_INT(gyre_tracelog_open(d, &cfg, 0, &l, err, sizeof(err)), 0);
    static char body[1001];
    memset(body, 'q', 1000);
    gyre_trace_t t;
    int ok = 0, rc = 0;
    for (int i = 0; i < 10 && (rc = gyre_tracelog_append(l, (make_trace(&t, i, body), &t))) == 0; i++)
        ok++;
    CHECK_INT(rc, -EFBIG);
    CHECK_INT(ok, 3); /* 32 + 3 records of about 1.2 KB fit in 4096, a fourth does not */
    gyre_tracelog_stats_t st;
    gyre_tracelog_stats(l, &st);
    CHECK_INT(st.refused_bound, 1);
    CHECK_INT(st.last_errno, EFBIG);
    CHECK(st.bytes <= 4096);
    gyre_tracelog_close(l);
    rm_dir(d);
}

TEST(trace_tracelog_every_start_writes_a_new_segment_and_a_reader_reads_across_them)
{
    const char *d = fresh_dir();
    write_log(d, 0, 3, 0);
    write_log(d, 3, 2, 0);
    write_log(d, 5, 0, 0); /* a start that wrote nothing leaves no segment behind */
    write_log(d, 5, 4, 0);
    gyre_tracelog_t *l;
    char err[256];
    CHECK_INT(gyre_tracelog_open(d, NULL, GYRE_TRACELOG_READONLY, &l, err, sizeof(err)), 0);
    gyre_tracelog_segment_info_t seg[8];
    CHECK_INT(gyre_tracelog_segments(l, seg, 8), 3);
    CHECK_INT(seg[0].seq, 1);
    CHECK_INT(seg[1].seq, 2);
    CHECK_INT(seg[2].seq, 4);
    gyre_tracelog_close(l);
    int got[16];
    CHECK_INT(read_all(d, got, 16), 9);
    for (int i = 0; i < 9; i++)
        CHECK_INT(got[i], i);
    rm_dir(d);
}

TEST(trace_tracelog_checkpoint_keeps_the_last_good_slot_when_the_newest_is_torn)
{
    const char *d = fresh_dir();
    CHECK_INT(mkdir(d, 0700), 0);
    gyre_tracelog_checkpoint_t cp = {.pos = {3, 4096}};
    CHECK_INT(gyre_tracelog_checkpoint_save(d, &cp), 0); /* generation 1: slot 1 */
    cp.pos = (gyre_tracelog_pos_t){3, 8192};
    cp.flags = GYRE_TRACELOG_REBUILD;
    CHECK_INT(gyre_tracelog_checkpoint_save(d, &cp), 0); /* generation 2: slot 0 */
    gyre_tracelog_checkpoint_t got;
    CHECK_INT(gyre_tracelog_checkpoint_load(d, &got), 0);
    CHECK_INT(got.gen, 2);
    CHECK_INT(got.pos.off, 8192);
    CHECK_INT(got.flags, GYRE_TRACELOG_REBUILD);
    char p[128];
    snprintf(p, sizeof(p), "%s/index.pos", d);
    int fd = open(p, O_WRONLY);
    CHECK(fd >= 0);
    CHECK_INT(pwrite(fd, "\xff", 1, 20), 1); /* tear slot 0 */
    close(fd);
    CHECK_INT(gyre_tracelog_checkpoint_load(d, &got), 0);
    CHECK_INT(got.gen, 1);
    CHECK_INT(got.pos.seq, 3);
    CHECK_INT(got.pos.off, 4096);
    CHECK_INT(got.flags, 0);
    rm_dir(d);
}

/* A body that shares a long system prompt with every other call, as agents' calls do. */
static void agent_body(char *buf, size_t len, int n)
{
    snprintf(buf, len,
             "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a careful assistant for the "
             "accounts team. Answer in British English, cite the policy section you rely on, never invent a policy, "
             "and when a request is ambiguous ask one short question before answering. Policies: 1. Refunds within 30 "
             "days. 2. Exchanges within 60 days with a receipt. 3. Gift cards are final sale. 4. Damaged goods are "
             "replaced at no cost.\"},{\"role\":\"user\",\"content\":\"Customer %d asks about order %d: can it be "
             "refunded after %d days?\"}]}",
             n, n * 7919 % 100000, n % 90);
}

TEST(trace_tracelog_a_trained_dictionary_heads_each_new_segment_twice_and_one_bad_copy_costs_no_trace)
{
    const char *d = fresh_dir();
    gyre_tracelog_t *l;
    char err[256];
    gyre_tracelog_config_t cfg = {.dict = 1, .dict_samples = 300, .dict_bytes = 8192, .segment_bytes = 1 << 20};
    CHECK_INT(gyre_tracelog_open(d, &cfg, 0, &l, err, sizeof(err)), 0);
    static char body[2048];
    gyre_trace_t t;
    int n = 0;
    /* Until the dictionary is trained (on another thread) and taken, at most 10 s. */
    for (int k = 0; k < 10000 && gyre_tracelog_dict_state(l) == 0; k++, n++) {
        agent_body(body, sizeof(body), n);
        make_trace(&t, n, body);
        CHECK_INT(gyre_tracelog_append(l, &t), 0);
        if (n >= 300)
            usleep(1000);
    }
    CHECK_INT(gyre_tracelog_dict_state(l), 1);
    int first_dict = n;
    for (int k = 0; k < 300; k++, n++) {
        agent_body(body, sizeof(body), n);
        make_trace(&t, n, body);
        CHECK_INT(gyre_tracelog_append(l, &t), 0);
    }
    gyre_tracelog_segment_info_t seg[4];
    CHECK_INT(gyre_tracelog_segments(l, seg, 4), 2);
    gyre_tracelog_close(l);
    double before = (double)(seg[0].bytes - 32) / first_dict;
    /* The second segment's bytes, less its header and the dictionary's two copies (read from its head). */
    char p[128];
    snprintf(p, sizeof(p), "%s/%016llx.seg", d, (unsigned long long)seg[1].seq);
    static unsigned char b[1 << 20];
    size_t size = slurp(p, b, sizeof(b));
    uint32_t dlen = (uint32_t)b[36] | (uint32_t)b[37] << 8 | (uint32_t)b[38] << 16 | (uint32_t)b[39] << 24;
    CHECK_INT(b[40], GYRE_TRACELOG_TYPE_DICT);
    size_t dicts = 2 * (GYRE_TRACELOG_RECORD_HEADER_SIZE + dlen);
    double after = (double)(size - 32 - dicts) / 300;
    fprintf(stderr, "    %.0f bytes a trace one by one, %.0f with the dictionary (%u bytes)\n", before, after, dlen);
    CHECK(after * 2 < before);
    static int got[4096];
    CHECK_INT(read_all(d, got, 4096), n);
    for (int i = 0; i < n; i++)
        CHECK_INT(got[i], i);
    /* One bad byte in the first copy: the second one serves, no trace is lost. */
    b[32 + 16 + 100] ^= 0x40;
    spit(p, b, size);
    gyre_log_set_quiet(1);
    CHECK_INT(read_all(d, got, 4096), n);
    gyre_log_set_quiet(0);
    CHECK_INT(got[first_dict], first_dict);
    rm_dir(d);
}
