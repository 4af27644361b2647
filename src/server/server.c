/* Workers, listeners and graceful shutdown (see server.h). */
#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/json.h"
#include "control/access.h"
#include "control/provider_keys.h"
#include "control/keys.h"
#include "control/state.h"
#include "control/notify.h"
#include "control/probe.h"
#include "loop/cluster.h"
#include "control/alerts.h"
#include "server/deploy_host.h"
#include "control/limits.h"
#include "loop/guard.h"
#include "metrics/metrics.h"
#include "otlp/otlp.h"
#include "proxy/respond.h"
#include "control/state.h"
#include "server/admin_limits.h"
#include "server/handlers.h"
#include "server/live.h"
#include "loop/score.h"
#include "store/store.h"
#include "trace/record.h"
#include "trace/access_log.h"
#include "trace/writer.h"

static sem_t workers_done;
/* The OTLP exporter when otlp.endpoint is set (src/otlp/otlp.h); lives as long as the static server. */
static gyre_otlp_exporter_t *otlp_exporter;
/* How long SIGTERM waits for the exporter to post what is queued. */
#define OTLP_FLUSH_MS 5000
/* How long, at most, the notifiers get at shutdown to post what they hold (digests included). */
#define NOTIFY_FLUSH_MS 5000

static int create_listener(const char *host, uint16_t port, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *res = NULL;
    char serv[8];
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(serv, sizeof(serv), "%u", port);
    int r = getaddrinfo(host, serv, &hints, &res);
    if (r != 0) {
        snprintf(err, errlen, "cannot resolve listen address %s: %s", host, gai_strerror(r));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%u: %s", host, port, strerror(errno));
        if (fd != -1)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/*
 * Each client connection can hold an upstream connection too, so max_connections wants twice as many file
 * descriptors and some to spare.  The soft limit is raised as far as the hard one allows (as nginx's
 * worker_rlimit_nofile would); below that, gyre says so once: at the limit it stops accepting for
 * GYRE_CONN_ACCEPT_PAUSE_MS at a time (src/server/conn.h) instead of spinning.
 */
static void check_fd_limit(const gyre_config_t *config)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)config->max_connections * 2 + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rlim_t cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    if (cur > rl.rlim_cur) {
        struct rlimit raised = {cur, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl.rlim_cur = cur;
    }
    if (rl.rlim_cur < want)
        gyre_logf("gyre: the open-file limit (%llu) is low for max_connections: %zu (each client connection may hold "
                  "an upstream one: %llu wanted); at the limit gyre stops accepting for %d ms at a time\n",
                  (unsigned long long)rl.rlim_cur, config->max_connections, (unsigned long long)want,
                  GYRE_CONN_ACCEPT_PAUSE_MS);
}

int gyre_server_serve_metrics(gyre_worker_t *w, h2o_req_t *req)
{
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 405, "invalid_request_error", "method_not_allowed", NULL,
                           "%.*s /metrics is not allowed; use GET", (int)req->method.len, req->method.base);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET"));
        gyre_respond_error(req, &err);
        return 0;
    }
    gyre_server_t *s = w->server;
    /* The scrape runs on this worker's loop; it reads the other workers' series without stopping them. */
    gyre_metrics_t **all = h2o_mem_alloc_pool(&req->pool, sizeof(*all) * s->nworkers);
    uint64_t inflight = 0;
    for (unsigned i = 0; i < s->nworkers; i++) {
        all[i] = s->workers[i].super.metrics;
        inflight += __atomic_load_n(&s->workers[i].super.inflight, __ATOMIC_RELAXED);
    }
    gyre_writer_stats_t st;
    if (s->writer != NULL)
        gyre_writer_stats(s->writer, &st);
    gyre_otlp_stats_t ost;
    gyre_metrics_otlp_t mo = {0, 0, 0, 0};
    if (otlp_exporter != NULL) {
        gyre_otlp_exporter_stats(otlp_exporter, &ost);
        mo = (gyre_metrics_otlp_t){ost.exported, ost.dropped, ost.failed_posts, ost.queued};
    }
    gyre_access_log_stats_t als;
    if (s->access_log != NULL)
        gyre_access_log_stats(s->access_log, &als);
    gyre_metrics_process_t p = {.version = GYRE_VERSION,
                                .queue_depth = 0, /* the limits stage's gauge, wired at the merge */
                                .start_time_us = s->started_us,
                                .inflight = inflight,
                                .writer = s->writer != NULL ? &st : NULL,
                                .otlp = otlp_exporter != NULL ? &mo : NULL,
                                .connections_open = gyre_conn_open(s),
                                .connections_max = s->config->max_connections,
                                .access_log = s->access_log != NULL ? &als : NULL};
    for (unsigned i = 0; i < s->nworkers; i++)
        for (int r = 0; r < GYRE_PAUSE_REASONS; r++)
            p.accept_pauses[r] += __atomic_load_n(&s->workers[i].conn.pauses[r], __ATOMIC_RELAXED);
    gyre_live_stats_t ls;
    gyre_live_stats(&ls);
    p.config_reloads_ok = ls.ok;
    p.config_reloads_error = ls.error;
    p.config_generation = ls.generation;
    gyre_notify_stat_t nst[64];
    gyre_metrics_notifier_t mn[64];
    size_t nn = gyre_notify_stats(s->notify, nst, 64);
    for (size_t i = 0; i < nn && i < 64; i++)
        mn[i] = (gyre_metrics_notifier_t){nst[i].name, nst[i].kind, nst[i].sent, nst[i].failed, nst[i].dropped,
                                          nst[i].retried};
    p.notifiers = mn;
    p.nnotifiers = nn < 64 ? nn : 64;
    gyre_buf_t b;
    gyre_buf_init(&b, GYRE_METRICS_RENDER_MAX);
    int rendered = gyre_metrics_render(all, s->nworkers, &p, &b);
    if (rendered == 0) {
        gyre_limits_render_metrics(s->limits, &b); /* the limits' families (queue depth 0 without limits) */
        rendered = gyre_buf_failed(&b);
    }
    if (rendered == 0)
        rendered = gyre_server_alerts_metrics(s, &b);
    if (rendered == 0)
        rendered = gyre_probe_render_metrics(s->probe, &b);
    if (rendered == 0) {
        gyre_guard_render(w->super.gen->gen->guard, &b); /* the guardrails' families (src/loop/guard.h) */
        rendered = gyre_buf_failed(&b);
    }
    if (rendered == 0)
        rendered = gyre_score_render_metrics(s->scoring, &b);
    if (rendered != 0) {
        gyre_api_error_t err;
        gyre_api_error_set(&err, 500, "server_error", "metrics_too_large", NULL,
                           "the metrics exposition is larger than %u bytes", GYRE_METRICS_RENDER_MAX);
        gyre_respond_error(req, &err);
        gyre_buf_dispose(&b);
        return 0;
    }
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT(GYRE_METRICS_CONTENT_TYPE));
    req->res.content_length = b.len;
    h2o_send_inline(req, b.base, b.len);
    gyre_buf_dispose(&b);
    return 0;
}

static void on_grace_expired(h2o_timeout_entry_t *entry)
{
    gyre_worker_t *w = H2O_STRUCT_FROM_MEMBER(gyre_worker_t, grace_entry, entry);
    if (w->super.inflight != 0)
        gyre_logf("gyre: worker %u: grace period over, %zu request(s) still in flight are cut\n", w->super.id,
                  w->super.inflight);
    w->super.done = 1;
}

static void on_shutdown_message(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    gyre_worker_t *w = H2O_STRUCT_FROM_MEMBER(gyre_worker_t, shutdown_receiver, receiver);
    while (!h2o_linklist_is_empty(messages))
        h2o_linklist_unlink(messages->next);
    if (w->super.shutting_down)
        return;
    w->super.shutting_down = 1;
    gyre_conn_worker_stop(w);
    h2o_timeout_link(w->super.ctx.loop, &w->grace_timeout, &w->grace_entry);
    gyre_ctx_check_done(&w->super);
}

static void *worker_main(void *arg)
{
    gyre_worker_t *w = arg;
    gyre_server_t *s = w->server;
    h2o_context_init(&w->super.ctx, h2o_evloop_create(), &s->globalconf);
    /* What the context needs of the server: all of it made before any worker starts. */
    w->super.writer = s->writer;
    w->super.otlp_exporter = otlp_exporter;
    /* The configuration in force (its state on this worker), and the receiver of the next (src/server/live.c). */
    gyre_live_worker_init(w);
    gyre_timer_wheel_init(&w->super.timers, w->super.ctx.loop);
    w->super.alerts = s->alerts;
    w->super.scoring = s->scoring;
    w->super.limits = s->limits;
    w->super.access_log = s->access_log;
    h2o_timeout_init(w->super.ctx.loop, &w->grace_timeout, s->config->shutdown_grace_ms);
    w->grace_entry.cb = on_grace_expired;
    h2o_multithread_register_receiver(w->super.ctx.queue, &w->shutdown_receiver, on_shutdown_message);
    w->accept_ctx.hosts = s->globalconf.hosts;
    /* gyre accepts on the listener itself (src/server/conn.c): h2o is told only that it is readable. */
    w->listener = h2o_evloop_socket_create(w->super.ctx.loop, w->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    gyre_conn_worker_start(w);
    /* Published last: the main thread waits for it before it may message us. */
    __atomic_store_n(&w->accept_ctx.ctx, &w->super.ctx, __ATOMIC_RELEASE);
    while (!w->super.done)
        h2o_evloop_run(w->super.ctx.loop, INT32_MAX);
    /* The worker is finished, but its thread stays until the process exits:
     * h2o keeps per-thread caches of memory (recycled pool chunks and
     * buffers) that only a live thread keeps reachable, and a leak checker
     * would otherwise report them. */
    sem_post(&workers_done);
    for (;;)
        pause();
    return NULL;
}

/*
 * The managed gateway keys in the control plane's database (control/keys.h), each worker a reader of their
 * snapshot, and the thread that notices the changes `gyre keys` makes from another process.  Without a
 * database (no store and no `state:`) gyre serves the config's keys only, and /api/admin/keys answers 404.
 */
static int open_keys(gyre_server_t *s, unsigned nworkers)
{
    char err[512];
    if (s->state == NULL) /* no control-plane state: no managed keys (the config's keys still work) */
        return 0;
    if (gyre_keys_open(s->state, nworkers, &s->keys, err, sizeof(err)) != 0 || gyre_keys_watch(s->keys) != 0) {
        gyre_logf("gyre: managed keys: %s\n", err);
        return -1;
    }
    return 0;
}

/* Where soft budgets' notices go: the notifiers' sender (NULL until it is made: then nothing is sent). */
static int limits_notify_cb(void *arg, const char *notifier, const gyre_notice_t *notice)
{
    gyre_server_t *s = arg;
    return s->notify != NULL ? gyre_notify_send(s->notify, notifier, notice) : -ENOENT;
}

int gyre_server_run(gyre_config_t *config, unsigned nworkers)
{
    static gyre_server_t server; /* lives until exit: workers point into it */
    gyre_server_t *s = &server;
    char err[512];
    s->config = config;
    s->nworkers = nworkers;
    s->started_us = gyre_trace_now_us();
    /* Every thread gyre starts (workers, the trace writer, the alert engine, the notifiers' sender, the access
     * log's writer, the key watcher) inherits this mask: SIGTERM, SIGINT and SIGHUP reach only the main
     * thread's sigwait below, never a thread whose default action would end gyre. */
    sigset_t early;
    sigemptyset(&early);
    sigaddset(&early, SIGTERM);
    sigaddset(&early, SIGINT);
    sigaddset(&early, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &early, NULL);

    gyre_json_init();
    /* The control plane's database, where one is configured (`state:`, or beside the SQLite store). */
    char state_path[4096];
    const char *sp = gyre_state_path_for(config, state_path, sizeof(state_path));
    if (config->state_path == NULL && config->store_sqlite != NULL && strcmp(config->store_sqlite, ":memory:") == 0)
        sp = NULL; /* an in-memory store: no file to put the state beside */
    if (sp != NULL && gyre_state_open(sp, &s->state, err, sizeof(err)) != 0) {
        gyre_logf("gyre: state: %s\n", err);
        return 1;
    }
    /* The first generation of the configuration in force: the file, the routes changed through the admin API,
     * and what is made from them (prices, access digests, caches, TLS contexts: src/server/live.c). */
    if (gyre_live_start(s, err, sizeof(err)) != 0) {
        gyre_logf("gyre: %s\n", err);
        return 1;
    }
    if (open_keys(s, nworkers) != 0)
        return 1;
    s->limits = gyre_limits_create(config); /* NULL without `limits:`; lives until exit, as the server does */
    if (gyre_admin_limits_restore(s->limits, s->state, err, sizeof(err)) < 0) {
        gyre_logf("gyre: limits: the rules set through the admin API could not be read: %s\n", err);
        return 1;
    }
    h2o_config_init(&s->globalconf);
    s->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("gyre"));
    s->globalconf.max_request_entity_size = config->max_body_bytes;
    gyre_handlers_register(&s->globalconf, s);

    /* Listeners are created here, before any thread, so that a port in use
     * is reported once and the process exits non-zero. */
    s->workers = gyre_calloc(nworkers, sizeof(*s->workers)); /* reachable from the static server until exit */
    for (unsigned i = 0; i < nworkers; i++) {
        gyre_worker_t *w = &s->workers[i];
        w->server = s;
        w->super.id = i;
        w->super.metrics = gyre_metrics_create(0); /* reachable from the static server until exit */
        w->super.rng = ((uint64_t)getpid() << 32) ^ (0x9E3779B97F4A7C15ULL * (i + 1)) ^ (uint64_t)time(NULL);
        if (w->super.rng == 0)
            w->super.rng = 1;
        if ((w->listen_fd = create_listener(config->listen_host, config->listen_port, err, sizeof(err))) == -1) {
            gyre_logf("gyre: %s\n", err);
            return 1;
        }
    }

    /* The trace log, its index (the store, rebuilt from the log when it is corrupt) and the writer: every
     * request's trace goes to the log; what the index has not taken yet is indexed now.  `gyre serve` has
     * probed the store already (cli/serve.c): one that cannot be created or written never gets here. */
    if (config->traces) {
        char logdir[4096], spool[4096];
        gyre_tracelog_dir_for(config->store_log, config->store_sqlite, logdir, sizeof(logdir));
        snprintf(spool, sizeof(spool), "%s.spool", config->store_sqlite);
        int check_later = 0;
        const char *target = NULL;
        const gyre_store_ops_t *ops = gyre_store_backend(config->store_dsn, &target, err, sizeof(err));
        if (ops == NULL) {
            gyre_logf("gyre: %s: %s\n", config->store_field, err);
            return 1;
        }
        if (gyre_writer_open_index(ops, target, logdir, &s->store, &check_later, err, sizeof(err)) != 0) {
            gyre_logf("gyre: %s: %s\n", config->store_field, err);
            return 1;
        }
        gyre_writer_config_t wc = {.fsync_ms = config->store_fsync_ms,
                                   .retention_us = config->store_retention_us,
                                   .check_at_start = check_later,
                                   .log = {.max_bytes = config->store_max_bytes,
                                           .segment_bytes = config->store_segment_bytes}};
        int r = gyre_writer_create(ops, s->store, logdir, spool, nworkers, &wc, &s->writer, err, sizeof(err));
        if (r != 0) {
            gyre_logf("gyre: %s%s\n", err, r == -EBUSY ? " (is another gyre using this store?)" : "");
            gyre_store_close(s->store);
            return 1;
        }
    }

    if (config->otlp.endpoint != NULL &&
        gyre_otlp_exporter_create(config, nworkers, &otlp_exporter, err, sizeof(err)) != 0) {
        gyre_logf("gyre: %s\n", err);
        return 1;
    }

    /* The notifiers' sender: before the workers, which (through limits) may send a notice. */
    s->notify = gyre_notify_create(config);
    if (s->limits != NULL)
        gyre_limits_set_notify(s->limits, limits_notify_cb, s); /* soft budgets' 50/80/100 % notices */
    if (gyre_server_alerts_start(s) != 0)
        return 1;
    /* The health checks: from the generation in force (live.c's announce hands it each new one). */
    if ((s->probe = gyre_probe_create(s->gen->config)) == NULL) {
        gyre_logf("gyre: health checks: cannot start their thread\n");
        return 1;
    }
    if (gyre_access_log_open(config, nworkers, &s->access_log, err, sizeof(err)) != 0) {
        gyre_logf("gyre: %s\n", err);
        return 1;
    }
    if (gyre_cluster_sched_start(config, &s->clusters) != 0) {
        gyre_logf("gyre: clusters: cannot start the clustering thread\n");
        return 1;
    }

    if (gyre_server_scoring_start(s) != 0)
        return 1;
    if (gyre_server_deploy_start(s) != 0) /* canary deployments' tick (server/deploy_host.h) */
        return 1;
    /* The loop's runner: runs can be submitted and read now; it steps once the workers run (below). */
    if (gyre_server_loop_start(s) != 0)
        gyre_logf("gyre: loop: the runner did not start; /api/loop answers 404\n");

    check_fd_limit(config);

    /* Signals are taken by this thread alone, with sigwait.  SIGHUP too: its default action would end gyre
     * without a word, and operators send it expecting a reload. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    sem_init(&workers_done, 0, 0);
    for (unsigned i = 0; i < nworkers; i++)
        pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);

    gyre_logf("gyre: listening on http://%s:%u with %u worker%s (config: %s)\n", config->listen_host,
              config->listen_port, nworkers, nworkers == 1 ? "" : "s", config->source);
    /* The loop's runs step once the workers answer: a run resumed at start may replay its gate through the
     * listener. */
    gyre_server_loop_go(s);

    int sig = 0;
    while (sigwait(&set, &sig) == 0 && sig == SIGHUP) {
        /* SIGHUP: the file is read again; what it says goes in force, or its errors are logged and the
         * configuration in force keeps serving (src/server/live.c logs either). */
        char rerr[8192];
        gyre_live_reload(s, "sighup", "config.reload", rerr, sizeof(rerr));
    }
    /* The loop's runner first: a step in progress (a poll, a gate's replay through the listener) finishes while the
     * workers still answer. */
    gyre_server_loop_stop(s);
    gyre_logf("gyre: %s received: no new connections; finishing requests in flight (grace %llu ms)\n",
              sig == SIGTERM ? "SIGTERM" : "SIGINT", (unsigned long long)config->shutdown_grace_ms);
    /* A worker that has not yet registered its receiver cannot be messaged:
     * wait until each has published its context (the last step of its setup). */
    for (unsigned i = 0; i < nworkers; i++) {
        while (__atomic_load_n(&s->workers[i].accept_ctx.ctx, __ATOMIC_ACQUIRE) == NULL)
            usleep(1000);
        h2o_multithread_send_message(&s->workers[i].shutdown_receiver, &s->workers[i].shutdown_message);
    }
    for (unsigned i = 0; i < nworkers; i++)
        while (sem_wait(&workers_done) != 0)
            ;
    /* Every worker has finished: what they recorded is exported and written before gyre exits. */
    gyre_access_log_close(s->access_log);
    s->access_log = NULL;
    gyre_cluster_sched_stop(s->clusters); /* waits for a clustering in progress */
    s->clusters = NULL;
    gyre_server_deploy_stop(s); /* before the alerts and notifiers it reads and sends to */
    /* The alert engine first: its thread sends notices, so the sender must outlive it (a resolve sent as it
     * stops still goes out within the grace). */
    gyre_server_alerts_stop(s);
    gyre_score_stop(s->scoring); /* each scorer thread ends the call it holds; waits at most a judge's timeout */
    s->scoring = NULL;
    explicit_bzero(s->internal_key, sizeof(s->internal_key));
    gyre_probe_destroy(s->probe); /* waits for a probe in flight: at most its timeout */
    s->probe = NULL;
    gyre_notify_destroy(s->notify, NOTIFY_FLUSH_MS);
    s->notify = NULL;
    if (otlp_exporter != NULL) {
        gyre_otlp_exporter_flush_and_stop(otlp_exporter, OTLP_FLUSH_MS);
        gyre_otlp_exporter_destroy(otlp_exporter);
        otlp_exporter = NULL;
    }
    if (s->writer == NULL) {
        gyre_logf("gyre: stopped\n");
        return 0;
    }
    int drained = gyre_writer_drain_and_stop(s->writer);
    gyre_writer_stats_t st;
    gyre_writer_stats(s->writer, &st);
    if (drained != 0)
        gyre_logf("gyre: the index did not take every trace; %llu bytes of the log wait for the next start\n",
                  (unsigned long long)st.index_lag_bytes);
    gyre_writer_destroy(s->writer);
    s->writer = NULL;
    gyre_store_close(s->store);
    gyre_logf("gyre: stopped (%llu traces logged, %llu indexed)\n", (unsigned long long)st.logged,
              (unsigned long long)st.written);
    return 0;
}
