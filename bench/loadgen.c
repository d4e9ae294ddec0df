/* loadgen: HTTP/1.1 keep-alive load generator for ./dev bench.
 *
 * Raw sockets + epoll, one event loop per thread, no dependencies beyond
 * libc. Two load models:
 *   closed loop  (default): N connections, each sends its next request when
 *                the previous one was answered; latency from the send.
 *   open loop    (--rate R): requests are put on a timetable (R per second,
 *                evenly spaced); a request waits in a queue until a
 *                connection is free, and its latency counts from its
 *                scheduled time, so a slow server cannot hide its queueing
 *                (no coordinated omission).
 * Every 2xx latency goes into a log-linear histogram (HDR-like: 64 linear
 * sub-buckets per power of two, < 1.6 % error, microsecond unit); only 2xx
 * answers count as throughput (rps, CPU per 1,000). Any other answer, and
 * any socket/connect/timeout failure, is an error: counted by kind, its
 * latency in a histogram of its own (err_p50_ms, err_p99_ms).
 *
 * Other modes: --requests N (send exactly N, e.g. to seed data, optionally
 * writing the created "_id"s to --ids-out) and --hold N (N connections each
 * with one request waiting while the workers are stopped: gateway RSS per
 * waiting request).
 *
 * Requests come from a spec file (--spec), one per line, tab-separated:
 *     WEIGHT  METHOD  PATH  TOKEN|-  BODY|-
 * chosen at random by weight. Results: a human summary on stderr and one
 * JSON object on one line on stdout (bench/report.py reads it).
 *
 * While the measured window runs, the CPU time (utime+stime from
 * /proc/PID/stat) of the processes named with --cpu NAME=PID[,PID...] is
 * sampled at its start and end (+PID: that process and its children, found
 * again at the end; PostgreSQL's backends, each in its own session, are
 * children of the postmaster), their peak RSS is reset at the start
 * (/proc/PID/clear_refs "5") and read at the end (VmHWM).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 16
#define MAX_CPU_GROUPS 8
#define MAX_PIDS_PER_GROUP 256
#define MAX_PARENTS_PER_GROUP 4
#define MAX_STATUS 600

/* ------------------------------------------------------------------ utils */

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t) {
    struct timespec ts = {.tv_sec = (time_t)(t / 1000000000ull), .tv_nsec = (long)(t % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (p == NULL) die("out of memory");
    return p;
}

static void *xcalloc(size_t n, size_t m) {
    void *p = calloc(n, m);
    if (p == NULL) die("out of memory");
    return p;
}

/* xorshift64* */
static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* -------------------------------------------------------------- histogram */

#define H_LINEAR 128 /* values below are exact */
#define H_SUB 64     /* sub-buckets per power of two above */
#define H_MAX_EXP 40
#define H_BUCKETS (H_LINEAR + H_MAX_EXP * H_SUB)

typedef struct {
    uint64_t counts[H_BUCKETS];
    uint64_t n;
    uint64_t max_us;
    double sum_us;
} hist;

static int h_index(uint64_t v) {
    if (v < H_LINEAR) return (int)v;
    int e = 63 - __builtin_clzll(v) - 6; /* v >> e in [64, 128) */
    if (e > H_MAX_EXP) return H_BUCKETS - 1;
    return H_LINEAR + (e - 1) * H_SUB + (int)((v >> e) - H_SUB);
}

/* A representative value (the middle) of bucket I, in microseconds. */
static double h_value(int i) {
    if (i < H_LINEAR) return (double)i;
    int k = i - H_LINEAR;
    int e = k / H_SUB + 1;
    uint64_t lower = (uint64_t)(k % H_SUB + H_SUB) << e;
    return (double)lower + (double)(1ull << e) / 2.0;
}

static void h_record(hist *h, uint64_t us) {
    h->counts[h_index(us)]++;
    h->n++;
    h->sum_us += (double)us;
    if (us > h->max_us) h->max_us = us;
}

static void h_merge(hist *into, const hist *from) {
    for (int i = 0; i < H_BUCKETS; i++) into->counts[i] += from->counts[i];
    into->n += from->n;
    into->sum_us += from->sum_us;
    if (from->max_us > into->max_us) into->max_us = from->max_us;
}

/* Percentile P (0..100) in milliseconds. */
static double h_percentile_ms(const hist *h, double p) {
    if (h->n == 0) return 0.0;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->n);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < H_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            double v = h_value(i);
            if (v > (double)h->max_us) v = (double)h->max_us;
            return v / 1000.0;
        }
    }
    return (double)h->max_us / 1000.0;
}

/* ------------------------------------------------------------ requests */

typedef struct {
    double weight;
    char *raw;
    size_t raw_len;
} request_tmpl;

typedef struct {
    request_tmpl *items;
    double *cumulative;
    size_t count;
    double total;
} request_set;

static char *trim_eol(char *s) {
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = '\0';
    return s;
}

static void load_spec(request_set *set, const char *path, const char *host) {
    FILE *f = fopen(path, "r");
    if (f == NULL) die("cannot open spec %s: %s", path, strerror(errno));
    size_t cap = 16;
    set->items = xmalloc(cap * sizeof *set->items);
    set->count = 0;
    char *line = NULL;
    size_t line_cap = 0;
    while (getline(&line, &line_cap, f) > 0) {
        trim_eol(line);
        if (line[0] == '\0' || line[0] == '#') continue;
        char *fields[5];
        char *save = NULL;
        int nf = 0;
        for (char *tok = strtok_r(line, "\t", &save); tok != NULL && nf < 5; tok = strtok_r(NULL, "\t", &save))
            fields[nf++] = tok;
        if (nf != 5) die("spec %s: a line needs 5 tab-separated fields: WEIGHT METHOD PATH TOKEN BODY", path);
        double weight = strtod(fields[0], NULL);
        if (!(weight > 0)) continue;
        const char *method = fields[1], *target = fields[2], *token = fields[3], *body = fields[4];
        bool has_body = strcmp(body, "-") != 0;
        size_t body_len = has_body ? strlen(body) : 0;
        size_t room = strlen(method) + strlen(target) + strlen(host) + strlen(token) + body_len + 256;
        char *raw = xmalloc(room);
        int n = snprintf(raw, room, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host);
        if (strcmp(token, "-") != 0) n += snprintf(raw + n, room - (size_t)n, "Authorization: Bearer %s\r\n", token);
        if (has_body)
            n += snprintf(raw + n, room - (size_t)n, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                          body_len);
        n += snprintf(raw + n, room - (size_t)n, "\r\n");
        if (has_body) {
            memcpy(raw + n, body, body_len);
            n += (int)body_len;
        }
        if (set->count == cap) {
            cap *= 2;
            set->items = realloc(set->items, cap * sizeof *set->items);
            if (set->items == NULL) die("out of memory");
        }
        set->items[set->count++] = (request_tmpl){.weight = weight, .raw = raw, .raw_len = (size_t)n};
    }
    free(line);
    fclose(f);
    if (set->count == 0) die("spec %s has no requests", path);
    set->cumulative = xmalloc(set->count * sizeof *set->cumulative);
    double total = 0;
    for (size_t i = 0; i < set->count; i++) {
        total += set->items[i].weight;
        set->cumulative[i] = total;
    }
    set->total = total;
}

static const request_tmpl *pick(const request_set *set, uint64_t *rng) {
    if (set->count == 1) return &set->items[0];
    double x = (double)(rng_next(rng) >> 11) / 9007199254740992.0 * set->total;
    size_t lo = 0, hi = set->count - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (set->cumulative[mid] > x) hi = mid;
        else lo = mid + 1;
    }
    return &set->items[lo];
}

/* ------------------------------------------------------------- options */

typedef struct {
    char name[32];
    pid_t pids[MAX_PIDS_PER_GROUP];
    int npids;
    pid_t parents[MAX_PARENTS_PER_GROUP]; /* +PID: their children count too */
    int nparents;
    uint64_t ticks_start[MAX_PIDS_PER_GROUP];
    uint64_t ticks_end[MAX_PIDS_PER_GROUP];
    uint64_t switches_start[MAX_PIDS_PER_GROUP]; /* context switches, all threads */
    uint64_t switches_end[MAX_PIDS_PER_GROUP];
    long hwm_kb; /* max over the group's processes */
    long rss_kb;
} cpu_group;

static struct {
    const char *host;
    int port;
    char host_header[64];
    const char *spec;
    int connections;
    int threads;
    double rate; /* 0: closed loop */
    double duration_s;
    double warmup_s;
    double drain_s;
    long requests; /* >0: send exactly this many (closed loop) */
    const char *ids_out;
    long hold;
    pid_t stop_pids[MAX_PIDS_PER_GROUP];
    int nstop_pids;
    pid_t rss_pid;
    const char *label;
    cpu_group groups[MAX_CPU_GROUPS];
    int ngroups;
} opt = {.host = "127.0.0.1", .connections = 16, .threads = 1, .duration_s = 10, .warmup_s = 2, .drain_s = 10};

static void usage(void) {
    fputs("usage: loadgen --port P --spec FILE [--connections N] [--threads T] [--rate R]\n"
          "               [--duration S] [--warmup S] [--drain S] [--requests N [--ids-out FILE]]\n"
          "               [--hold N --stop-pids PID,... --rss-pid PID] [--cpu NAME=[+]PID[,...]]... [--label L]\n",
          stderr);
    exit(2);
}

static void parse_pids(const char *text, pid_t *pids, int *n) {
    char *copy = strdup(text);
    char *save = NULL;
    *n = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if (*n >= MAX_PIDS_PER_GROUP) die("too many pids in '%s'", text);
        long v = strtol(tok, NULL, 10);
        if (v > 0) pids[(*n)++] = (pid_t)v;
    }
    free(copy);
}

/* PID,+PID,...: a leading + also counts that process's children. */
static void parse_group_pids(const char *text, cpu_group *g) {
    char *copy = strdup(text);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        bool is_parent = tok[0] == '+';
        long v = strtol(tok + is_parent, NULL, 10);
        if (v <= 0) continue;
        if (g->npids >= MAX_PIDS_PER_GROUP) die("too many pids in '%s'", text);
        g->pids[g->npids++] = (pid_t)v;
        if (!is_parent) continue;
        if (g->nparents >= MAX_PARENTS_PER_GROUP) die("too many +pids in '%s'", text);
        g->parents[g->nparents++] = (pid_t)v;
    }
    free(copy);
}

static void parse_args(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v != NULL && (++i, 1))
        if (ARG("--host")) opt.host = v;
        else if (ARG("--port")) opt.port = atoi(v);
        else if (ARG("--spec")) opt.spec = v;
        else if (ARG("--connections")) opt.connections = atoi(v);
        else if (ARG("--threads")) opt.threads = atoi(v);
        else if (ARG("--rate")) opt.rate = atof(v);
        else if (ARG("--duration")) opt.duration_s = atof(v);
        else if (ARG("--warmup")) opt.warmup_s = atof(v);
        else if (ARG("--drain")) opt.drain_s = atof(v);
        else if (ARG("--requests")) opt.requests = atol(v);
        else if (ARG("--ids-out")) opt.ids_out = v;
        else if (ARG("--hold")) opt.hold = atol(v);
        else if (ARG("--stop-pids")) parse_pids(v, opt.stop_pids, &opt.nstop_pids);
        else if (ARG("--rss-pid")) opt.rss_pid = (pid_t)atoi(v);
        else if (ARG("--label")) opt.label = v;
        else if (ARG("--cpu")) {
            if (opt.ngroups >= MAX_CPU_GROUPS) die("too many --cpu groups");
            cpu_group *g = &opt.groups[opt.ngroups++];
            const char *eq = strchr(v, '=');
            if (eq == NULL || eq == v || (size_t)(eq - v) >= sizeof g->name) die("--cpu wants NAME=[+]PID[,...]");
            memcpy(g->name, v, (size_t)(eq - v));
            parse_group_pids(eq + 1, g);
        } else usage();
#undef ARG
    }
    if (opt.port <= 0 || opt.spec == NULL) usage();
    if (opt.connections < 1) opt.connections = 1;
    if (opt.threads < 1) opt.threads = 1;
    if (opt.threads > MAX_THREADS) opt.threads = MAX_THREADS;
    if (opt.requests > 0 || opt.hold > 0) opt.threads = 1;
    if (opt.threads > opt.connections) opt.threads = opt.connections;
    snprintf(opt.host_header, sizeof opt.host_header, "%s:%d", opt.host, opt.port);
}

/* ---------------------------------------------------------------- /proc */

static uint64_t proc_ticks(pid_t pid) {
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (p == NULL) return 0;
    /* after ") ": field 3 (state) ... utime is field 14, stime 15 */
    unsigned long utime = 0, stime = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) return 0;
    return (uint64_t)utime + stime;
}

static long proc_status_kb(pid_t pid, const char *key) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    long v = -1;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtol(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* Voluntary + involuntary context switches of every thread of PID. */
static uint64_t proc_switches(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    if (dir == NULL) return 0;
    uint64_t total = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.') continue;
        char status[320], line[256];
        snprintf(status, sizeof status, "/proc/%d/task/%s/status", (int)pid, entry->d_name);
        FILE *f = fopen(status, "r");
        if (f == NULL) continue;
        while (fgets(line, sizeof line, f) != NULL) {
            if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0) total += strtoull(line + 24, NULL, 10);
            else if (strncmp(line, "nonvoluntary_ctxt_switches:", 27) == 0) total += strtoull(line + 27, NULL, 10);
        }
        fclose(f);
    }
    closedir(dir);
    return total;
}

static void proc_reset_hwm(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/clear_refs", (int)pid);
    int fd = open(path, O_WRONLY);
    if (fd < 0) return;
    if (write(fd, "5", 1) < 0) {
    }
    close(fd);
}

/* The parent pid (field 4 of /proc/PID/stat), or -1. */
static pid_t proc_ppid(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    int ppid = -1;
    if (p == NULL || sscanf(p + 2, "%*c %d", &ppid) != 1) return -1;
    return (pid_t)ppid;
}

static bool group_has_pid(const cpu_group *g, pid_t pid) {
    for (int i = 0; i < g->npids; i++)
        if (g->pids[i] == pid) return true;
    return false;
}

/* Adds the children of g's +PIDs not in it yet. Their ticks at the start are
 * 0: one found at the end was born during the window. */
static void group_add_children(cpu_group *g) {
    if (g->nparents == 0) return;
    DIR *dir = opendir("/proc");
    if (dir == NULL) return;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL && g->npids < MAX_PIDS_PER_GROUP) {
        pid_t pid = (pid_t)strtol(entry->d_name, NULL, 10);
        if (pid <= 0 || group_has_pid(g, pid)) continue;
        pid_t ppid = proc_ppid(pid);
        for (int i = 0; i < g->nparents; i++)
            if (ppid == g->parents[i]) {
                g->ticks_start[g->npids] = 0;
                g->switches_start[g->npids] = 0;
                g->pids[g->npids++] = pid;
                break;
            }
    }
    closedir(dir);
}

/* Jiffies of the whole machine (/proc/stat "cpu" line). */
typedef struct {
    uint64_t busy; /* all but idle and iowait */
    uint64_t total;
    uint64_t steal; /* the hypervisor ran another machine on our vCPUs */
} machine_sample;

static void machine_ticks(machine_sample *m) {
    memset(m, 0, sizeof *m);
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL) return;
    unsigned long long v[10] = {0};
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &v[6], &v[7], &v[8], &v[9]) >= 4) {
        for (int i = 0; i < 8; i++) m->total += v[i];
        m->busy = m->total - v[3] - v[4];
        m->steal = v[7];
    }
    fclose(f);
}

/* ------------------------------------------------------------- connections */

enum { C_CLOSED, C_CONNECTING, C_IDLE, C_WRITING, C_READING };

struct thread_ctx;

typedef struct conn {
    int fd;
    int state;
    struct thread_ctx *t;
    const request_tmpl *req;
    size_t written;
    uint64_t t_start; /* scheduled (open loop) or sent (closed loop) */
    bool counts;      /* inside the measured window */
    char *buf;
    size_t len, cap;
    size_t header_end; /* 0 until the header is complete */
    size_t content_length;
    int status;
    bool close_after;
    int idle_next; /* index in the idle stack, -1 */
} conn;

typedef struct thread_ctx {
    int index;
    int epfd;
    int timerfd;
    conn *conns;
    int nconns;
    int *idle; /* stack of idle connection indexes */
    int nidle;
    uint64_t rng;
    const request_set *set;
    /* timing */
    uint64_t t0, t_measure, t_end, t_drain_end;
    double interval_ns; /* open loop: between two of this thread's requests */
    uint64_t next_seq;  /* open loop: next request number of this thread */
    uint64_t *queue;    /* open loop: scheduled times waiting for a connection */
    size_t q_head, q_len, q_cap, q_max;
    long to_send; /* --requests: how many are left to send */
    /* results: `h` holds the latency of 2xx answers only (the throughput);
       `h_err` that of every other answer, reported apart */
    hist h, h_err;
    uint64_t sent_window, done_window, ok_window;
    uint64_t status_counts[MAX_STATUS];
    uint64_t err_socket, err_connect, err_timeout, err_parse;
    uint64_t server_closes; /* answers after which the server closed the connection */
    uint64_t in_flight_window;
    FILE *ids_out;
    uint64_t done_total;
} thread_ctx;

static request_set g_set;
static atomic_bool g_stop;

static void on_sigint(int s) {
    (void)s;
    atomic_store(&g_stop, true);
}

static void ep_mod(thread_ctx *t, conn *c, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_open(thread_ctx *t, conn *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket: %s (raise ulimit -n)", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    inet_pton(AF_INET, opt.host, &addr.sin_addr);
    c->fd = fd;
    c->len = 0;
    c->header_end = 0;
    c->req = NULL;
    int rc = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    c->state = (rc == 0) ? C_IDLE : C_CONNECTING;
    /* an immediate failure is reported as an error event by epoll */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
    if (c->state == C_IDLE) ev.events = EPOLLIN | EPOLLRDHUP;
    epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev);
    if (c->state == C_IDLE) t->idle[t->nidle++] = (int)(c - t->conns);
}

static void conn_close(thread_ctx *t, conn *c) {
    if (c->fd >= 0) {
        epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = C_CLOSED;
}

static bool is_issuing(thread_ctx *t, uint64_t now) {
    if (opt.hold > 0) return false; /* one request per connection, sent by run_hold */
    if (opt.requests > 0) return t->to_send > 0;
    return now < t->t_end && !atomic_load(&g_stop);
}

static void conn_send(thread_ctx *t, conn *c, const request_tmpl *req, uint64_t t_start) {
    c->req = req;
    c->written = 0;
    c->t_start = t_start;
    c->counts = opt.requests > 0 || (t_start >= t->t_measure && t_start < t->t_end);
    if (c->counts) {
        t->sent_window++;
        t->in_flight_window++;
    }
    c->len = 0;
    c->header_end = 0;
    ssize_t n = send(c->fd, req->raw, req->raw_len, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) n = 0; /* the read side will see the error */
    if (n < 0) n = 0;
    c->written = (size_t)n;
    if (c->written < req->raw_len) {
        c->state = C_WRITING;
        ep_mod(t, c, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    } else {
        c->state = C_READING;
    }
}

/* Sends on idle connections what is due. */
static void dispatch(thread_ctx *t, uint64_t now) {
    if (opt.rate > 0) {
        /* enqueue every request whose time has come */
        while (!atomic_load(&g_stop)) {
            uint64_t at = t->t0 + (uint64_t)(((double)t->next_seq + (double)t->index / opt.threads) * t->interval_ns);
            if (at > now || at >= t->t_end) break;
            if (t->q_len == t->q_cap) {
                size_t ncap = t->q_cap ? t->q_cap * 2 : 4096;
                uint64_t *nq = xmalloc(ncap * sizeof *nq);
                for (size_t i = 0; i < t->q_len; i++) nq[i] = t->queue[(t->q_head + i) % t->q_cap];
                free(t->queue);
                t->queue = nq;
                t->q_cap = ncap;
                t->q_head = 0;
            }
            t->queue[(t->q_head + t->q_len) % t->q_cap] = at;
            t->q_len++;
            t->next_seq++;
        }
        if (t->q_len > t->q_max) t->q_max = t->q_len;
        while (t->q_len > 0 && t->nidle > 0) {
            conn *c = &t->conns[t->idle[--t->nidle]];
            uint64_t at = t->queue[t->q_head];
            t->q_head = (t->q_head + 1) % t->q_cap;
            t->q_len--;
            conn_send(t, c, pick(t->set, &t->rng), at);
        }
        return;
    }
    while (t->nidle > 0 && is_issuing(t, now)) {
        conn *c = &t->conns[t->idle[--t->nidle]];
        if (opt.requests > 0) t->to_send--;
        conn_send(t, c, pick(t->set, &t->rng), now);
    }
}

static void finish_request(thread_ctx *t, conn *c, int status, uint64_t now) {
    t->done_total++;
    if (c->counts) {
        t->in_flight_window--;
        t->done_window++;
        if (status >= 200 && status < 300) {
            t->ok_window++;
        }
        if (status > 0 && status < MAX_STATUS) t->status_counts[status]++;
        else if (status == -1) t->err_socket++;
        else t->err_parse++;
        uint64_t us = now > c->t_start ? (now - c->t_start) / 1000 : 0;
        /* An error answer is not throughput: a fast 503 would flatter both
           the rate and the percentiles. */
        if (status >= 200 && status < 300) h_record(&t->h, us);
        else if (status > 0) h_record(&t->h_err, us);
    }
    if (t->ids_out != NULL && status >= 200 && status < 300 && c->header_end > 0) {
        const char *body = c->buf + c->header_end;
        size_t blen = c->len - c->header_end;
        const char *p = memmem(body, blen, "\"_id\":\"", 7);
        if (p != NULL && (size_t)(p - body) + 7 + 24 <= blen) fprintf(t->ids_out, "%.24s\n", p + 7);
    }
    c->req = NULL;
}

/* Parses what was read; returns true when the response is complete. */
static int parse_response(conn *c) {
    if (c->header_end == 0) {
        size_t from = 0;
        char *end = memmem(c->buf + from, c->len - from, "\r\n\r\n", 4);
        if (end == NULL) return 0;
        c->header_end = (size_t)(end - c->buf) + 4;
        c->status = 0;
        c->content_length = 0;
        c->close_after = false;
        if (c->len < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0) return -1;
        c->status = atoi(c->buf + 9);
        /* headers */
        char *line = memchr(c->buf, '\n', c->header_end);
        bool has_length = false;
        while (line != NULL && (size_t)(line - c->buf) + 1 < c->header_end) {
            line++;
            size_t rest = c->header_end - (size_t)(line - c->buf);
            if (rest > 15 && strncasecmp(line, "Content-Length:", 15) == 0) {
                c->content_length = strtoull(line + 15, NULL, 10);
                has_length = true;
            } else if (rest > 11 && strncasecmp(line, "Connection:", 11) == 0) {
                const char *v = line + 11;
                while (*v == ' ') v++;
                if (strncasecmp(v, "close", 5) == 0) c->close_after = true;
            } else if (rest > 18 && strncasecmp(line, "Transfer-Encoding:", 18) == 0) {
                return -1; /* the gateway always sends Content-Length */
            }
            line = memchr(line, '\n', rest);
        }
        if (!has_length) c->content_length = 0;
    }
    return c->len >= c->header_end + c->content_length ? 1 : 0;
}

static void conn_failed(thread_ctx *t, conn *c, uint64_t now) {
    if (c->state == C_CONNECTING) t->err_connect++;
    if (c->req != NULL) finish_request(t, c, -1, now);
    conn_close(t, c);
    /* replace it, unless the server is gone */
    if (t->err_connect < 100 && (is_issuing(t, now) || (opt.rate > 0 && t->q_len > 0))) conn_open(t, c);
}

static void on_event(thread_ctx *t, conn *c, uint32_t events, uint64_t now) {
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
            conn_failed(t, c, now);
            return;
        }
        if (events & EPOLLOUT) {
            c->state = C_IDLE;
            ep_mod(t, c, EPOLLIN | EPOLLRDHUP);
            t->idle[t->nidle++] = (int)(c - t->conns);
        }
        return;
    }
    if (c->state == C_WRITING && (events & EPOLLOUT)) {
        ssize_t n = send(c->fd, c->req->raw + c->written, c->req->raw_len - c->written, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN) {
            conn_failed(t, c, now);
            return;
        }
        if (n > 0) c->written += (size_t)n;
        if (c->written == c->req->raw_len) {
            c->state = C_READING;
            ep_mod(t, c, EPOLLIN | EPOLLRDHUP);
        }
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        bool eof = false;
        for (;;) {
            if (c->cap - c->len < 8192) {
                c->cap = c->cap ? c->cap * 2 : 16384;
                c->buf = realloc(c->buf, c->cap);
                if (c->buf == NULL) die("out of memory");
            }
            ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
            if (n > 0) {
                c->len += (size_t)n;
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
            eof = true; /* EOF or error: first use what arrived */
            break;
        }
        if (c->state != C_READING && c->state != C_WRITING) {
            c->len = 0; /* unexpected bytes on an idle connection */
            if (eof) conn_failed(t, c, now);
            return;
        }
        int done = parse_response(c);
        if (done == 0) {
            if (eof) conn_failed(t, c, now);
            return;
        }
        if (done < 0) {
            finish_request(t, c, -2, now);
            conn_close(t, c);
            conn_open(t, c);
            return;
        }
        int status = c->status;
        bool close_after = c->close_after || eof;
        finish_request(t, c, status, now);
        if (close_after) {
            /* the server closes after this answer: a new connection */
            t->server_closes++;
            conn_close(t, c);
            if (is_issuing(t, now) || (opt.rate > 0 && t->q_len > 0)) conn_open(t, c);
            return;
        }
        c->state = C_IDLE;
        c->len = 0;
        c->header_end = 0;
        t->idle[t->nidle++] = (int)(c - t->conns);
    }
}

static void arm_timer(thread_ctx *t, uint64_t at) {
    struct itimerspec its = {0};
    if (at == 0) at = 1;
    its.it_value.tv_sec = (time_t)(at / 1000000000ull);
    its.it_value.tv_nsec = (long)(at % 1000000000ull);
    timerfd_settime(t->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void *thread_main(void *arg) {
    thread_ctx *t = arg;
    struct epoll_event events[256];
    uint64_t armed_for = 0;
    for (;;) {
        uint64_t now = now_ns();
        dispatch(t, now);
        bool issuing = is_issuing(t, now) || (opt.rate > 0 && t->q_len > 0);
        bool busy = opt.requests > 0 ? (t->done_total < (uint64_t)opt.requests) : t->in_flight_window > 0;
        if (!issuing && !busy) break;
        if (!issuing && now >= t->t_drain_end) break;
        if (atomic_load(&g_stop) && now >= t->t_drain_end) break;
        /* wake for the next scheduled request, the end of the window or of the drain */
        uint64_t wake = UINT64_MAX;
        if (opt.requests == 0) {
            if (t->t_end > now) wake = t->t_end;
            else if (t->t_drain_end > now) wake = t->t_drain_end;
            if (opt.rate > 0) {
                uint64_t at = t->t0 +
                              (uint64_t)(((double)t->next_seq + (double)t->index / opt.threads) * t->interval_ns);
                if (at > now && at < t->t_end && at < wake) wake = at;
            }
        }
        if (wake != UINT64_MAX && wake != armed_for) {
            arm_timer(t, wake);
            armed_for = wake;
        }
        int n = epoll_wait(t->epfd, events, 256, 1000);
        now = now_ns();
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == NULL) {
                uint64_t expirations;
                if (read(t->timerfd, &expirations, sizeof expirations) < 0) {
                }
                armed_for = 0;
                continue;
            }
            on_event(t, events[i].data.ptr, events[i].events, now);
        }
    }
    /* what is still waiting after the drain counts as a timeout */
    for (int i = 0; i < t->nconns; i++) {
        conn *c = &t->conns[i];
        if (c->req != NULL && c->counts) {
            t->err_timeout++;
            t->in_flight_window--;
        }
    }
    if (opt.rate > 0) t->err_timeout += t->q_len; /* scheduled, never sent */
    for (int i = 0; i < t->nconns; i++) conn_close(t, &t->conns[i]);
    return NULL;
}

static void thread_setup(thread_ctx *t, int index, int nconns) {
    memset(t, 0, sizeof *t);
    t->index = index;
    t->set = &g_set;
    t->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)(index + 1) * 0xD1B54A32D192ED03ull) ^ now_ns();
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    t->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->timerfd, &ev);
    t->nconns = nconns;
    t->conns = xcalloc((size_t)nconns, sizeof *t->conns);
    t->idle = xcalloc((size_t)nconns, sizeof *t->idle);
    for (int i = 0; i < nconns; i++) {
        t->conns[i].fd = -1;
        t->conns[i].t = t;
    }
}

/* Opens every connection of T and waits until they are connected. */
static void thread_connect(thread_ctx *t) {
    for (int i = 0; i < t->nconns; i++) conn_open(t, &t->conns[i]);
    uint64_t deadline = now_ns() + 10000000000ull;
    struct epoll_event events[256];
    while (t->nidle < t->nconns && now_ns() < deadline) {
        int n = epoll_wait(t->epfd, events, 256, 100);
        for (int i = 0; i < n; i++) {
            conn *c = events[i].data.ptr;
            if (c == NULL || c->state != C_CONNECTING) continue;
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) die("cannot connect to %s: %s", opt.host_header, strerror(err));
            c->state = C_IDLE;
            ep_mod(t, c, EPOLLIN | EPOLLRDHUP);
            t->idle[t->nidle++] = (int)(c - t->conns);
        }
    }
    if (t->nidle < t->nconns) die("only %d of %d connections established", t->nidle, t->nconns);
}

/* --------------------------------------------------------------- sampling */

static void sample_start(machine_sample *machine) {
    for (int g = 0; g < opt.ngroups; g++) {
        group_add_children(&opt.groups[g]);
        for (int i = 0; i < opt.groups[g].npids; i++) {
            proc_reset_hwm(opt.groups[g].pids[i]);
            opt.groups[g].ticks_start[i] = proc_ticks(opt.groups[g].pids[i]);
            opt.groups[g].switches_start[i] = proc_switches(opt.groups[g].pids[i]);
        }
    }
    machine_ticks(machine);
}

static void sample_end(machine_sample *machine) {
    for (int g = 0; g < opt.ngroups; g++) {
        group_add_children(&opt.groups[g]);
        opt.groups[g].hwm_kb = 0;
        for (int i = 0; i < opt.groups[g].npids; i++) {
            opt.groups[g].ticks_end[i] = proc_ticks(opt.groups[g].pids[i]);
            opt.groups[g].switches_end[i] = proc_switches(opt.groups[g].pids[i]);
            long hwm = proc_status_kb(opt.groups[g].pids[i], "VmHWM");
            if (hwm > opt.groups[g].hwm_kb) opt.groups[g].hwm_kb = hwm;
        }
    }
    machine_ticks(machine);
}

static double group_cpu_ms(const cpu_group *g) {
    uint64_t ticks = 0;
    for (int i = 0; i < g->npids; i++)
        if (g->ticks_end[i] >= g->ticks_start[i]) ticks += g->ticks_end[i] - g->ticks_start[i];
    return (double)ticks * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static uint64_t group_switches(const cpu_group *g) {
    uint64_t n = 0;
    for (int i = 0; i < g->npids; i++)
        if (g->switches_end[i] >= g->switches_start[i]) n += g->switches_end[i] - g->switches_start[i];
    return n;
}

static double self_cpu_ms(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + (double)ru.ru_stime.tv_sec * 1e3 +
           ru.ru_stime.tv_usec / 1e3;
}

/* ---------------------------------------------------------------- output */

typedef struct {
    char text[4096];
    size_t len;
} outbuf;

static void out(outbuf *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->text + o->len, sizeof o->text - o->len, fmt, ap);
    va_end(ap);
    if (n > 0) o->len += (size_t)n;
    if (o->len >= sizeof o->text) o->len = sizeof o->text - 1;
}

/* "503:12,socket:3" or "0" */
static void errors_text(outbuf *o, const uint64_t *status_counts, uint64_t sock, uint64_t conn_err, uint64_t timeout,
                        uint64_t parse, uint64_t *total) {
    *total = 0;
    bool any = false;
    for (int s = 0; s < MAX_STATUS; s++) {
        if (status_counts[s] == 0 || (s >= 200 && s < 300)) continue;
        out(o, "%s%d:%" PRIu64, any ? "," : "", s, status_counts[s]);
        *total += status_counts[s];
        any = true;
    }
    const char *names[] = {"socket", "connect", "timeout", "parse"};
    uint64_t values[] = {sock, conn_err, timeout, parse};
    for (int i = 0; i < 4; i++) {
        if (values[i] == 0) continue;
        out(o, "%s%s:%" PRIu64, any ? "," : "", names[i], values[i]);
        *total += values[i];
        any = true;
    }
    if (!any) out(o, "0");
}

/* Prints "key=value key=value ..." (values without spaces) as one JSON
   object on one line: numbers as numbers, anything else as a string. */
static void print_json(const char *kv) {
    fputc('{', stdout);
    bool first = true;
    const char *p = kv;
    while (*p != '\0') {
        while (*p == ' ') p++;
        const char *end = p + strcspn(p, " ");
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq != NULL) {
            char value[256];
            size_t vlen = (size_t)(end - eq - 1) < sizeof value - 1 ? (size_t)(end - eq - 1) : sizeof value - 1;
            memcpy(value, eq + 1, vlen);
            value[vlen] = '\0';
            char *num_end = NULL;
            errno = 0;
            double d = vlen > 0 ? strtod(value, &num_end) : 0;
            bool number = vlen > 0 && errno == 0 && *num_end == '\0' && isfinite(d) && value[0] != '+' &&
                          strspn(value, "0123456789.-") == vlen;
            printf("%s\"%.*s\":", first ? "" : ",", (int)(eq - p), p);
            if (number) {
                fputs(value, stdout);
            } else {
                fputc('"', stdout);
                for (const char *c = value; *c != '\0'; c++) {
                    if (*c == '"' || *c == '\\') fputc('\\', stdout);
                    if ((unsigned char)*c >= 0x20) fputc(*c, stdout);
                }
                fputc('"', stdout);
            }
            first = false;
        }
        p = end;
    }
    fputs("}\n", stdout);
    fflush(stdout);
}

/* ------------------------------------------------------------------ hold */

/* GET PATH on a fresh connection; returns the body (malloc) or NULL. */
static char *http_get(const char *path) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return NULL;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    inet_pton(AF_INET, opt.host, &addr.sin_addr);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return NULL;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
                     opt.host_header);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return NULL;
    }
    size_t cap = 65536, len = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (cap - len < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (buf == NULL) die("out of memory");
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    return buf;
}

static long metric_value(const char *text, const char *name) {
    size_t nlen = strlen(name);
    for (const char *p = text; p != NULL && *p; p = strchr(p, '\n')) {
        if (*p == '\n') p++;
        if (strncmp(p, name, nlen) == 0 && p[nlen] == ' ') return (long)strtod(p + nlen + 1, NULL);
    }
    return -1;
}

static void signal_pids(int sig) {
    for (int i = 0; i < opt.nstop_pids; i++) kill(opt.stop_pids[i], sig);
}

static int run_hold(void) {
    long n = opt.hold;
    const request_tmpl *req = &g_set.items[0];
    thread_ctx *t = xcalloc(1, sizeof *t);
    thread_setup(t, 0, (int)n);
    t->t0 = t->t_measure = now_ns();
    t->t_end = UINT64_MAX;
    t->t_drain_end = UINT64_MAX;

    signal_pids(SIGSTOP);
    usleep(500 * 1000);
    long rss_before = proc_status_kb(opt.rss_pid, "VmRSS");
    uint64_t started = now_ns();

    /* connect in batches (the listen backlog is finite), send on connect */
    struct epoll_event events[512];
    int opened = 0, connecting = 0, sent = 0;
    uint64_t give_up = now_ns() + 60000000000ull;
    while (sent < n && now_ns() < give_up) {
        while (opened < n && connecting < 256) {
            conn_open(t, &t->conns[opened]);
            if (t->conns[opened].state == C_IDLE) {
                t->nidle--;
                conn_send(t, &t->conns[opened], req, now_ns());
                sent++;
            } else {
                connecting++;
            }
            opened++;
        }
        int k = epoll_wait(t->epfd, events, 512, 100);
        uint64_t now = now_ns();
        for (int i = 0; i < k; i++) {
            conn *c = events[i].data.ptr;
            if (c == NULL) continue;
            if (c->state == C_CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                connecting--;
                if (err != 0 || (events[i].events & (EPOLLERR | EPOLLHUP))) {
                    t->err_connect++;
                    conn_close(t, c);
                    n--; /* one fewer waiting request */
                    continue;
                }
                c->state = C_IDLE;
                ep_mod(t, c, EPOLLIN | EPOLLRDHUP);
                conn_send(t, c, req, now);
                sent++;
            } else {
                on_event(t, c, events[i].events, now);
            }
        }
    }
    double connect_s = (double)(now_ns() - started) / 1e9;

    /* wait until the gateway holds them all (its requests_waiting gauge) */
    long waiting = -1;
    uint64_t wait_deadline = now_ns() + 30000000000ull;
    while (now_ns() < wait_deadline) {
        char *metrics = http_get("/metrics");
        if (metrics != NULL) {
            waiting = metric_value(metrics, "ticket_gateway_requests_waiting");
            free(metrics);
        }
        if (waiting >= (long)sent - (long)t->done_total) break;
        /* keep reading early answers (errors) meanwhile */
        int k = epoll_wait(t->epfd, events, 512, 200);
        uint64_t now = now_ns();
        for (int i = 0; i < k; i++)
            if (events[i].data.ptr != NULL) on_event(t, events[i].data.ptr, events[i].events, now);
    }
    usleep(500 * 1000);
    long rss_after = proc_status_kb(opt.rss_pid, "VmRSS");
    long hwm = proc_status_kb(opt.rss_pid, "VmHWM");

    /* let the workers go and drain */
    uint64_t released = now_ns();
    signal_pids(SIGCONT);
    uint64_t drain_deadline = released + (uint64_t)(opt.drain_s * 1e9);
    while (t->in_flight_window > 0 && now_ns() < drain_deadline) {
        int k = epoll_wait(t->epfd, events, 512, 200);
        uint64_t now = now_ns();
        for (int i = 0; i < k; i++)
            if (events[i].data.ptr != NULL) on_event(t, events[i].data.ptr, events[i].events, now);
    }
    double drain_s = (double)(now_ns() - released) / 1e9;
    t->err_timeout += t->in_flight_window;

    outbuf errs = {0};
    uint64_t nerr = 0;
    errors_text(&errs, t->status_counts, t->err_socket, t->err_connect, t->err_timeout, t->err_parse, &nerr);
    double per_req = sent > 0 ? (double)(rss_after - rss_before) / (double)sent : 0;
    fprintf(stderr,
            "loadgen: hold %d requests (asked %ld): gateway VmRSS %ld -> %ld KB (%.2f KB per waiting request), "
            "waiting gauge %ld, connect+send %.1fs, drained in %.1fs, ok %" PRIu64 ", errors %s\n",
            sent, opt.hold, rss_before, rss_after, per_req, waiting, connect_s, drain_s, t->ok_window, errs.text);
    outbuf line = {0};
    out(&line,
        "label=%s mode=hold held=%d rss_before_kb=%ld rss_after_kb=%ld hwm_kb=%ld kb_per_request=%.2f "
        "waiting=%ld connect_s=%.2f drain_s=%.2f ok=%" PRIu64 " errors=%" PRIu64 " error_detail=%s",
        opt.label ? opt.label : "hold", sent, rss_before, rss_after, hwm, per_req, waiting, connect_s, drain_s,
        t->ok_window, nerr, errs.text);
    print_json(line.text);
    return 0;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_sigint};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if ((long)rl.rlim_cur < (opt.hold > 0 ? opt.hold : opt.connections) + 64)
            die("the open-files limit (%ld) is too low for %ld connections", (long)rl.rlim_cur,
                opt.hold > 0 ? opt.hold : (long)opt.connections);
    }
    load_spec(&g_set, opt.spec, opt.host_header);
    if (opt.hold > 0) return run_hold();

    int nthreads = opt.threads;
    thread_ctx *threads = xcalloc((size_t)nthreads, sizeof *threads);
    for (int i = 0; i < nthreads; i++) {
        int share = opt.connections / nthreads + (i < opt.connections % nthreads ? 1 : 0);
        thread_setup(&threads[i], i, share);
        thread_connect(&threads[i]);
    }
    FILE *ids = NULL;
    if (opt.ids_out != NULL) {
        ids = fopen(opt.ids_out, "w");
        if (ids == NULL) die("cannot write %s: %s", opt.ids_out, strerror(errno));
    }
    uint64_t t0 = now_ns() + 20000000ull; /* all threads start together */
    uint64_t t_measure = opt.requests > 0 ? t0 : t0 + (uint64_t)(opt.warmup_s * 1e9);
    uint64_t t_end = opt.requests > 0 ? UINT64_MAX / 4 : t_measure + (uint64_t)(opt.duration_s * 1e9);
    uint64_t t_drain_end = opt.requests > 0 ? UINT64_MAX / 2 : t_end + (uint64_t)(opt.drain_s * 1e9);
    for (int i = 0; i < nthreads; i++) {
        thread_ctx *t = &threads[i];
        t->t0 = t0;
        t->t_measure = t_measure;
        t->t_end = t_end;
        t->t_drain_end = t_drain_end;
        t->interval_ns = opt.rate > 0 ? 1e9 * nthreads / opt.rate : 0;
        t->to_send = opt.requests > 0 ? opt.requests : 0;
        t->ids_out = ids;
    }
    pthread_t tids[MAX_THREADS];
    for (int i = 0; i < nthreads; i++) pthread_create(&tids[i], NULL, thread_main, &threads[i]);

    machine_sample machine0 = {0}, machine1 = {0};
    double self0 = 0, self1 = 0;
    uint64_t window_start = t_measure, window_end = t_measure;
    if (opt.requests == 0) {
        sleep_until(t_measure);
        window_start = now_ns();
        sample_start(&machine0);
        self0 = self_cpu_ms();
        sleep_until(t_end);
        sample_end(&machine1);
        self1 = self_cpu_ms();
        window_end = now_ns();
    } else {
        sample_start(&machine0);
        self0 = self_cpu_ms();
    }
    for (int i = 0; i < nthreads; i++) pthread_join(tids[i], NULL);
    if (opt.requests > 0) {
        sample_end(&machine1);
        self1 = self_cpu_ms();
        window_end = now_ns();
    }
    if (ids != NULL) fclose(ids);

    /* merge */
    hist *h = xcalloc(1, sizeof *h);
    hist *h_err = xcalloc(1, sizeof *h_err);
    uint64_t status_counts[MAX_STATUS] = {0};
    uint64_t sent = 0, done = 0, ok = 0, e_sock = 0, e_conn = 0, e_to = 0, e_parse = 0, closes = 0;
    size_t q_max = 0;
    for (int i = 0; i < nthreads; i++) {
        thread_ctx *t = &threads[i];
        h_merge(h, &t->h);
        h_merge(h_err, &t->h_err);
        for (int s = 0; s < MAX_STATUS; s++) status_counts[s] += t->status_counts[s];
        sent += t->sent_window;
        done += t->done_window;
        ok += t->ok_window;
        e_sock += t->err_socket;
        e_conn += t->err_connect;
        e_to += t->err_timeout;
        e_parse += t->err_parse;
        closes += t->server_closes;
        if (t->q_max > q_max) q_max = t->q_max;
    }
    double seconds = (double)(window_end - window_start) / 1e9;
    if (opt.requests == 0) seconds = opt.duration_s;
    /* throughput counts 2xx answers only; `done` (every answer) stays in the line */
    double rps = seconds > 0 ? (double)ok / seconds : 0;
    outbuf errs = {0};
    uint64_t nerr = 0;
    errors_text(&errs, status_counts, e_sock, e_conn, e_to, e_parse, &nerr);

    outbuf line = {0};
    out(&line,
        "label=%s mode=%s connections=%d threads=%d rate=%.0f duration_s=%.2f sent=%" PRIu64 " done=%" PRIu64
        " ok=%" PRIu64 " rps=%.1f",
        opt.label ? opt.label : "-",
        opt.requests > 0 ? "count"
        : opt.rate > 0   ? "open"
                         : "closed",
        opt.connections, nthreads, opt.rate, seconds, sent, done, ok, rps);
    out(&line, " p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f mean_ms=%.3f", h_percentile_ms(h, 50),
        h_percentile_ms(h, 90), h_percentile_ms(h, 99), h_percentile_ms(h, 99.9), (double)h->max_us / 1000.0,
        h->n ? h->sum_us / (double)h->n / 1000.0 : 0.0);
    out(&line,
        " errors=%" PRIu64 " error_detail=%s err_p50_ms=%.3f err_p99_ms=%.3f queue_max=%zu server_closes=%" PRIu64,
        nerr, errs.text, h_percentile_ms(h_err, 50), h_percentile_ms(h_err, 99), q_max, closes);
    /* CPU per 2xx answer: error answers' cost is charged to the useful ones */
    double k_requests = (double)ok / 1000.0;
    for (int g = 0; g < opt.ngroups; g++) {
        double ms = group_cpu_ms(&opt.groups[g]);
        out(&line, " cpu_%s_ms=%.0f cpu_%s_ms_per_1k=%.2f hwm_%s_kb=%ld cs_%s_per_req=%.2f", opt.groups[g].name, ms,
            opt.groups[g].name, k_requests > 0 ? ms / k_requests : 0.0, opt.groups[g].name, opt.groups[g].hwm_kb,
            opt.groups[g].name, ok > 0 ? (double)group_switches(&opt.groups[g]) / (double)ok : 0.0);
    }
    double self_ms = self1 - self0;
    out(&line, " cpu_loadgen_ms=%.0f cpu_loadgen_ms_per_1k=%.2f", self_ms, k_requests > 0 ? self_ms / k_requests : 0.0);
    double machine_busy = machine1.total > machine0.total ? 100.0 * (double)(machine1.busy - machine0.busy) /
                                                                (double)(machine1.total - machine0.total)
                                                          : 0.0;
    /* CPU used by everything else on the machine, in cores: other sessions,
     * interrupts, and the time the hypervisor gave our vCPUs to other
     * machines (steal, also reported alone) */
    double ours_ms = self_ms;
    for (int g = 0; g < opt.ngroups; g++) ours_ms += group_cpu_ms(&opt.groups[g]);
    double window_s = (double)(window_end - window_start) / 1e9;
    double ms_per_tick = 1000.0 / (double)sysconf(_SC_CLK_TCK);
    double busy_ms = (double)(machine1.busy - machine0.busy) * ms_per_tick;
    double steal_ms = (double)(machine1.steal - machine0.steal) * ms_per_tick;
    double others = window_s > 0 ? (busy_ms - ours_ms) / 1000.0 / window_s : 0.0;
    double steal = window_s > 0 ? steal_ms / 1000.0 / window_s : 0.0;
    out(&line, " machine_busy_pct=%.0f others_cores=%.2f steal_cores=%.2f", machine_busy, others < 0 ? 0.0 : others,
        steal);
    print_json(line.text);
    fprintf(stderr,
            "loadgen: %s %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms, errors %s "
            "(%" PRIu64 " done, %" PRIu64 " 2xx, machine %.0f%% busy)\n",
            opt.label ? opt.label : "-", opt.rate > 0 ? "open" : "closed", rps, h_percentile_ms(h, 50),
            h_percentile_ms(h, 99), h_percentile_ms(h, 99.9), (double)h->max_us / 1000.0, errs.text, done, ok,
            machine_busy);
    return 0;
}
