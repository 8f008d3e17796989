// A TCP proxy that adds a fixed one-way delay in each direction, so a round trip
// through it costs RTT more than loopback: the network between a Lambda function and
// ElastiCache (or a Pushgateway) that `make bench-senders` puts in front of each sender.
//
//   delay-proxy LISTEN_PORT TARGET_PORT RTT_MICROSECONDS
//
// Prints nothing; exits when killed. One process per connection (fork): the senders
// keep one connection each. Each direction queues what it read with a deadline and
// writes it when the deadline passes, so pipelined requests keep their spacing.
// ppoll's nanosecond time-out with the timer slack set to 1 ns keeps the wake-up close to
// the deadline; the header of make bench-senders prints the round trip it measured.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { CHUNKS = 4096, CHUNK_BYTES = 65536 };

struct chunk { long long due_ns; size_t len, off; char *data; };
struct direction { int from, to; struct chunk q[CHUNKS]; size_t head, tail; int closed; };

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void nodelay(int fd) { int one = 1; setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }

// Reads what is available into a new chunk due one half round trip from now.
static int pull(struct direction *d, long long half_ns) {
    if (d->tail - d->head == CHUNKS) return 0;
    struct chunk *c = &d->q[d->tail % CHUNKS];
    c->data = malloc(CHUNK_BYTES);
    ssize_t n = read(d->from, c->data, CHUNK_BYTES);
    if (n <= 0) { free(c->data); d->closed = 1; return n == 0 || errno != EINTR ? -1 : 0; }
    c->len = (size_t)n; c->off = 0; c->due_ns = now_ns() + half_ns;
    d->tail++;
    return 0;
}

// Writes every chunk whose deadline has passed; returns the next deadline (or -1).
static long long push(struct direction *d) {
    while (d->head != d->tail) {
        struct chunk *c = &d->q[d->head % CHUNKS];
        if (c->due_ns > now_ns()) return c->due_ns;
        ssize_t n = write(d->to, c->data + c->off, c->len - c->off);
        if (n < 0) { if (errno == EINTR) continue; exit(0); }
        c->off += (size_t)n;
        if (c->off < c->len) return now_ns();
        free(c->data);
        d->head++;
    }
    return -1;
}

static void serve(int client, int target_port, long long half_ns) {
    int server = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)target_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(server, (struct sockaddr *)&a, sizeof a) != 0) exit(1);
    nodelay(client); nodelay(server);
    static struct direction up, down;
    up.from = client; up.to = server; down.from = server; down.to = client;
    for (;;) {
        long long next = -1, u = push(&up), w = push(&down);
        if (u >= 0) next = u;
        if (w >= 0 && (next < 0 || w < next)) next = w;
        if ((up.closed && up.head == up.tail) || (down.closed && down.head == down.tail)) exit(0);
        struct pollfd p[2] = {{.fd = up.closed ? -1 : client, .events = POLLIN}, {.fd = down.closed ? -1 : server, .events = POLLIN}};
        struct timespec t, *tp = NULL;
        if (next >= 0) {
            long long wait = next - now_ns();
            if (wait < 0) wait = 0;
            t.tv_sec = wait / 1000000000LL; t.tv_nsec = wait % 1000000000LL; tp = &t;
        }
        if (ppoll(p, 2, tp, NULL) < 0 && errno != EINTR) exit(1);
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) pull(&up, half_ns);
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) pull(&down, half_ns);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: delay-proxy LISTEN_PORT TARGET_PORT RTT_MICROSECONDS\n"); return 2; }
    int listen_port = atoi(argv[1]), target_port = atoi(argv[2]);
    long long half_ns = atoll(argv[3]) * 1000LL / 2;
    prctl(PR_SET_TIMERSLACK, 1UL);
    signal(SIGCHLD, SIG_IGN);  // children reaped by the kernel
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 64) != 0) { perror("delay-proxy"); return 1; }
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0) continue;
        if (fork() == 0) { close(l); serve(c, target_port, half_ns); }
        close(c);
    }
}
