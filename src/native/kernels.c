// ringswarm's native kernels, an optional Node-API addon built by scripts/build-native.ts with the
// machine's C compiler. Today one kernel: CRC32C (the data frames' checksum) with the SSE4.2 crc32
// instruction over three interleaved streams, which keeps the instruction's 3-cycle latency
// hidden: about 4x @node-rs/crc32 on one core. Without SSE4.2 the addon still loads and says
// `hardware: false`; the caller then keeps @node-rs/crc32.
//
// The three streams are joined by the CRC's linearity: for the raw register (no pre- or
// post-inversion), crc(s, A || B) = shift(crc(s, A), |B|) xor crc(0, B), where shift multiplies by
// x^(8|B|) modulo the polynomial; for a fixed |B| that is four table lookups.

#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

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
  napi_get_boolean(env, hardware, &hw);
  napi_set_named_property(env, exports, "hardware", hw);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
