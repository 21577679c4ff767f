/* bench/raw_baseline.c - a feasibility probe for bench/client's concurrent
 * target, not a transport: the least a client can do per call, without libcurl.
 *   raw_baseline PORT N C [decode]
 * N GET requests for the Job over C keep-alive connections to 127.0.0.1:PORT,
 * one epoll loop, a fixed request text, responses framed by Content-Length
 * only (what the bench's nginx sends).  With "decode", every body is also
 * decoded and validated into a typed Job by the C core, then freed.
 * Prints "<requests per second>".
 *
 * It answers "is >= 0.6 of wrk -t1 -c32 reachable at all on this machine?":
 * without decode it should match wrk; with decode it is the ceiling for any
 * client that returns typed objects, before libcurl, Lua objects, timeouts,
 * retries or chunked bodies add anything. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include "intuned.h"

typedef struct conn {
    int fd;
    size_t len;
    char buf[65536];
} conn;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int send_all(int fd, const char *p, size_t n)
{
    /* a request this small always fits an empty socket buffer; anything else is a failure */
    return write(fd, p, n) == (ssize_t)n ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage: %s PORT N C [decode]\n", argv[0]); return 2; }
    int port = atoi(argv[1]), c = atoi(argv[3]), decode = argc > 4 && strcmp(argv[4], "decode") == 0;
    long n = atol(argv[2]), started = 0, done = 0;
    if (port <= 0 || n <= 0 || c <= 0) { fprintf(stderr, "bad arguments\n"); return 2; }
    static const char req[] =
        "GET /api/v1/workspace/ws/projects/p/jobs/j HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "x-api-key: bench-key\r\nAccept: application/json\r\nUser-Agent: lua-intuned/0.1.0\r\n\r\n";
    int ep = epoll_create1(0);
    conn *cs = calloc((size_t)c, sizeof *cs);
    if (ep < 0 || !cs) { perror("setup"); return 1; }
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < c; i++) {
        int one = 1;
        cs[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (cs[i].fd < 0 || connect(cs[i].fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 1; }
        setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(cs[i].fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &cs[i] };
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    double t0 = now();
    for (int i = 0; i < c && started < n; i++, started++)
        if (send_all(cs[i].fd, req, sizeof req - 1)) { perror("write"); return 1; }
    struct epoll_event evs[64];
    while (done < n) {
        int k = epoll_wait(ep, evs, 64, 5000);
        if (k <= 0) { fprintf(stderr, "stalled\n"); return 1; }
        for (int i = 0; i < k; i++) {
            conn *x = evs[i].data.ptr;
            ssize_t r = read(x->fd, x->buf + x->len, sizeof x->buf - 1 - x->len);
            if (r < 0 && errno == EAGAIN) continue;
            if (r <= 0) { fprintf(stderr, "connection lost\n"); return 1; }
            x->len += (size_t)r;
            x->buf[x->len] = 0;
            for (;;) { /* every complete response in the buffer */
                char *end = strstr(x->buf, "\r\n\r\n");
                if (!end) break;
                char *cl = strcasestr(x->buf, "\r\ncontent-length:");
                if (!cl || cl > end) { fprintf(stderr, "no Content-Length\n"); return 1; }
                size_t body = (size_t)atol(cl + 17), head = (size_t)(end + 4 - x->buf);
                if (head + body >= sizeof x->buf) { fprintf(stderr, "response too big\n"); return 1; }
                if (x->len < head + body) break;
                if (strncmp(x->buf, "HTTP/1.1 200", 12) != 0) { fprintf(stderr, "status is not 200\n"); return 1; }
                if (decode) {
                    itd_error e;
                    memset(&e, 0, sizeof e);
                    /* the decode the client makes of an answer */
                    void *job = itd_decode_frozen(&itd_Job, x->buf + head, body, NULL, &e);
                    if (!job) { fprintf(stderr, "decode: %s: %s\n", e.path, e.message); return 1; }
                    itd_free(&itd_Job, job);
                }
                memmove(x->buf, x->buf + head + body, x->len - head - body + 1);
                x->len -= head + body;
                done++;
                if (started < n) {
                    if (send_all(x->fd, req, sizeof req - 1)) { perror("write"); return 1; }
                    started++;
                }
            }
        }
    }
    printf("%.1f\n", (double)n / (now() - t0));
    for (int i = 0; i < c; i++) close(cs[i].fd);
    free(cs);
    close(ep);
    return 0;
}
