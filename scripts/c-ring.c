/*
 * Plain C TCP ring all-reduce over loopback (f32 sum): the reference that `npm run bench:peers`
 * compares ringswarm (and the plain-Node ring, scripts/raw-tcp-ring.ts) against. Committed as
 * source only; bench-peers builds it at run time with `cc -O2` into dist/.
 *
 *   cc -O2 -o dist/c-ring scripts/c-ring.c
 *   dist/c-ring --ranks 4 --sizes 8,1MiB,64MiB --iters 10 --warmup 3 --json
 *
 * The parent forks N rank processes, all on 127.0.0.1. Before forking it opens one listening
 * socket per rank; rank r connects to rank r+1's listener (its sending link) and accepts one
 * connection on its own (its receiving link, from r-1). Both links are non-blocking, TCP_NODELAY.
 *
 * Algorithm, as in raw-tcp-ring.ts: ring reduce-scatter (N-1 steps) then all-gather (N-1 steps)
 * over N segments (uneven: the first count % N segments get one extra element). Seen from one
 * rank the 2(N-1) steps form one pipeline: what it sends at step t+1 is what it received at step
 * t, so chunk j of step t+1 may go out as soon as chunk j of step t has been received and
 * reduced (--chunk, default 256 KiB; a whole segment that is complete goes out whole). One
 * poll() loop per rank drives both links, so a rank never stops reading while it sends.
 * Reduce-scatter bytes are received into a small staging buffer (--stage, 256 KiB) and added into
 * the rank's buffer (carrying partial elements across reads); all-gather bytes are received in
 * place, straight into the rank's buffer. send() copies into the kernel, so a region may be
 * overwritten once the send that read it has returned.
 *
 * Timing: the parent is the barrier (one pipe each way per rank). Per iteration each rank
 * refills its input (outside the timing), says "ready", waits for "go", times its op from "go"
 * to its last byte received and sent, then checks every element (outside the timing) and
 * reports. Time of an iteration = max over ranks; a row reports the median over timed
 * iterations. Inputs are small integers depending on rank and index (the same as the Node ring's
 * and gloo_allreduce.py's), so any summation order is exact.
 *
 * Output: with --json one JSON object on stdout
 *   {"impl":"c-ring","ranks":N,"chunkBytes":C,"iters":K,"warmup":W,
 *    "rows":[{"bytes","timeUs","algbwGBps","busbwGBps","wrong"}]}
 * (nccl-tests definitions: algbw = bytes / time, busbw = algbw * 2(n-1)/n, GB = 1e9 bytes),
 * else a small table. Exit codes: 0 ok (even with wrong > 0: read `wrong`), 1 error, 2 usage,
 * 124 global timeout (--timeout), 130/143 interrupted. Every rank is killed and reaped on every
 * exit path; a rank also dies with its parent (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RANKS 1024
#define MAX_SIZES 64
#define PERIOD 17

static int n_ranks = 4;
static size_t sizes[MAX_SIZES];
static int n_sizes = 0;
static int iters = 10;
static int warmup = 3;
static int json = 0;
static size_t chunk = 256 * 1024;
static size_t stage_bytes = 256 * 1024;
static int timeout_s = 120;
static int verify = 1;
static int verbose = 0;
static int rates = 0;
static size_t rate_bytes = 64 * 1024 * 1024; /* out of cache, like a step that touches hundreds of MiB */

static pid_t children[MAX_RANKS];
static int n_children = 0;

static void usage(FILE *f) {
  fprintf(f,
          "usage: c-ring [options]\n"
          "  --ranks N        number of ranks (processes), default 4\n"
          "  --sizes LIST     comma-separated byte sizes (K/KiB, M/MiB, G/GiB = powers of 1024), multiples of 4;\n"
          "                   default 8,1048576,67108864\n"
          "  --iters K        timed iterations per size, default 10\n"
          "  --warmup W       untimed iterations per size, default 3\n"
          "  --json           print one JSON object instead of a table\n"
          "  --chunk BYTES    forwarding unit of the pipeline, default 256KiB\n"
          "  --stage BYTES    staging buffer for reduce-scatter reads, default 256KiB\n"
          "  --no-verify      skip checking results (wrong is then 0)\n"
          "  --timeout S      global timeout in seconds, default 120\n"
          "  --verbose        print every iteration's per-rank times to stderr\n"
          "  --rates          instead: measure this machine's copy, add and loopback-TCP costs in CPU ns a byte\n"
          "                   (one core; CPU time, so other load on the machine matters less) and print them as JSON\n"
          "  --rate-bytes B   buffer size for --rates copy and add, default 64MiB\n");
}

static int parse_size(const char *s, size_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s) return -1;
  unsigned long long mult = 1;
  if (*end) {
    char u = (char)(*end | 0x20);
    if (u == 'k') mult = 1024ULL;
    else if (u == 'm') mult = 1024ULL * 1024;
    else if (u == 'g') mult = 1024ULL * 1024 * 1024;
    else if (u != 'b') return -1;
    end++;
    if (u != 'b') {
      if ((*end | 0x20) == 'i') end++;
      if ((*end | 0x20) == 'b') end++;
    }
    if (*end) return -1;
  }
  *out = (size_t)(v * mult);
  return 0;
}

static int parse_int(const char *s, int min, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > 1000000000L) return -1;
  *out = (int)v;
  return 0;
}

static void kill_children(void) {
  for (int i = 0; i < n_children; i++)
    if (children[i] > 0) kill(children[i], SIGKILL);
  for (int i = 0; i < n_children; i++)
    if (children[i] > 0) {
      while (waitpid(children[i], NULL, 0) < 0 && errno == EINTR) {
      }
      children[i] = 0;
    }
}

static void fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void fail(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "c-ring: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  kill_children();
  exit(code);
}

static volatile sig_atomic_t got_signal = 0;
static void on_signal(int sig) { got_signal = sig; }

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* ------------------------------------------------------------------------------------------ */
/* Rank */

static int rank_id;

static void die(const char *what) {
  fprintf(stderr, "c-ring rank %d: %s: %s\n", rank_id, what, strerror(errno));
  _exit(1);
}

static inline int mod(int a, int n) { return ((a % n) + n) % n; }

static float input_value(int rank, size_t i) { return (float)((i * 7 + (size_t)rank * 3) % PERIOD) + rank + 1; }

/* dst[i] += src[i]: 16 floats a turn in 16-byte vectors (GCC/Clang vector extensions; unaligned
 * loads and stores through memcpy), then a scalar tail. -O2 alone does not vectorize the plain loop. */
typedef float v4f __attribute__((vector_size(16)));
static void add_f32(float *restrict dst, const float *restrict src, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    v4f a0, a1, a2, a3, b0, b1, b2, b3;
    memcpy(&a0, dst + i, 16), memcpy(&a1, dst + i + 4, 16), memcpy(&a2, dst + i + 8, 16), memcpy(&a3, dst + i + 12, 16);
    memcpy(&b0, src + i, 16), memcpy(&b1, src + i + 4, 16), memcpy(&b2, src + i + 8, 16), memcpy(&b3, src + i + 12, 16);
    a0 += b0, a1 += b1, a2 += b2, a3 += b3;
    memcpy(dst + i, &a0, 16), memcpy(dst + i + 4, &a1, 16), memcpy(dst + i + 8, &a2, 16), memcpy(dst + i + 12, &a3, 16);
  }
  for (; i < n; i++) dst[i] += src[i];
}

static void write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t k = write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      die("write to parent");
    }
    p += k;
    n -= (size_t)k;
  }
}

static int read_all(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t k = read(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (k == 0) return -1;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

struct result {
  double us;
  int64_t wrong;
};

struct seg {
  size_t off; /* bytes */
  size_t len; /* bytes */
};

/* One all-reduce of `count` floats in `data`. */
static void allreduce(int send_fd, int recv_fd, float *data, size_t count, char *stage) {
  const int N = n_ranks, r = rank_id, T = 2 * (N - 1);
  if (T == 0) return;
  struct seg segs[MAX_RANKS];
  size_t base = count / N, extra = count % N;
  for (int k = 0; k < N; k++) {
    size_t off = k * base + ((size_t)k < extra ? (size_t)k : extra);
    segs[k].off = off * 4;
    segs[k].len = (base + ((size_t)k < extra ? 1 : 0)) * 4;
  }
  char *bytes = (char *)data;
#define RECV_SEG(s) ((s) < N - 1 ? mod(r - (s) - 1, N) : mod(r - ((s) - (N - 1)), N))
#define SEND_SEG(s) ((s) < N - 1 ? mod(r - (s), N) : mod(r + 1 - ((s) - (N - 1)), N))
  /* Bytes of send step st's segment that may go out: step 0 sends the rank's own segment, all
   * there; step s > 0 forwards what step s-1 received, in whole chunks or the whole segment. */
#define AVAIL(sg) \
  (st == 0 || rt > st - 1 ? (sg)->len : rt < st - 1 ? 0 : rpos == (sg)->len ? (sg)->len : rpos / chunk * chunk)
  int rt = 0;         /* receive step */
  size_t rpos = 0;    /* bytes of step rt's segment received and reduced/placed */
  size_t carry = 0;   /* bytes of a partial element at the start of the stage */
  int st = 0;         /* send step */
  size_t spos = 0;    /* bytes of step st's segment sent */
  while (rt < T && segs[RECV_SEG(rt)].len == 0) rt++;
  while (st < T && segs[SEND_SEG(st)].len == 0) st++;
  while (rt < T || st < T) {
    int progress = 0;
    /* Send what is available. */
    while (st < T) {
      const struct seg *sg = &segs[SEND_SEG(st)];
      size_t avail = AVAIL(sg);
      if (avail <= spos) break;
      ssize_t k = send(send_fd, bytes + sg->off + spos, avail - spos, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (k < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        die("send");
      }
      progress = 1;
      spos += (size_t)k;
      if (spos == sg->len) {
        st++;
        spos = 0;
        while (st < T && segs[SEND_SEG(st)].len == 0) st++;
      }
    }
    /* Receive what has arrived, never past the current step's segment. */
    while (rt < T) {
      const struct seg *sg = &segs[RECV_SEG(rt)];
      size_t left = sg->len - rpos;
      ssize_t k;
      if (rt < N - 1) {
        size_t want = left - carry < stage_bytes - carry ? left - carry : stage_bytes - carry;
        k = recv(recv_fd, stage + carry, want, MSG_DONTWAIT);
        if (k > 0) {
          size_t have = carry + (size_t)k;
          size_t whole = have & ~(size_t)3;
          add_f32((float *)(bytes + sg->off + rpos), (const float *)stage, whole / 4);
          rpos += whole;
          carry = have - whole;
          if (carry) memmove(stage, stage + whole, carry);
        }
      } else {
        k = recv(recv_fd, bytes + sg->off + rpos, left, MSG_DONTWAIT);
        if (k > 0) rpos += (size_t)k;
      }
      if (k == 0) {
        errno = ECONNRESET;
        die("receiving link closed");
      }
      if (k < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        die("recv");
      }
      progress = 1;
      if (rpos == sg->len) {
        rt++;
        rpos = 0;
        while (rt < T && segs[RECV_SEG(rt)].len == 0) rt++;
        break; /* the next send step may have become available */
      }
      /* A forwardable chunk completed: go and send it before reading more. */
      if (st == rt + 1 && rpos / chunk * chunk > spos) break;
    }
    if (progress) continue;
    struct pollfd p[2];
    int np = 0;
    if (rt < T) p[np++] = (struct pollfd){.fd = recv_fd, .events = POLLIN};
    if (st < T) p[np++] = (struct pollfd){.fd = send_fd, .events = POLLOUT};
    /* Poll POLLOUT only when something is available to send, else it spins. */
    if (st < T && AVAIL(&segs[SEND_SEG(st)]) <= spos) np--;
    if (np == 0) continue;
    if (poll(p, (nfds_t)np, -1) < 0 && errno != EINTR) die("poll");
  }
#undef RECV_SEG
#undef SEND_SEG
#undef AVAIL
}

static void set_fd_opts(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) die("TCP_NODELAY");
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) die("O_NONBLOCK");
}

static void rank_main(int r, int *listeners, const int *ports, int to_parent, int from_parent) {
  rank_id = r;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGINT, SIG_IGN); /* Ctrl-C reaches the group: the parent cleans up and kills us */
  signal(SIGPIPE, SIG_IGN);
  int N = n_ranks;
  int my_listener = listeners[r];
  for (int i = 0; i < N; i++)
    if (i != r) close(listeners[i]);

  /* Sending link: connect to the successor's listener (its backlog accepts before it calls accept). */
  int send_fd = -1, recv_fd = -1;
  if (N > 1) {
    send_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (send_fd < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ports[(r + 1) % N])};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    while (connect(send_fd, (struct sockaddr *)&a, sizeof a) < 0) {
      if (errno != EINTR) die("connect");
    }
    recv_fd = accept(my_listener, NULL, NULL);
    if (recv_fd < 0) die("accept");
    set_fd_opts(send_fd);
    set_fd_opts(recv_fd);
  }
  close(my_listener);

  size_t max_bytes = 4;
  for (int i = 0; i < n_sizes; i++)
    if (sizes[i] > max_bytes) max_bytes = sizes[i];
  float *data = aligned_alloc(64, (max_bytes + 63) / 64 * 64);
  char *stage = aligned_alloc(64, (stage_bytes + 63) / 64 * 64);
  if (!data || !stage) die("alloc");
  float tmpl[PERIOD], expect[PERIOD];
  for (int j = 0; j < PERIOD; j++) {
    tmpl[j] = input_value(r, (size_t)j);
    float s = 0;
    for (int q = 0; q < N; q++) s += input_value(q, (size_t)j);
    expect[j] = s;
  }

  for (int si = 0; si < n_sizes; si++) {
    size_t count = sizes[si] / 4;
    for (int it = 0; it < warmup + iters; it++) {
      /* refill (outside the timing) */
      for (size_t i = 0, j = 0; i < count; i++) {
        data[i] = tmpl[j];
        if (++j == PERIOD) j = 0;
      }
      char c = 'R';
      write_all(to_parent, &c, 1);
      if (read_all(from_parent, &c, 1) < 0) _exit(1);
      double t0 = now_us();
      allreduce(send_fd, recv_fd, data, count, stage);
      double t1 = now_us();
      struct result res = {.us = t1 - t0, .wrong = 0};
      if (verify) {
        int64_t wrong = 0;
        for (size_t i = 0, j = 0; i < count; i++) {
          wrong += data[i] != expect[j];
          if (++j == PERIOD) j = 0;
        }
        res.wrong = wrong;
      }
      write_all(to_parent, &res, sizeof res);
    }
  }
  /* Drain: wait for the parent's goodbye (EOF), so no link closes while a peer still reads. */
  char c;
  (void)read_all(from_parent, &c, 1);
  _exit(0);
}

/* ------------------------------------------------------------------------------------------ */
/* Parent */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void check_signal(void) {
  if (got_signal == SIGALRM) fail(124, "global timeout of %d s reached; killed all ranks", timeout_s);
  if (got_signal) fail(128 + got_signal, "interrupted (signal %d)", (int)got_signal);
}

static void parent_read(int fd, void *buf, size_t n, int r) {
  char *p = buf;
  while (n > 0) {
    ssize_t k = read(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) {
        check_signal();
        continue;
      }
      fail(1, "rank %d: read: %s", r, strerror(errno));
    }
    if (k == 0) {
      int status = 0;
      pid_t w = waitpid(children[r], &status, WNOHANG);
      if (w > 0) {
        children[r] = 0;
        if (WIFSIGNALED(status)) fail(1, "rank %d died (signal %d)", r, WTERMSIG(status));
        fail(1, "rank %d exited unexpectedly (code %d)", r, WEXITSTATUS(status));
      }
      fail(1, "rank %d closed its pipe unexpectedly", r);
    }
    p += k;
    n -= (size_t)k;
  }
}

static void parent_write(int fd, char c, int r) {
  while (write(fd, &c, 1) != 1) {
    if (errno == EINTR) {
      check_signal();
      continue;
    }
    fail(1, "rank %d: write: %s", r, strerror(errno));
  }
}


/* ------------------------------------------------------------------------------------------ */
/* --rates: the floor's unit costs, in CPU time (user + system) so that time-sharing with other
 * processes on the machine does not inflate them. Best of a few rounds: a floor is a lower bound. */

static double cpu_us_self(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static double tv_us(struct timeval tv) { return tv.tv_sec * 1e6 + tv.tv_usec; }

/* CPU ns a byte of a kernel over buffers of rate_bytes: rounds of >= 50 ms of CPU, best of 5. */
static double rate_of(int kind, char *a, char *b) {
  double best = 1e30;
  for (int round = 0; round < 5; round++) {
    size_t done = 0;
    double t0 = cpu_us_self(), t1;
    do {
      if (kind == 0) memcpy(a, b, rate_bytes);
      else add_f32((float *)a, (const float *)b, rate_bytes / 4);
      done += rate_bytes;
      t1 = cpu_us_self();
    } while (t1 - t0 < 50000);
    double ns = (t1 - t0) * 1e3 / (double)done;
    if (ns < best) best = ns;
  }
  return best;
}

/* CPU ns a byte moved over one loopback TCP connection, both ends (sender and receiver) counted. */
static double loopback_rate(void) {
  const size_t total = 256u << 20, piece = 256u << 10;
  double best = 1e30;
  for (int round = 0; round < 3; round++) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0 || getsockname(l, (struct sockaddr *)&a, &len) < 0)
      fail(1, "rates: listen: %s", strerror(errno));
    struct rusage before_children;
    getrusage(RUSAGE_CHILDREN, &before_children);
    pid_t pid = fork();
    if (pid < 0) fail(1, "rates: fork: %s", strerror(errno));
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      close(l);
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) _exit(1);
      char *buf = malloc(piece);
      if (!buf) _exit(1);
      memset(buf, 1, piece);
      for (size_t sent = 0; sent < total;) {
        ssize_t k = send(fd, buf, total - sent < piece ? total - sent : piece, MSG_NOSIGNAL);
        if (k < 0) {
          if (errno == EINTR) continue;
          _exit(1);
        }
        sent += (size_t)k;
      }
      close(fd);
      _exit(0);
    }
    children[n_children++] = pid;
    int fd = accept(l, NULL, NULL);
    close(l);
    if (fd < 0) fail(1, "rates: accept: %s", strerror(errno));
    char *buf = malloc(piece);
    if (!buf) fail(1, "rates: out of memory");
    double t0 = cpu_us_self();
    size_t got = 0;
    for (;;) {
      ssize_t k = recv(fd, buf, piece, 0);
      if (k < 0) {
        if (errno == EINTR) {
          check_signal();
          continue;
        }
        fail(1, "rates: recv: %s", strerror(errno));
      }
      if (k == 0) break;
      got += (size_t)k;
    }
    double t1 = cpu_us_self();
    close(fd);
    free(buf);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) check_signal();
    children[--n_children] = 0;
    if (got != total || !WIFEXITED(status) || WEXITSTATUS(status) != 0) fail(1, "rates: the sender failed (%zu of %zu bytes)", got, total);
    struct rusage after_children;
    getrusage(RUSAGE_CHILDREN, &after_children);
    double child_us = tv_us(after_children.ru_utime) + tv_us(after_children.ru_stime) - tv_us(before_children.ru_utime) -
                      tv_us(before_children.ru_stime);
    double ns = ((t1 - t0) + child_us) * 1e3 / (double)total;
    if (ns < best) best = ns;
  }
  return best;
}

static int rates_main(void) {
  char *a = aligned_alloc(64, rate_bytes), *b = aligned_alloc(64, rate_bytes);
  if (!a || !b) fail(1, "rates: out of memory");
  for (size_t i = 0; i < rate_bytes / 4; i++) ((float *)a)[i] = (float)(i % 17), ((float *)b)[i] = 1.0f;
  double copy = rate_of(0, a, b);
  double add = rate_of(1, a, b);
  double loop = loopback_rate();
  printf("{\"impl\":\"c-ring-rates\",\"bufferBytes\":%zu,\"copyNsPerByte\":%.5f,\"addNsPerByte\":%.5f,\"loopbackNsPerByte\":%.5f,"
         "\"copyGBps\":%.3f,\"addGBps\":%.3f,\"loopbackGBps\":%.3f,\"definitions\":\"CPU time (user+system) a byte, one core, best of "
         "rounds; copy = memcpy, add = f32 dst += src (per byte of dst), loopback = sender + receiver CPU a byte over 127.0.0.1 TCP\"}\n",
         rate_bytes, copy, add, loop, 1 / copy, 1 / add, 1 / loop);
  return 0;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int bad = 0;
    if (!strcmp(a, "--ranks")) bad = !v || parse_int(v, 1, &n_ranks), i++;
    else if (!strcmp(a, "--iters")) bad = !v || parse_int(v, 1, &iters), i++;
    else if (!strcmp(a, "--warmup")) bad = !v || parse_int(v, 0, &warmup), i++;
    else if (!strcmp(a, "--timeout")) bad = !v || parse_int(v, 1, &timeout_s), i++;
    else if (!strcmp(a, "--chunk")) bad = !v || parse_size(v, &chunk) || chunk < 4, i++;
    else if (!strcmp(a, "--stage")) bad = !v || parse_size(v, &stage_bytes) || stage_bytes < 8, i++;
    else if (!strcmp(a, "--json")) json = 1;
    else if (!strcmp(a, "--no-verify")) verify = 0;
    else if (!strcmp(a, "--rates")) rates = 1;
    else if (!strcmp(a, "--rate-bytes")) bad = !v || parse_size(v, &rate_bytes) || rate_bytes < 4096 || rate_bytes % 64, i++;
    else if (!strcmp(a, "--verbose")) verbose = 1;
    else if (!strcmp(a, "--sizes")) {
      if (!v) bad = 1;
      else {
        char *copy = strdup(v), *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok && !bad; tok = strtok_r(NULL, ",", &save)) {
          if (n_sizes == MAX_SIZES || parse_size(tok, &sizes[n_sizes]) || sizes[n_sizes] % 4) bad = 1;
          else n_sizes++;
        }
        free(copy);
      }
      i++;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "c-ring: unknown argument '%s'\n", a);
      usage(stderr);
      return 2;
    }
    if (bad) {
      fprintf(stderr, "c-ring: bad value for %s\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (rates) {
    struct sigaction sr = {.sa_handler = on_signal};
    sigemptyset(&sr.sa_mask);
    sigaction(SIGINT, &sr, NULL);
    sigaction(SIGTERM, &sr, NULL);
    sigaction(SIGALRM, &sr, NULL);
    signal(SIGPIPE, SIG_IGN);
    alarm((unsigned)timeout_s);
    return rates_main();
  }
  if (n_sizes == 0) {
    sizes[0] = 8;
    sizes[1] = 1048576;
    sizes[2] = 67108864;
    n_sizes = 3;
  }
  if (n_ranks > MAX_RANKS) {
    fprintf(stderr, "c-ring: at most %d ranks\n", MAX_RANKS);
    return 2;
  }
  int N = n_ranks;

  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  sigaction(SIGALRM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  alarm((unsigned)timeout_s);

  static int listeners[MAX_RANKS], ports[MAX_RANKS];
  for (int r = 0; r < N; r++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) fail(1, "socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
      fail(1, "listen: %s", strerror(errno));
    listeners[r] = fd;
    ports[r] = ntohs(a.sin_port);
  }

  static int to_child[MAX_RANKS], from_child[MAX_RANKS];
  fflush(stdout);
  for (int r = 0; r < N; r++) {
    int down[2], up[2];
    if (pipe(down) < 0 || pipe(up) < 0) fail(1, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) fail(1, "fork: %s", strerror(errno));
    if (pid == 0) {
      close(down[1]);
      close(up[0]);
      for (int q = 0; q < r; q++) {
        close(to_child[q]);
        close(from_child[q]);
      }
      rank_main(r, listeners, ports, up[1], down[0]);
    }
    children[n_children++] = pid;
    close(down[0]);
    close(up[1]);
    to_child[r] = down[1];
    from_child[r] = up[0];
  }
  for (int r = 0; r < N; r++) close(listeners[r]);

  double *times = malloc(sizeof(double) * (size_t)iters);
  double *row_us = malloc(sizeof(double) * (size_t)n_sizes);
  int64_t *row_wrong = calloc((size_t)n_sizes, sizeof(int64_t));
  double *per_rank = malloc(sizeof(double) * (size_t)N);
  if (!times || !row_us || !row_wrong || !per_rank) fail(1, "out of memory");
  for (int si = 0; si < n_sizes; si++) {
    for (int it = 0; it < warmup + iters; it++) {
      char c;
      for (int r = 0; r < N; r++) parent_read(from_child[r], &c, 1, r);
      for (int r = 0; r < N; r++) parent_write(to_child[r], 'G', r);
      double mx = 0;
      for (int r = 0; r < N; r++) {
        struct result res;
        parent_read(from_child[r], &res, sizeof res, r);
        per_rank[r] = res.us;
        if (res.us > mx) mx = res.us;
        row_wrong[si] += res.wrong;
      }
      if (it >= warmup) times[it - warmup] = mx;
      if (verbose) {
        fprintf(stderr, "  %zu B %s %d: max %.1f us [", sizes[si], it < warmup ? "warmup" : "iter", it, mx);
        for (int r = 0; r < N; r++) fprintf(stderr, "%s%.0f", r ? " " : "", per_rank[r]);
        fprintf(stderr, "]\n");
      }
      check_signal();
    }
    qsort(times, (size_t)iters, sizeof(double), cmp_double);
    row_us[si] = iters % 2 ? times[iters / 2] : (times[iters / 2 - 1] + times[iters / 2]) / 2;
  }
  /* Goodbye: close the pipes; every rank sees EOF and exits. */
  for (int r = 0; r < N; r++) close(to_child[r]);
  for (int r = 0; r < N; r++) {
    int status = 0;
    while (waitpid(children[r], &status, 0) < 0) {
      if (errno == EINTR) {
        check_signal();
        continue;
      }
      break;
    }
    children[r] = 0;
  }
  alarm(0);

  if (json) {
    printf("{\"impl\":\"c-ring\",\"ranks\":%d,\"chunkBytes\":%zu,\"stageBytes\":%zu,\"iters\":%d,\"warmup\":%d,\"rows\":[", N, chunk,
           stage_bytes, iters, warmup);
  } else {
    printf("C TCP ring all-reduce, f32 sum, %d ranks, chunk %zu B, median of %d\n", N, chunk, iters);
    printf("%12s %12s %11s %11s %7s\n", "bytes", "time us", "algbw GB/s", "busbw GB/s", "wrong");
  }
  for (int si = 0; si < n_sizes; si++) {
    double us = row_us[si];
    double algbw = us > 0 ? sizes[si] / us / 1e3 : 0;
    double busbw = N > 1 ? algbw * 2 * (N - 1) / N : 0;
    if (json)
      printf("%s{\"bytes\":%zu,\"timeUs\":%.3f,\"algbwGBps\":%.6f,\"busbwGBps\":%.6f,\"wrong\":%lld}", si ? "," : "", sizes[si], us,
             algbw, busbw, (long long)row_wrong[si]);
    else
      printf("%12zu %12.1f %11.3f %11.3f %7lld\n", sizes[si], us, algbw, busbw, (long long)row_wrong[si]);
  }
  if (json) printf("]}\n");
  return 0;
}
