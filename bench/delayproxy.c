/* delayproxy — network latency between two processes of one machine: a TCP
 * proxy on loopback that holds every byte it forwards for a fixed delay, in
 * each direction, as a link of that one-way latency would (no bandwidth
 * limit, no jitter, no loss). Used by ./dev bench --only scaling-latency to
 * put the database 2 ms away from the workers.
 *
 * usage: delayproxy UPSTREAM_PORT DELAY_US
 * Listens on a free port of 127.0.0.1, prints it on stdout (one line), then
 * forwards each connection to 127.0.0.1:UPSTREAM_PORT. One thread, epoll and
 * one timerfd: a chunk read at t is written at t + DELAY_US, in order. Runs
 * until killed. Built by bench/run.sh with cc, no dependencies.
 *
 * SIGUSR1 prints "round_trips=N" on stdout: how many times a client spoke
 * after its server had (a request/response protocol: one per round trip),
 * so the bench can tell how many round trips the workers made. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_MAX 65536
#define MAX_EVENTS 64

typedef struct chunk {
    struct chunk *next;
    int64_t due_us;
    size_t len, off;
    char data[];
} chunk;

/* One direction of a connection: bytes read from `from`, written to `to`. */
typedef struct {
    int from, to;
    chunk *head, *tail;
    bool is_eof;    /* `from` has no more to send */
    bool is_shut;   /* `to` was told so (shutdown SHUT_WR) */
    bool wants_out; /* `to` was full: wait for EPOLLOUT */
} flow;

typedef struct conn {
    struct conn *next;
    int fd[2];   /* 0: client, 1: upstream */
    flow way[2]; /* 0: client -> upstream, 1: upstream -> client */
    bool is_dead;
    int last_side; /* which end sent last: a client that speaks after the server starts a round trip */
} conn;

static int g_epoll, g_timer;
static int64_t g_delay_us;
static conn *g_conns;
static uint64_t g_round_trips;
static volatile sig_atomic_t g_wants_stats;

static void on_usr1(int sig) {
    (void)sig;
    g_wants_stats = 1;
}

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void watch(conn *c, int side, bool is_add) {
    flow *out = &c->way[1 - side]; /* what is written to this end */
    struct epoll_event ev = {.events = (c->way[side].is_eof ? 0 : EPOLLIN) | (out->wants_out ? EPOLLOUT : 0)};
    ev.data.u64 = (uint64_t)(uintptr_t)c | (uint64_t)side; /* side in the low bit: conn is aligned */
    if (epoll_ctl(g_epoll, is_add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd[side], &ev) != 0) c->is_dead = true;
}

static void conn_kill(conn *c) {
    if (c->fd[0] < 0) return;
    for (int side = 0; side < 2; side++) {
        close(c->fd[side]);
        c->fd[side] = -1;
        for (chunk *k = c->way[side].head, *next; k != NULL; k = next) {
            next = k->next;
            free(k);
        }
        c->way[side].head = c->way[side].tail = NULL;
    }
    c->is_dead = true;
}

/* Writes the chunks that are due. */
static void flush(conn *c, int w, int64_t now) {
    flow *f = &c->way[w];
    while (f->head != NULL && f->head->due_us <= now) {
        chunk *k = f->head;
        ssize_t n = send(f->to, k->data + k->off, k->len - k->off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!f->wants_out) {
                f->wants_out = true;
                watch(c, w == 0 ? 1 : 0, false);
            }
            return;
        }
        if (n < 0) {
            conn_kill(c);
            return;
        }
        k->off += (size_t)n;
        if (k->off < k->len) continue;
        f->head = k->next;
        if (f->head == NULL) f->tail = NULL;
        free(k);
    }
    if (f->wants_out && (f->head == NULL || f->head->due_us > now)) {
        f->wants_out = false;
        watch(c, w == 0 ? 1 : 0, false);
    }
    if (f->head == NULL && f->is_eof && !f->is_shut) {
        shutdown(f->to, SHUT_WR);
        f->is_shut = true;
        if (c->way[1 - w].is_shut) conn_kill(c);
    }
}

/* Reads what `side` sent and queues it for the other end. */
static void take_in(conn *c, int side) {
    flow *f = &c->way[side];
    for (;;) {
        chunk *k = malloc(sizeof *k + CHUNK_MAX);
        if (k == NULL) die("malloc");
        ssize_t n = recv(f->from, k->data, CHUNK_MAX, 0);
        if (n <= 0) {
            free(k);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            if (n < 0) {
                conn_kill(c);
                return;
            }
            f->is_eof = true;
            watch(c, side, false);
            flush(c, side, now_us()); /* shuts down at once if nothing is queued */
            return;
        }
        if (side == 0 && c->last_side != 0) g_round_trips++;
        c->last_side = side;
        *k = (chunk){NULL, now_us() + g_delay_us, (size_t)n, 0};
        if (n < CHUNK_MAX) k = realloc(k, sizeof *k + (size_t)n); /* shrinking: never fails in practice */
        if (f->tail != NULL) f->tail->next = k;
        else f->head = k;
        f->tail = k;
        if (n < CHUNK_MAX) return;
    }
}

static int listen_on_free_port(uint16_t *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 512) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        die("listen");
    *port = ntohs(a.sin_port);
    return fd;
}

static void accept_one(int listener, uint16_t upstream) {
    int client = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
    if (client < 0) return;
    int up = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(upstream),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* Loopback: a blocking connect returns at once (the handshake is not delayed). */
    if (up < 0 || connect(up, (struct sockaddr *)&a, sizeof a) != 0) {
        close(client);
        if (up >= 0) close(up);
        return;
    }
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fcntl(up, F_SETFL, O_NONBLOCK) != 0) die("fcntl");
    conn *c = malloc(sizeof *c); /* 8-aligned at least: the low bit is free for the side */
    if (c == NULL) die("malloc");
    *c = (conn){.next = g_conns, .fd = {client, up}, .last_side = 1};
    c->way[0] = (flow){.from = client, .to = up};
    c->way[1] = (flow){.from = up, .to = client};
    g_conns = c;
    watch(c, 0, true);
    watch(c, 1, true);
}

/* Arms the timer for the earliest due chunk (or disarms it). */
static void arm_timer(void) {
    int64_t first = INT64_MAX;
    for (conn *c = g_conns; c != NULL; c = c->next)
        for (int w = 0; w < 2; w++)
            if (c->way[w].head != NULL && !c->way[w].wants_out && c->way[w].head->due_us < first)
                first = c->way[w].head->due_us;
    struct itimerspec t = {0};
    if (first != INT64_MAX) {
        if (first < 1) first = 1;
        t.it_value.tv_sec = first / 1000000;
        t.it_value.tv_nsec = (first % 1000000) * 1000;
    }
    if (timerfd_settime(g_timer, TFD_TIMER_ABSTIME, &t, NULL) != 0) die("timerfd_settime");
}

static void reap(void) {
    for (conn **p = &g_conns; *p != NULL;) {
        conn *c = *p;
        if (c->is_dead) {
            conn_kill(c);
            *p = c->next;
            free(c);
        } else {
            p = &c->next;
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: delayproxy UPSTREAM_PORT DELAY_US\n");
        return 2;
    }
    uint16_t upstream = (uint16_t)atoi(argv[1]), port;
    g_delay_us = atoll(argv[2]);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR1, on_usr1);
    prctl(PR_SET_TIMERSLACK, 1UL); /* wake at the due time, not up to 50 us later */
    int listener = listen_on_free_port(&port);
    g_epoll = epoll_create1(0);
    g_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (g_epoll < 0 || g_timer < 0) die("epoll/timerfd");
    /* Tags 2 and 4: not a conn pointer (those are 8-aligned with side 0 or 1). */
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 2};
    if (epoll_ctl(g_epoll, EPOLL_CTL_ADD, listener, &ev) != 0) die("epoll_ctl");
    ev.data.u64 = 4;
    if (epoll_ctl(g_epoll, EPOLL_CTL_ADD, g_timer, &ev) != 0) die("epoll_ctl");
    printf("%u\n", (unsigned)port);
    fflush(stdout);
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(g_epoll, events, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        if (g_wants_stats) {
            g_wants_stats = 0;
            printf("round_trips=%llu\n", (unsigned long long)g_round_trips);
            fflush(stdout);
        }
        for (int i = 0; i < n; i++) {
            uint64_t tag = events[i].data.u64;
            if (tag == 2) {
                accept_one(listener, upstream);
            } else if (tag == 4) {
                uint64_t expirations;
                if (read(g_timer, &expirations, sizeof expirations) < 0 && errno != EAGAIN) die("timerfd read");
            } else {
                conn *c = (conn *)(uintptr_t)(tag & ~(uint64_t)1);
                int side = (int)(tag & 1);
                if (c->is_dead) continue;
                if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) take_in(c, side);
                if (!c->is_dead && (events[i].events & EPOLLOUT)) flush(c, side == 0 ? 1 : 0, now_us());
            }
        }
        int64_t now = now_us();
        for (conn *c = g_conns; c != NULL; c = c->next)
            for (int w = 0; w < 2 && !c->is_dead; w++) flush(c, w, now);
        reap();
        arm_timer();
    }
}
