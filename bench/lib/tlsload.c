/*
 * tlsload.c - new-connection HTTPS load, direct or through an explicit proxy.
 *
 * The native twin of the reference harness's lib/tlsload.py: the Python client
 * tops out at a few hundred handshakes a second on this machine, so it, not the
 * proxy, set the HTTPS figures. Every request here pays the same as there:
 *
 *   TCP connect (to the proxy, then "CONNECT host:port", or to the origin),
 *   a full TLS handshake with SNI, verified against CAFILE (no session
 *   resumption: the session cache is off and no session is ever offered),
 *   "GET PATH" with "Connection: close", the whole response read to EOF
 *   (status 200, exactly Content-Length body bytes), close.
 *
 * Usage: tlsload [-x PROXY_HOST:PORT] [-c THREADS] [-n COUNT] [-d SECONDS]
 *                [-w WARMUP] [-t DEADLINE_S] [-T IO_TIMEOUT_MS] (-C CAFILE | -k) URL
 *   URL        https://host[:port][/path]  (default port 443, path /)
 *   -c         threads, each doing one request after another (default 1)
 *   -n / -d    stop after COUNT requests started, or after SECONDS; with both,
 *              whichever comes first; neither: -n 500
 *   -w         connections made (one at a time) before the timed run and not
 *              counted: a proxy forges and caches its leaf certificate there
 *   -t         hard bound on the timed run (default 120 s); -T bounds every
 *              socket read, write and connect (default 10000 ms)
 *   -C / -k    trust anchors, or no verification at all (insecure: for a
 *              benchmark only, it makes the client's TLS cheaper than a real one)
 *
 * Prints one line of key=value (the keys tlsload.py prints, then more):
 *   ok fail wall_s rps p50_ms p99_ms tcp_p50_ms connect_p50_ms tls_p50_ms
 *   tls_p99_ms req_p50_ms threads cpu_cores err_tcp err_proxy err_tls err_http
 * rps is successful connections per second of wall time; cpu_cores is the
 * client's own CPU over that time (near the machine's cores: the client, not
 * the server, was the limit); p50/p99 are per
 * request (connect to close); tls_* is the handshake as the client sees it
 * (through an intercepting proxy that includes the proxy's own upstream
 * handshake). Failed requests are counted by phase, never fatal; the first
 * message of each phase goes to stderr. Exit status 0 when at least one
 * request succeeded, 1 when none did, 2 on bad usage or set-up.
 *
 * Build: gcc -O2 -Wall -o tlsload tlsload.c -lssl -lcrypto -lpthread
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE 65536

enum phase { PH_TCP, PH_PROXY, PH_TLS, PH_HTTP, PH_COUNT };
static const char *phase_name[PH_COUNT] = {"tcp", "proxy", "tls", "http"};

/* One successful request: the time of each part, in seconds. */
enum field { F_TOTAL, F_TCP, F_CONNECT, F_TLS, F_REQ, F_COUNT };
struct sample {
    double v[F_COUNT]; /* total: connect to close; tcp; CONNECT answered; TLS handshake; request and response */
};

struct worker {
    pthread_t thread;
    struct sample *samples;
    size_t n, cap;
    long errors[PH_COUNT];
    char *buf;
};

/* Settings, fixed before the threads start. */
static const char *host, *path;
static int port;
static int host_is_ip;
static struct sockaddr_storage target; /* where the TCP connection goes: proxy or origin */
static socklen_t target_len;
static int via_proxy;
static SSL_CTX *ctx;
static int io_timeout_ms = 10000;
static long count_limit = -1;   /* -n; -1: none */
static double stop_at = 0;      /* -d as an absolute monotonic time; 0: none */
static double deadline_at = 0;  /* -t as an absolute monotonic time */

static atomic_long started;
static atomic_int reported[PH_COUNT];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The first failure of each phase is worth reading; the rest are only counted. */
static void report(enum phase ph, const char *fmt, ...) {
    if (atomic_exchange(&reported[ph], 1)) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    unsigned long e = ERR_peek_last_error();
    char ssl_msg[256] = "";
    if (e) ERR_error_string_n(e, ssl_msg, sizeof ssl_msg);
    fprintf(stderr, "tlsload: %s error (first of its kind): %s%s%s\n", phase_name[ph], msg, e ? ": " : "", ssl_msg);
}

/* Resolves HOST:PORT to one address. IPv4 first: the benchmark's servers listen
 * on 127.0.0.1 only and "localhost" may also name ::1, which would cost every
 * request a refused connection first. */
static int resolve(const char *h, int p, struct sockaddr_storage *out, socklen_t *len) {
    char ports[16];
    snprintf(ports, sizeof ports, "%d", p);
    int families[2] = {AF_INET, AF_UNSPEC};
    for (int i = 0; i < 2; i++) {
        struct addrinfo hints = {.ai_family = families[i], .ai_socktype = SOCK_STREAM}, *res;
        if (getaddrinfo(h, ports, &hints, &res) != 0) continue;
        memcpy(out, res->ai_addr, res->ai_addrlen);
        *len = res->ai_addrlen;
        freeaddrinfo(res);
        return 0;
    }
    return -1;
}

/* Reads until the end of an HTTP head (kept in buf[0..*got), NUL-terminated); returns the head's length, or -1 with
 * *why set. */
static int read_head_plain(int fd, char *buf, int cap, int *got, const char **why) {
    *got = 0;
    while (*got < cap - 1) {
        ssize_t r = recv(fd, buf + *got, cap - 1 - *got, 0);
        if (r <= 0) {
            *why = r == 0 ? "closed by the proxy" : strerror(errno);
            return -1;
        }
        *got += (int)r;
        buf[*got] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        if (end) return (int)(end - buf) + 4;
    }
    *why = "head too long";
    return -1;
}

/* Content-Length of a response head (NUL-terminated), or -1 when absent or malformed. */
static long content_length(const char *head) {
    const char *line = strstr(head, "\r\n");
    while (line && line[2] != '\r') {
        line += 2;
        if (strncasecmp(line, "Content-Length:", 15) == 0) {
            char *end;
            long v = strtol(line + 15, &end, 10);
            return (end != line + 15 && v >= 0) ? v : -1;
        }
        line = strstr(line, "\r\n");
    }
    return -1;
}

/* One request on a fresh connection. Returns 0 and fills *s, or the failed phase + 1. */
static int one_request(struct worker *w, struct sample *s) {
    char *buf = w->buf;
    int rc = 0, n;
    SSL *ssl = NULL;
    double t0 = now(), t1, t2, t3;
    ERR_clear_error(); /* OpenSSL's error queue is per thread: only this request's errors in the report */

    int fd = socket(target.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { report(PH_TCP, "socket: %s", strerror(errno)); return PH_TCP + 1; }
    /* Linux applies SO_SNDTIMEO to connect() too, so every blocking call below is bounded. */
    struct timeval tv = {.tv_sec = io_timeout_ms / 1000, .tv_usec = (io_timeout_ms % 1000) * 1000};
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&target, target_len) != 0) {
        report(PH_TCP, "connect: %s", strerror(errno));
        rc = PH_TCP + 1;
        goto out;
    }
    t1 = now();

    if (via_proxy) {
        n = snprintf(buf, BUF_SIZE, "CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n", host, port, host, port);
        if (send(fd, buf, n, MSG_NOSIGNAL) != n) {
            report(PH_PROXY, "sending CONNECT: %s", strerror(errno));
            rc = PH_PROXY + 1;
            goto out;
        }
        const char *why = "";
        int got, head = read_head_plain(fd, buf, BUF_SIZE, &got, &why);
        if (head < 0) {
            report(PH_PROXY, "no answer to CONNECT: %s", why);
            rc = PH_PROXY + 1;
            goto out;
        }
        /* Nothing may follow the 200: the proxy cannot speak TLS before our ClientHello. */
        if (strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 8, " 200", 4) != 0 || got != head) {
            report(PH_PROXY, "CONNECT refused: %.*s", (int)strcspn(buf, "\r\n"), buf);
            rc = PH_PROXY + 1;
            goto out;
        }
    }
    t2 = now();

    ssl = SSL_new(ctx);
    if (!ssl || !SSL_set_fd(ssl, fd)) { report(PH_TLS, "SSL_new"); rc = PH_TLS + 1; goto out; }
    if (host_is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host); /* no SNI for an address (RFC 6066 section 3) */
    } else {
        SSL_set_tlsext_host_name(ssl, host);
        SSL_set1_host(ssl, host);
    }
    if (SSL_connect(ssl) != 1) {
        long v = SSL_get_verify_result(ssl);
        report(PH_TLS, "handshake failed (%s)", v != X509_V_OK ? X509_verify_cert_error_string(v) : strerror(errno));
        rc = PH_TLS + 1;
        goto out;
    }
    t3 = now();

    n = snprintf(buf, BUF_SIZE, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: tlsload\r\nConnection: close\r\n\r\n",
                 path, host, port);
    if (SSL_write(ssl, buf, n) != n) { report(PH_HTTP, "sending the request"); rc = PH_HTTP + 1; goto out; }

    /* The head (kept in buf until parsed), then the body counted to EOF. */
    int got = 0, head = -1;
    long body = 0, want = -1;
    for (;;) {
        int r = SSL_read(ssl, buf + (head < 0 ? got : 0), head < 0 ? BUF_SIZE - 1 - got : BUF_SIZE);
        if (r <= 0) {
            int e = SSL_get_error(ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN) break; /* EOF, with or without close_notify (see main) */
            report(PH_HTTP, "reading the response: %s", e == SSL_ERROR_SYSCALL && errno ? strerror(errno) : "TLS error");
            rc = PH_HTTP + 1;
            goto out;
        }
        if (head >= 0) { body += r; continue; }
        got += r;
        buf[got] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        if (!end) {
            if (got >= BUF_SIZE - 1) { report(PH_HTTP, "response head over %d bytes", BUF_SIZE); rc = PH_HTTP + 1; goto out; }
            continue;
        }
        head = (int)(end - buf) + 4;
        if (strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 8, " 200", 4) != 0) {
            report(PH_HTTP, "status: %.*s", (int)strcspn(buf, "\r\n"), buf);
            rc = PH_HTTP + 1;
            goto out;
        }
        want = content_length(buf);
        if (want < 0) { report(PH_HTTP, "no Content-Length"); rc = PH_HTTP + 1; goto out; }
        body = got - head;
    }
    if (head < 0) { report(PH_HTTP, "connection closed before the response head"); rc = PH_HTTP + 1; goto out; }
    if (body != want) { report(PH_HTTP, "body of %ld bytes, Content-Length %ld", body, want); rc = PH_HTTP + 1; goto out; }
    /* The server closed after its response; a close_notify back would only cost a write to a closed peer. */
    double t4 = now();
    *s = (struct sample){{t4 - t0, t1 - t0, t2 - t1, t3 - t2, t4 - t3}};
out:
    if (ssl) SSL_free(ssl);
    close(fd);
    return rc;
}

/* Takes the next request, or says stop: count reached, duration over, deadline passed. */
static int next_request(void) {
    double t = now();
    if (t >= deadline_at || (stop_at > 0 && t >= stop_at)) return 0;
    if (count_limit >= 0 && atomic_fetch_add(&started, 1) >= count_limit) return 0;
    return 1;
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    struct sample s;
    while (next_request()) {
        int rc = one_request(w, &s);
        if (rc) { w->errors[rc - 1]++; continue; }
        if (w->n == w->cap) {
            size_t cap = w->cap ? 2 * w->cap : 1024;
            struct sample *p = realloc(w->samples, cap * sizeof *p);
            if (!p) { w->errors[PH_HTTP]++; continue; } /* no memory for the sample: count it failed rather than lie */
            w->samples = p;
            w->cap = cap;
        }
        w->samples[w->n++] = s;
    }
    return NULL;
}

/* CPU seconds (user + system) of this process so far. */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Percentile in ms, picked as tlsload.py picks it (index p*(n-1), rounded down). */
static double pct(struct sample *all, size_t n, enum field f, double p, double *scratch) {
    if (!n) return 0;
    for (size_t i = 0; i < n; i++) scratch[i] = all[i].v[f];
    qsort(scratch, n, sizeof *scratch, cmp_double);
    size_t i = (size_t)(p * (n - 1));
    return scratch[i < n ? i : n - 1] * 1000;
}

static void usage(void) {
    fprintf(stderr, "usage: tlsload [-x PROXY_HOST:PORT] [-c THREADS] [-n COUNT] [-d SECONDS] [-w WARMUP] "
                    "[-t DEADLINE_S] [-T IO_TIMEOUT_MS] (-C CAFILE | -k) https://host[:port][/path]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *cafile = NULL, *proxy = NULL;
    int threads = 1, insecure = 0, warmup = 0, opt;
    double duration = 0, deadline = 120;
    while ((opt = getopt(argc, argv, "x:c:n:d:w:t:T:C:k")) != -1) {
        switch (opt) {
        case 'x': proxy = optarg; break;
        case 'c': threads = atoi(optarg); break;
        case 'n': count_limit = atol(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        case 't': deadline = atof(optarg); break;
        case 'T': io_timeout_ms = atoi(optarg); break;
        case 'C': cafile = optarg; break;
        case 'k': insecure = 1; break;
        default: usage();
        }
    }
    if (optind != argc - 1 || threads < 1 || threads > 1000 || io_timeout_ms < 1 || deadline <= 0 || (!cafile && !insecure))
        usage();
    if (count_limit < 0 && duration <= 0) count_limit = 500;

    /* URL: https://host[:port][/path]; an IPv6 literal ([::1]) is not needed here and not accepted. */
    const char *url = argv[optind];
    if (strncmp(url, "https://", 8) != 0) usage();
    char *rest = strdup(url + 8);
    char *slash = strchr(rest, '/');
    path = slash ? strdup(slash) : "/";
    if (slash) *slash = 0;
    char *colon = strchr(rest, ':');
    port = 443;
    if (colon) { *colon = 0; port = atoi(colon + 1); }
    host = rest;
    if (!*host || port <= 0 || port > 65535) usage();
    unsigned char addr[16];
    host_is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;

    if (proxy) {
        char *ph = strdup(proxy), *pc = strrchr(ph, ':');
        if (!pc) usage();
        *pc = 0;
        if (resolve(ph, atoi(pc + 1), &target, &target_len) != 0) { fprintf(stderr, "tlsload: cannot resolve %s\n", proxy); return 2; }
        via_proxy = 1;
    } else if (resolve(host, port, &target, &target_len) != 0) {
        fprintf(stderr, "tlsload: cannot resolve %s\n", host);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN); /* a peer that closes early is a counted error, not the end of the run */
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) { fprintf(stderr, "tlsload: SSL_CTX_new failed\n"); return 2; }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* A full handshake every time: nothing is cached, so nothing can be resumed. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* Servers often close without close_notify after "Connection: close"; truncation is still caught by the
     * Content-Length check. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    if (insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* insecure: benchmark shortcut, asked for with -k */
    } else {
        if (SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) {
            fprintf(stderr, "tlsload: cannot load CA file %s\n", cafile);
            return 2;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }

    struct worker *ws = calloc(threads, sizeof *ws);
    for (int i = 0; i < threads; i++) {
        ws[i].buf = malloc(BUF_SIZE);
        if (!ws[i].buf) { fprintf(stderr, "tlsload: out of memory\n"); return 2; }
    }

    /* Warm-up on the first worker, one at a time, not counted (its errors are only reported). */
    struct sample s;
    int warm_fail = 0;
    double warm_end = now() + deadline;
    for (int i = 0; i < warmup && now() < warm_end; i++) warm_fail += one_request(&ws[0], &s) != 0;
    if (warm_fail) fprintf(stderr, "tlsload: %d of %d warm-up requests failed\n", warm_fail, warmup);
    for (int i = 0; i < PH_COUNT; i++) atomic_store(&reported[i], 0);

    double cpu0 = cpu_seconds(), w0 = now();
    deadline_at = w0 + deadline;
    if (duration > 0) stop_at = w0 + duration;
    int running = 0;
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0) {
            fprintf(stderr, "tlsload: could only start %d threads\n", i);
            break;
        }
        running++;
    }
    for (int i = 0; i < running; i++) pthread_join(ws[i].thread, NULL);
    double wall = now() - w0, cpu = cpu_seconds() - cpu0;

    size_t n = 0;
    long errors[PH_COUNT] = {0}, fail = 0;
    for (int i = 0; i < running; i++) {
        n += ws[i].n;
        for (int p = 0; p < PH_COUNT; p++) errors[p] += ws[i].errors[p];
    }
    for (int p = 0; p < PH_COUNT; p++) fail += errors[p];
    struct sample *all = malloc((n ? n : 1) * sizeof *all);
    double *scratch = malloc((n ? n : 1) * sizeof *scratch);
    size_t k = 0;
    for (int i = 0; i < running; i++) {
        memcpy(all + k, ws[i].samples, ws[i].n * sizeof *all);
        k += ws[i].n;
    }
    printf("ok=%zu fail=%ld wall_s=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f tcp_p50_ms=%.3f connect_p50_ms=%.3f "
           "tls_p50_ms=%.3f tls_p99_ms=%.3f req_p50_ms=%.3f threads=%d cpu_cores=%.2f err_tcp=%ld err_proxy=%ld err_tls=%ld err_http=%ld\n",
           n, fail, wall, wall > 0 ? n / wall : 0, pct(all, n, F_TOTAL, .5, scratch),
           pct(all, n, F_TOTAL, .99, scratch), pct(all, n, F_TCP, .5, scratch), pct(all, n, F_CONNECT, .5, scratch),
           pct(all, n, F_TLS, .5, scratch), pct(all, n, F_TLS, .99, scratch), pct(all, n, F_REQ, .5, scratch), running,
           wall > 0 ? cpu / wall : 0, errors[PH_TCP], errors[PH_PROXY],
           errors[PH_TLS], errors[PH_HTTP]);
    return n > 0 ? 0 : 1;
}
