// ringswarm's native kernels, an optional Node-API addon built by scripts/build-native.ts with the
// machine's C compiler. First CRC32C (the data frames' checksum) with the SSE4.2 crc32
// instruction over three interleaved streams, which keeps the instruction's 3-cycle latency
// hidden: about 4x @node-rs/crc32 on one core. Without SSE4.2 the addon still loads and says
// `hardware: false`; the caller then keeps @node-rs/crc32.
//
// And what lets a worker's card states live in its shared checkpoint slots (so a checkpoint is a
// header written, not the states copied): map/unmap, a MAP_SHARED mapping of a slot file as an
// ArrayBuffer, and axpy, the emulated update out of place over any memory (the arena's SIMD
// kernels reach only their own).
//
// The three streams are joined by the CRC's linearity: for the raw register (no pre- or
// post-inversion), crc(s, A || B) = shift(crc(s, A), |B|) xor crc(0, B), where shift multiplies by
// x^(8|B|) modulo the polynomial; for a fixed |B| that is four table lookups.

#include <errno.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define POLY 0x82f63b78u /* CRC32C (Castagnoli), reflected */
#define LONG_BLOCK 8192
#define SHORT_BLOCK 256

static uint32_t byte_table[256];
static uint32_t long_shift[4][256];
static uint32_t short_shift[4][256];
static int hardware;

/* a(x) * b(x) mod p(x), reflected: bit 31 is x^0. */
static uint32_t multmodp(uint32_t a, uint32_t b) {
  uint32_t m = 1u << 31, p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = b & 1 ? (b >> 1) ^ POLY : b >> 1;
  }
  return p;
}

/* x^(8n) mod p(x). */
static uint32_t x8nmodp(size_t n) {
  uint32_t x2n = 1u << 30; /* x^1 */
  uint32_t p = 1u << 31;   /* x^0 */
  for (int k = 0; k < 3; k++) x2n = multmodp(x2n, x2n); /* x^8 */
  while (n) {
    if (n & 1) p = multmodp(x2n, p);
    x2n = multmodp(x2n, x2n);
    n >>= 1;
  }
  return p;
}

static void shift_table(uint32_t t[4][256], size_t bytes) {
  uint32_t op = x8nmodp(bytes);
  for (int k = 0; k < 4; k++)
    for (uint32_t v = 0; v < 256; v++) t[k][v] = multmodp(op, v << (8 * k));
}

static inline uint32_t shift(uint32_t t[4][256], uint32_t crc) {
  return t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^ t[2][(crc >> 16) & 0xff] ^ t[3][crc >> 24];
}

static uint32_t crc_soft(uint32_t crc, const uint8_t *p, size_t n) {
  while (n--) crc = (crc >> 8) ^ byte_table[(crc ^ *p++) & 0xff];
  return crc;
}

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static inline uint64_t load64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* `blocks` rounds of three interleaved streams of `len` bytes each. */
__attribute__((target("sse4.2"))) static uint32_t crc_hw_blocks(uint32_t crc, const uint8_t **pp, size_t *np, size_t len,
                                                                 uint32_t t[4][256]) {
  const uint8_t *p = *pp;
  size_t n = *np;
  while (n >= 3 * len) {
    uint64_t c0 = crc, c1 = 0, c2 = 0;
    const uint8_t *end = p + len;
    do {
      c0 = _mm_crc32_u64(c0, load64(p));
      c1 = _mm_crc32_u64(c1, load64(p + len));
      c2 = _mm_crc32_u64(c2, load64(p + 2 * len));
      p += 8;
    } while (p < end);
    crc = shift(t, (uint32_t)c0) ^ (uint32_t)c1;
    crc = shift(t, crc) ^ (uint32_t)c2;
    p += 2 * len;
    n -= 3 * len;
  }
  *pp = p;
  *np = n;
  return crc;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n) {
  while (n && ((uintptr_t)p & 7)) {
    crc = _mm_crc32_u8(crc, *p++);
    n--;
  }
  crc = crc_hw_blocks(crc, &p, &n, LONG_BLOCK, long_shift);
  crc = crc_hw_blocks(crc, &p, &n, SHORT_BLOCK, short_shift);
  uint64_t c = crc;
  while (n >= 8) {
    c = _mm_crc32_u64(c, load64(p));
    p += 8;
    n -= 8;
  }
  crc = (uint32_t)c;
  while (n--) crc = _mm_crc32_u8(crc, *p++);
  return crc;
}
#define HAVE_HW 1
#endif

static uint32_t crc_raw(uint32_t crc, const uint8_t *p, size_t n) {
#ifdef HAVE_HW
  if (hardware) return crc_hw(crc, p, n);
#endif
  return crc_soft(crc, p, n);
}

/* Byte view of a Uint8Array (or Buffer) argument; throws a TypeError otherwise. */
static int bytes_arg(napi_env env, napi_value v, const uint8_t **data, size_t *len) {
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  napi_typedarray_type type;
  void *ptr = NULL;
  if (is_ta && napi_get_typedarray_info(env, v, &type, len, &ptr, NULL, NULL) == napi_ok && type == napi_uint8_array) {
    *data = ptr;
    return 1;
  }
  napi_throw_type_error(env, NULL, "crc32c: expected a Uint8Array");
  return 0;
}

/* crc32c(bytes, initial = 0): the CRC32C of `bytes`, continuing from the CRC `initial` of what came before. */
static napi_value js_crc32c(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  const uint8_t *data;
  size_t len;
  if (argc < 1 || !bytes_arg(env, argv[0], &data, &len)) {
    if (argc < 1) napi_throw_type_error(env, NULL, "crc32c: expected a Uint8Array");
    return NULL;
  }
  uint32_t initial = 0;
  if (argc > 1) {
    napi_valuetype t;
    napi_typeof(env, argv[1], &t);
    if (t != napi_undefined && napi_get_value_uint32(env, argv[1], &initial) != napi_ok) {
      napi_throw_type_error(env, NULL, "crc32c: initial must be a number");
      return NULL;
    }
  }
  napi_value out;
  napi_create_uint32(env, ~crc_raw(~initial, data, len), &out);
  return out;
}

/* ---- shared mappings ---------------------------------------------------------------------- */

/* A live mapping, found again by its address when unmap() is asked for it; freed by the
 * ArrayBuffer's finalizer, which unmaps it too if unmap() never did. */
typedef struct mapping {
  void *addr;
  size_t len;
  int unmapped;
  struct mapping *next;
} mapping;

static mapping *mappings;
static pthread_mutex_t mappings_lock = PTHREAD_MUTEX_INITIALIZER;

static void finalize_mapping(napi_env env, void *data, void *hint) {
  mapping *m = hint;
  pthread_mutex_lock(&mappings_lock);
  for (mapping **p = &mappings; *p; p = &(*p)->next) {
    if (*p == m) {
      *p = m->next;
      break;
    }
  }
  pthread_mutex_unlock(&mappings_lock);
  if (!m->unmapped) munmap(m->addr, m->len);
  free(m);
}

static int number_arg(napi_env env, napi_value v, double *out, const char *what) {
  if (napi_get_value_double(env, v, out) == napi_ok) return 1;
  napi_throw_type_error(env, NULL, what);
  return 0;
}

/* map(fd, offset, length): `length` bytes of file `fd` from `offset` (a multiple of the page size),
 * MAP_SHARED and prefaulted, as an ArrayBuffer. Throws an Error with the errno's text on failure. */
static napi_value js_map(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  double fd, offset, length;
  if (argc < 3 || !number_arg(env, argv[0], &fd, "map: fd must be a number") ||
      !number_arg(env, argv[1], &offset, "map: offset must be a number") ||
      !number_arg(env, argv[2], &length, "map: length must be a number")) {
    if (argc < 3) napi_throw_type_error(env, NULL, "map: expected (fd, offset, length)");
    return NULL;
  }
  if (length <= 0 || offset < 0) {
    napi_throw_range_error(env, NULL, "map: length must be positive and offset not negative");
    return NULL;
  }
  void *addr = mmap(NULL, (size_t)length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, (int)fd, (off_t)offset);
  if (addr == MAP_FAILED) {
    napi_throw_error(env, NULL, strerror(errno));
    return NULL;
  }
  mapping *m = calloc(1, sizeof *m);
  if (!m) {
    munmap(addr, (size_t)length);
    napi_throw_error(env, NULL, "map: out of memory");
    return NULL;
  }
  m->addr = addr;
  m->len = (size_t)length;
  napi_value out;
  if (napi_create_external_arraybuffer(env, addr, m->len, finalize_mapping, m, &out) != napi_ok) {
    munmap(addr, m->len);
    free(m);
    napi_throw_error(env, NULL, "map: cannot make an external ArrayBuffer");
    return NULL;
  }
  pthread_mutex_lock(&mappings_lock);
  m->next = mappings;
  mappings = m;
  pthread_mutex_unlock(&mappings_lock);
  return out;
}

/* unmap(buffer): detach an ArrayBuffer map() made (its views read as empty from then on) and
 * unmap it now. An ArrayBuffer already unmapped, or not map()'s, is left alone. */
static napi_value js_unmap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *addr = NULL;
  size_t len = 0;
  bool is_ab = false;
  if (argc < 1 || napi_is_arraybuffer(env, argv[0], &is_ab) != napi_ok || !is_ab) {
    napi_throw_type_error(env, NULL, "unmap: expected an ArrayBuffer");
    return NULL;
  }
  napi_get_arraybuffer_info(env, argv[0], &addr, &len);
  mapping *found = NULL;
  pthread_mutex_lock(&mappings_lock);
  for (mapping *m = mappings; m; m = m->next) {
    if (!m->unmapped && m->addr == addr && m->len == len) {
      found = m;
      m->unmapped = 1;
      break;
    }
  }
  pthread_mutex_unlock(&mappings_lock);
  if (found) {
    napi_detach_arraybuffer(env, argv[0]);
    munmap(found->addr, found->len);
  }
  return NULL;
}

/* ---- the emulated update ------------------------------------------------------------------ */

/* axpy(out, x, y, k): out[i] = x[i] + k * y[i] over three typed arrays of one type (Float32Array,
 * Float64Array, or Int32Array, where k is +1 or -1 and the sum wraps as JS's | 0). out may be x.
 * The same bits as the JS loop and the arena's SIMD kernel: each element's product and sum rounded
 * once, in the element's own type (built with -ffp-contract=off: no fused multiply-add).
 * In place (out == x) or out of place into memory x and y do not overlap: two loops, each with
 * restrict pointers, so the compiler vectorizes them with no runtime overlap checks. */
#define AXPY(name, T)                                                                     \
  static void name##_in_place(T *restrict out, const T *restrict y, T k, size_t n) {     \
    for (size_t i = 0; i < n; i++) out[i] = out[i] + k * y[i];                            \
  }                                                                                       \
  static void name##_apart(T *restrict out, const T *restrict x, const T *restrict y, T k, size_t n) { \
    for (size_t i = 0; i < n; i++) out[i] = x[i] + k * y[i];                              \
  }                                                                                       \
  static void name(T *out, const T *x, const T *y, T k, size_t n) {                      \
    if (out == x) name##_in_place(out, y, k, n);                                          \
    else name##_apart(out, x, y, k, n);                                                   \
  }
AXPY(axpy_f32_plain, float)
AXPY(axpy_f64_plain, double)

/* Out of place, `out` is memory the caller will not read soon (a slot the states move into, 8 MiB
 * a worker, cold): non-temporal stores, so the write does not first read every line of it into the
 * cache. In place, `out` was just read: plain stores. The same mul then add, element by element. */
#if defined(__SSE2__)
#include <emmintrin.h>
static void axpy_f32(float *out, const float *x, const float *y, float k, size_t n) {
  if (out == x || ((uintptr_t)out & 15) != 0) return axpy_f32_plain(out, x, y, k, n);
  const __m128 kk = _mm_set1_ps(k);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) _mm_stream_ps(out + i, _mm_add_ps(_mm_loadu_ps(x + i), _mm_mul_ps(kk, _mm_loadu_ps(y + i))));
  for (; i < n; i++) out[i] = x[i] + k * y[i];
  _mm_sfence();
}
static void axpy_f64(double *out, const double *x, const double *y, double k, size_t n) {
  if (out == x || ((uintptr_t)out & 15) != 0) return axpy_f64_plain(out, x, y, k, n);
  const __m128d kk = _mm_set1_pd(k);
  size_t i = 0;
  for (; i + 2 <= n; i += 2) _mm_stream_pd(out + i, _mm_add_pd(_mm_loadu_pd(x + i), _mm_mul_pd(kk, _mm_loadu_pd(y + i))));
  for (; i < n; i++) out[i] = x[i] + k * y[i];
  _mm_sfence();
}
#else
#define axpy_f32 axpy_f32_plain
#define axpy_f64 axpy_f64_plain
#endif
/* i32 wraps as JS's | 0: in unsigned arithmetic, where k = -1 is the two's complement. */
AXPY(axpy_u32, uint32_t)

static napi_value js_axpy(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_typedarray_type t[3];
  size_t n[3];
  void *p[3];
  double k;
  for (int a = 0; a < 3; a++) {
    bool is_ta = false;
    if (a < (int)argc) napi_is_typedarray(env, argv[a], &is_ta);
    if (!is_ta || napi_get_typedarray_info(env, argv[a], &t[a], &n[a], &p[a], NULL, NULL) != napi_ok) {
      napi_throw_type_error(env, NULL, "axpy: expected (out, x, y, k) with three typed arrays");
      return NULL;
    }
  }
  if (argc < 4 || !number_arg(env, argv[3], &k, "axpy: k must be a number")) {
    if (argc < 4) napi_throw_type_error(env, NULL, "axpy: expected (out, x, y, k)");
    return NULL;
  }
  if (t[1] != t[0] || t[2] != t[0] || n[1] != n[0] || n[2] != n[0]) {
    napi_throw_type_error(env, NULL, "axpy: out, x and y must be of one type and length");
    return NULL;
  }
  switch (t[0]) {
    case napi_float32_array:
      axpy_f32(p[0], p[1], p[2], (float)k, n[0]);
      break;
    case napi_float64_array:
      axpy_f64(p[0], p[1], p[2], k, n[0]);
      break;
    case napi_int32_array:
      if (k != 1 && k != -1) {
        napi_throw_range_error(env, NULL, "axpy: k must be 1 or -1 for an Int32Array");
        return NULL;
      }
      axpy_u32(p[0], p[1], p[2], k < 0 ? UINT32_MAX : 1u, n[0]);
      break;
    default:
      napi_throw_type_error(env, NULL, "axpy: Float32Array, Float64Array or Int32Array only");
      return NULL;
  }
  return NULL;
}

/* Once per process: worker threads load the addon again, and must not rewrite tables in use. */
static void init_tables(void) {
  for (uint32_t v = 0; v < 256; v++) {
    uint32_t c = v;
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
    byte_table[v] = c;
  }
  shift_table(long_shift, LONG_BLOCK);
  shift_table(short_shift, SHORT_BLOCK);
#ifdef HAVE_HW
  __builtin_cpu_init();
  hardware = __builtin_cpu_supports("sse4.2");
#endif
}

static napi_value init(napi_env env, napi_value exports) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, init_tables);
  napi_value fn, hw;
  napi_create_function(env, "crc32c", NAPI_AUTO_LENGTH, js_crc32c, NULL, &fn);
  napi_set_named_property(env, exports, "crc32c", fn);
  static const struct { const char *name; napi_callback cb; } more[] = {{"map", js_map}, {"unmap", js_unmap}, {"axpy", js_axpy}};
  for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
    napi_create_function(env, more[i].name, NAPI_AUTO_LENGTH, more[i].cb, NULL, &fn);
    napi_set_named_property(env, exports, more[i].name, fn);
  }
  napi_get_boolean(env, hardware, &hw);
  napi_set_named_property(env, exports, "hardware", hw);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
