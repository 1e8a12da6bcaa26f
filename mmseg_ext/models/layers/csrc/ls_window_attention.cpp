// Fused forward of the Long-Short attention windows on CPU (Zhu et al., NeurIPS 2021, Eq. 4).
//
// For each (image, head, tile) the kernel computes ONE softmax over the tile's window keys and
// the shared (compressed, global) keys, times their values, in fp32, with the scores of one
// query block kept in a small buffer: no window copies, no padding and no masks. Keys outside
// the sequence / map, and padded keys, are skipped rather than masked. Queries are vectorised
// 16 to a register (the softmax reduces along keys, i.e. across registers), keys and values are
// read in place from the [B, N, 2, C] tensor of LN_S-normalised keys/values.
//
// Built on first use by mmseg_ext/models/layers/ls_attention_kernel.py (g++ -O3 -march=native),
// called through ctypes with raw pointers; forward only (the autograd path is the PyTorch one).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

constexpr int kLanes = 16;   // queries per vector register
constexpr int kChunk = 64;   // queries per block (at most 4 registers per key)
constexpr int kKeys = 4;     // keys per step of the score product (the 4 columns of outer_4)
constexpr int kChans = 4;    // value channels per step of the value product (likewise)

typedef float vec __attribute__((vector_size(kLanes * sizeof(float))));
typedef int32_t ivec __attribute__((vector_size(kLanes * sizeof(int32_t))));

inline vec load(const float *p) { vec v; std::memcpy(&v, p, sizeof v); return v; }
inline void store(float *p, vec v) { std::memcpy(p, &v, sizeof v); }
inline vec splat(float x) { return vec{} + x; }
inline float hsum(vec v) {
  float s = 0.f;
  for (int i = 0; i < kLanes; ++i) s += v[i];
  return s;
}

// exp(x) for x <= 0 (Cephes' expf polynomial; relative error ~1e-7); 0 below -87.3.
inline vec exp_nonpositive(vec x) {
  const vec lo = splat(-87.3365f);
  const ivec under = x < lo;
  x = under ? lo : x;
  const vec magic = splat(12582912.f);  // 1.5 * 2^23: adding it rounds to an integer
  const vec n = (x * 1.44269504088896341f + magic) - magic;
  vec r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vec p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const ivec bits = (ivec)p + (__builtin_convertvector(n, ivec) << 23);
  return under ? splat(0.f) : (vec)bits;
}

// The keys of one query block: row pointers to d keys / values, optional bias rows.
struct Keys {
  std::vector<const float *> k, v, bias;
  int size = 0;
  void reset() { size = 0; }
  void add(const float *key, const float *value, const float *b) {
    k[size] = key; v[size] = value; bias[size] = b; ++size;
  }
};

// A float buffer aligned to the cache line (64 bytes).
struct Buffer {
  float *data_ = nullptr;
  explicit Buffer(size_t n)
      : data_(static_cast<float *>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64))) {}
  ~Buffer() { std::free(data_); }
  Buffer(const Buffer &) = delete;
  Buffer &operator=(const Buffer &) = delete;
  float *data() const { return data_; }
};

// Per-call scratch: transposed queries [d][64], scores [keys][64], output [d][64].
struct Scratch {
  Buffer qt, scores, ot;
  Keys keys;
  Scratch(int d, int max_keys)
      : qt(d * kChunk), scores((max_keys + kKeys) * kChunk), ot(d * kChunk) {
    keys.k.resize(max_keys); keys.v.resize(max_keys); keys.bias.resize(max_keys);
  }
};

// acc += a * b with every operand in a register. Written plainly, GCC folds the vector loads
// into the FMAs (one load per FMA, not per four) and the loads bound the products.
#if defined(__AVX512F__)
#define FMA(acc, a, b) asm("vfmadd231ps %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))
#else
#define FMA(acc, a, b) ((acc) += (a) * (b))
#endif

// The rank-`steps` update of QV * 16 queries x 4 columns: out[i][v] = sum_t a[t stride + 16 v ..]
// * scalar(t, i), with the accumulators in named registers (those of absent query vectors,
// QV < 4, are compiled away).
template <int QV, class Scalar>
inline void outer_4(int steps, const float *a, int stride, Scalar scalar, vec out[4][QV]) {
  vec a00{}, a01{}, a02{}, a03{}, a10{}, a11{}, a12{}, a13{};
  vec a20{}, a21{}, a22{}, a23{}, a30{}, a31{}, a32{}, a33{};
#define LS_ROW(i, r0, r1, r2, r3)                \
  {                                              \
    const vec y = splat(scalar(t, i));           \
    FMA(r0, x0, y);                              \
    if constexpr (QV > 1) FMA(r1, x1, y);        \
    if constexpr (QV > 2) FMA(r2, x2, y);        \
    if constexpr (QV > 3) FMA(r3, x3, y);        \
  }
  for (int t = 0; t < steps; ++t, a += stride) {
    const vec x0 = load(a);
    const vec x1 = QV > 1 ? load(a + kLanes) : vec{}, x2 = QV > 2 ? load(a + 2 * kLanes) : vec{};
    const vec x3 = QV > 3 ? load(a + 3 * kLanes) : vec{};
    LS_ROW(0, a00, a01, a02, a03) LS_ROW(1, a10, a11, a12, a13)
    LS_ROW(2, a20, a21, a22, a23) LS_ROW(3, a30, a31, a32, a33)
  }
#undef LS_ROW
  const vec all[4][4] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}, {a20, a21, a22, a23},
                         {a30, a31, a32, a33}};
  for (int i = 0; i < 4; ++i)
    for (int v = 0; v < QV; ++v) out[i][v] = all[i][v];
}

// softmax(qt^T K^T + bias) V for QV * 16 query lanes; qt [d][64] (scaled), out ot [d][64].
template <int QV>
void attend_block(int d, const float *qt, const Keys &keys, float *scores, float *ot) {
  constexpr int QP = QV * kLanes;
  const int nk = keys.size;
  vec mx[QV], sum[QV];  // per query: the maximum score, then the sum of the exponentials
  for (int v = 0; v < QV; ++v) { mx[v] = splat(-INFINITY); sum[v] = splat(0.f); }
  for (int j0 = 0; j0 < nk; j0 += kKeys) {
    const int nb = std::min(kKeys, nk - j0);
    const float *kr[kKeys];
    for (int i = 0; i < kKeys; ++i) kr[i] = keys.k[j0 + std::min(i, nb - 1)];
    vec acc[kKeys][QV] = {};
    outer_4<QV>(d, qt, kChunk, [&](int c, int i) { return kr[i][c]; }, acc);
    for (int i = 0; i < nb; ++i) {
      const float *b = keys.bias[j0 + i];
      for (int v = 0; v < QV; ++v) {
        vec s = acc[i][v];
        if (b) s += load(b + v * kLanes);
        mx[v] = s > mx[v] ? s : mx[v];
        store(scores + (j0 + i) * QP + v * kLanes, s);
      }
    }
  }
  for (int j = 0; j < nk; ++j)
    for (int v = 0; v < QV; ++v) {
      const vec e = exp_nonpositive(load(scores + j * QP + v * kLanes) - mx[v]);
      store(scores + j * QP + v * kLanes, e);
      sum[v] += e;
    }
  for (int v = 0; v < QV; ++v) sum[v] = 1.f / sum[v];
  int c0 = 0;
  for (; c0 + kChans <= d; c0 += kChans) {
    vec acc[kChans][QV] = {};
    outer_4<QV>(nk, scores, QP, [&](int j, int i) { return keys.v[j][c0 + i]; }, acc);
    for (int i = 0; i < kChans; ++i)
      for (int v = 0; v < QV; ++v) store(ot + (c0 + i) * kChunk + v * kLanes, acc[i][v] * sum[v]);
  }
  for (; c0 < d; ++c0) {
    vec acc[QV] = {};
    for (int j = 0; j < nk; ++j)
      for (int v = 0; v < QV; ++v) acc[v] += load(scores + j * QP + v * kLanes) * keys.v[j][c0];
    for (int v = 0; v < QV; ++v) store(ot + c0 * kChunk + v * kLanes, acc[v] * sum[v]);
  }
}

void attend(int lanes, int d, Scratch &s) {
  switch ((lanes + kLanes - 1) / kLanes) {
    case 1: attend_block<1>(d, s.qt.data(), s.keys, s.scores.data(), s.ot.data()); break;
    case 2: attend_block<2>(d, s.qt.data(), s.keys, s.scores.data(), s.ot.data()); break;
    case 3: attend_block<3>(d, s.qt.data(), s.keys, s.scores.data(), s.ot.data()); break;
    default: attend_block<4>(d, s.qt.data(), s.keys, s.scores.data(), s.ot.data()); break;
  }
}

// Queries rows[i] (d floats, nullptr = no query) -> scaled, transposed into qt [d][64].
void gather_queries(const float *const *rows, int lanes, int d, float scale, float *qt) {
  for (int i = 0; i < lanes; ++i)
    for (int c = 0; c < d; ++c) qt[c * kChunk + i] = rows[i] ? rows[i][c] * scale : 0.f;
}

// ot [d][64] -> output rows (nullptr = not stored).
void scatter_outputs(const float *ot, float *const *rows, int lanes, int d) {
  for (int i = 0; i < lanes; ++i)
    if (rows[i])
      for (int c = 0; c < d; ++c) rows[i][c] = ot[c * kChunk + i];
}

// Prefetch `count` rows of `width` floats from row `first` of `base` (a hint: no effect on
// the results).
void prefetch_rows(const float *base, int64_t first, int64_t count, int64_t width) {
  const char *p = reinterpret_cast<const char *>(base + first * width);
  for (int64_t i = 0; i < count * width * int64_t(sizeof(float)); i += 64) __builtin_prefetch(p + i);
}

void add_shared(Keys &keys, const float *shared, int64_t b, int64_t m, int64_t c, int64_t off) {
  for (int64_t i = 0; i < m; ++i) {
    const float *row = shared + ((b * m + i) * 2) * c + off;
    keys.add(row, row + c, nullptr);
  }
}

}  // namespace

extern "C" {

// LayerNorm over the last C channels, in place: x [rows, C] <- (x - mean) / sqrt(var + eps) *
// weight + bias (the biased variance, as torch.nn.LayerNorm). Rows [begin, end).
void ls_layer_norm(float *x, const float *weight, const float *bias, int64_t C, float eps,
                   int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    float *row = x + r * C;
    vec acc{};
    int64_t c = 0;
    for (; c + kLanes <= C; c += kLanes) acc += load(row + c);
    float mean = hsum(acc);
    for (; c < C; ++c) mean += row[c];
    mean /= C;
    acc = vec{};
    for (c = 0; c + kLanes <= C; c += kLanes) {
      const vec x0 = load(row + c) - mean;
      acc += x0 * x0;
    }
    float var = hsum(acc);
    for (; c < C; ++c) var += (row[c] - mean) * (row[c] - mean);
    const float inv = 1.f / std::sqrt(var / C + eps);
    for (c = 0; c < C; ++c) row[c] = (row[c] - mean) * inv * weight[c] + bias[c];
  }
}

// 1D: q [B, N, C], kv [B, N, 2, C], shared [B, m, 2, C] or null, valid [B, N] (1 = token) or
// null, out [B, N, C]. Work items [begin, end) of B * heads * segments * ceil(w / 64) blocks;
// segment s (queries [s w, s w + w)) sees the keys [s w - halo, s w + w + halo) and the shared
// ones. Padded queries get zeros.
void ls_window_attention_1d(const float *q, const float *kv, const float *shared,
                            const uint8_t *valid, float *out, int64_t B, int64_t N, int64_t C,
                            int64_t heads, int64_t m, int64_t w, int64_t halo, float scale,
                            int64_t begin, int64_t end) {
  const int d = static_cast<int>(C / heads);
  const int64_t segs = (N + w - 1) / w, blocks = (w + kChunk - 1) / kChunk;
  Scratch s(d, static_cast<int>(w + 2 * halo + m));
  const float *qrows[kChunk];
  float *orows[kChunk];
  for (int64_t item = begin; item < end; ++item) {
    // heads innermost: the window's key rows serve every head while they are in cache
    const int64_t blk = item % blocks, hh = item / blocks % heads;
    const int64_t seg = item / blocks / heads % segs, b = item / blocks / heads / segs;
    const int64_t off = hh * d;
    const int64_t t0 = seg * w + blk * kChunk;
    const int lanes = static_cast<int>(std::min<int64_t>(kChunk, w - blk * kChunk));
    if (hh == 0 && blk == 0 && seg + 1 < segs) {  // the next segment's new rows, from memory
      const int64_t lo = b * N + (seg + 1) * w;
      prefetch_rows(kv, lo + halo, std::min(w, N - (seg + 1) * w - halo), 2 * C);
      prefetch_rows(q, lo, std::min(w, N - (seg + 1) * w), C);
    }
    bool any = false;
    for (int i = 0; i < lanes; ++i) {
      const int64_t t = t0 + i;
      const bool real = t < N && t < (seg + 1) * w;
      const bool on = real && (!valid || valid[b * N + t]);
      qrows[i] = on ? q + (b * N + t) * C + off : nullptr;
      orows[i] = real ? out + (b * N + t) * C + off : nullptr;
      if (real && !on) std::memset(orows[i], 0, d * sizeof(float));
      any |= on;
    }
    if (!any) continue;
    s.keys.reset();
    for (int64_t j = std::max<int64_t>(0, seg * w - halo); j < std::min(N, (seg + 1) * w + halo);
         ++j) {
      if (valid && !valid[b * N + j]) continue;
      const float *row = kv + ((b * N + j) * 2) * C + off;
      s.keys.add(row, row + C, nullptr);
    }
    if (shared) add_shared(s.keys, shared, b, m, C, off);
    gather_queries(qrows, lanes, d, scale, s.qt.data());
    attend(lanes, d, s);
    for (int i = 0; i < lanes; ++i)
      if (!qrows[i]) orows[i] = nullptr;
    scatter_outputs(s.ot.data(), orows, lanes, d);
  }
}

// 2D: tokens [G global, then the H x W map row-major]; q [B, G + HW, C], kv [B, G + HW, 2, C],
// shared [B, m, 2, C] or null, bias [heads, (w + 2 halo)^2, QT] or null (QT = w^2 rounded up to
// 16: the bias of window key k for tile query i at [h, k, i]), out [B, G + HW, C] (map rows
// written). Work items [begin, end) of B * heads * tiles * ceil(w^2 / 64) blocks.
void ls_window_attention_2d(const float *q, const float *kv, const float *shared,
                            const float *bias, float *out, int64_t B, int64_t G, int64_t H,
                            int64_t W, int64_t C, int64_t heads, int64_t m, int64_t w,
                            int64_t halo, float scale, int64_t begin, int64_t end) {
  const int d = static_cast<int>(C / heads);
  const int64_t size = w + 2 * halo, tiles_h = (H + w - 1) / w, tiles_w = (W + w - 1) / w;
  const int64_t tile_q = w * w, qt_pad = (tile_q + kLanes - 1) / kLanes * kLanes;
  const int64_t blocks = (tile_q + kChunk - 1) / kChunk, n = G + H * W;
  Scratch s(d, static_cast<int>(size * size + m));
  const float *qrows[kChunk];
  float *orows[kChunk];
  for (int64_t item = begin; item < end; ++item) {
    const int64_t blk = item % blocks, hh = item / blocks % heads;
    const int64_t tile = item / blocks / heads % (tiles_h * tiles_w);
    const int64_t b = item / blocks / heads / (tiles_h * tiles_w);
    const int64_t ty = tile / tiles_w * w, tx = tile % tiles_w * w, off = hh * d;
    const int lanes = static_cast<int>(std::min<int64_t>(kChunk, tile_q - blk * kChunk));
    for (int i = 0; i < lanes; ++i) {
      const int64_t qi = blk * kChunk + i, y = ty + qi / w, x = tx + qi % w;
      const bool real = y < H && x < W;
      const int64_t t = G + y * W + x;
      qrows[i] = real ? q + (b * n + t) * C + off : nullptr;
      orows[i] = real ? out + (b * n + t) * C + off : nullptr;
    }
    s.keys.reset();
    for (int64_t ky = 0; ky < size; ++ky) {
      const int64_t y = ty - halo + ky;
      if (y < 0 || y >= H) continue;
      for (int64_t kx = 0; kx < size; ++kx) {
        const int64_t x = tx - halo + kx;
        if (x < 0 || x >= W) continue;
        const float *row = kv + ((b * n + G + y * W + x) * 2) * C + off;
        const float *b_row =
            bias ? bias + (hh * size * size + ky * size + kx) * qt_pad + blk * kChunk : nullptr;
        s.keys.add(row, row + C, b_row);
      }
    }
    if (shared) add_shared(s.keys, shared, b, m, C, off);
    gather_queries(qrows, lanes, d, scale, s.qt.data());
    attend(lanes, d, s);
    scatter_outputs(s.ot.data(), orows, lanes, d);
  }
}

}  // extern "C"

// Causal: query t (t < Np, absolute segment c = mem_segs + t / seg) attends, with ONE softmax,
//  * the window keys j in (t - w, t], stored at rows j + w of kw_t [B, h, d, ldw] (transposed)
//    and vw [B, h, w + Np, dp]; rows < hidden are masked. Score (q + u) k_j + (q + v) R_{t-j},
//    R_delta the column w - 1 - delta of rt [h, d, ldr];
//  * the compressed keys kk < r c of kl_t [B, h, d, ldl] and vl [B, h, P, dp], score
//    q k_kk + q S_p (p = r c - 1 - kk: the column P - r c + kk of st [h, d, ldl]).
// q [B, h, Np, d] is scaled; u, v [h, d]; rt, st, u, v null without relative positions; kl_t null
// without the long-range branch. Values are padded to dp (a multiple of 16) channels; out
// [B, Np, h, d]. Work items [begin, end) of B * h * ceil(Np / 64) groups of 64 queries.
namespace {

constexpr int kBlock = 4;  // queries of one segment computed together

struct CausalArgs {
  const float *q, *kw_t, *vw, *rt, *u, *v, *kl_t, *vl, *st;
  float *out;
  int64_t B, heads, Np, d, dp, w, hidden, seg, r, mem_segs, P, ldw, ldr, ldl;
};

// scores[i][m0 + m] = sum_c a_i[c] x[c][off_i + m0 + m] (+ b_i[c] y[c][y_off + m0 + m]) for
// m < 16 NV and KB queries; x, y rows of stride ldx / ldy. SHARED: a = b and every off_i = 0,
// so a_i (x + y) is one product.
template <int KB, int NV, bool Y, bool SHARED>
void score_chunk(int d, const float *const *a, const float *const *b, const float *x,
                 int64_t ldx, const int64_t *off, const float *y, int64_t ldy, int64_t y_off,
                 int m0, float *const *scores) {
  vec acc[KB][NV] = {};
  for (int c = 0; c < d; ++c) {
    vec yv[NV];
    if (Y)
      for (int k = 0; k < NV; ++k) yv[k] = load(y + c * ldy + y_off + m0 + k * kLanes);
    if (SHARED) {
      for (int k = 0; k < NV; ++k) yv[k] = (Y ? yv[k] : splat(0.f)) + load(x + c * ldx + m0 + k * kLanes);
      for (int i = 0; i < KB; ++i) {
        const float ac = a[i][c];
        for (int k = 0; k < NV; ++k) acc[i][k] += yv[k] * ac;
      }
      continue;
    }
    for (int i = 0; i < KB; ++i) {
      const float ac = a[i][c];
      const float *xr = x + c * ldx + off[i] + m0;
      for (int k = 0; k < NV; ++k) acc[i][k] += load(xr + k * kLanes) * ac;
      if (Y) {
        const float bc = b[i][c];
        for (int k = 0; k < NV; ++k) acc[i][k] += yv[k] * bc;
      }
    }
  }
  for (int i = 0; i < KB; ++i)
    for (int k = 0; k < NV; ++k) store(scores[i] + m0 + k * kLanes, acc[i][k]);
}

// score_chunk over m < len (rounded up to 16), 64 columns at a time.
template <int KB, bool Y, bool SHARED>
void score_rows(int d, const float *const *a, const float *const *b, const float *x, int64_t ldx,
                const int64_t *off, const float *y, int64_t ldy, int64_t y_off, int len,
                float *const *scores) {
  int m0 = 0;
  for (; m0 + 4 * kLanes <= len; m0 += 4 * kLanes)
    score_chunk<KB, 4, Y, SHARED>(d, a, b, x, ldx, off, y, ldy, y_off, m0, scores);
  switch ((len - m0 + kLanes - 1) / kLanes) {
    case 1: score_chunk<KB, 1, Y, SHARED>(d, a, b, x, ldx, off, y, ldy, y_off, m0, scores); break;
    case 2: score_chunk<KB, 2, Y, SHARED>(d, a, b, x, ldx, off, y, ldy, y_off, m0, scores); break;
    case 3: score_chunk<KB, 3, Y, SHARED>(d, a, b, x, ldx, off, y, ldy, y_off, m0, scores); break;
    case 4: score_chunk<KB, 4, Y, SHARED>(d, a, b, x, ldx, off, y, ldy, y_off, m0, scores); break;
    default: break;
  }
}

template <int KB, bool SHARED>
void score_rows(int d, const float *const *a, const float *const *b, const float *x, int64_t ldx,
                const int64_t *off, const float *y, int64_t ldy, int64_t y_off, int len,
                float *const *scores) {
  if (y)
    score_rows<KB, true, SHARED>(d, a, b, x, ldx, off, y, ldy, y_off, len, scores);
  else
    score_rows<KB, false, SHARED>(d, a, b, x, ldx, off, y, ldy, y_off, len, scores);
}

// exp(s - max) in place over the two score rows a [na] and b [nb]; returns the sum.
float softmax_unnormalised(float *a, int na, float *b, int nb) {
  float *rows[2] = {a, b};
  const int lens[2] = {na, nb};
  vec vmx = splat(-INFINITY);
  float mx = -INFINITY;
  for (int r = 0; r < 2; ++r) {
    int m = 0;
    for (; m + kLanes <= lens[r]; m += kLanes) {
      const vec s = load(rows[r] + m);
      vmx = s > vmx ? s : vmx;
    }
    for (; m < lens[r]; ++m) mx = std::max(mx, rows[r][m]);
  }
  for (int l = 0; l < kLanes; ++l) mx = std::max(mx, vmx[l]);
  vec vsum = splat(0.f);
  float sum = 0.f;
  for (int r = 0; r < 2; ++r) {
    int m = 0;
    for (; m + kLanes <= lens[r]; m += kLanes) {
      const vec e = exp_nonpositive(load(rows[r] + m) - mx);
      store(rows[r] + m, e);
      vsum += e;
    }
    for (; m < lens[r]; ++m) {
      rows[r][m] = std::exp(rows[r][m] - mx);
      sum += rows[r][m];
    }
  }
  for (int l = 0; l < kLanes; ++l) sum += vsum[l];
  return sum;
}

// acc[i][k] += sum_R p_i(R) rows[R][16 k ..] for KB queries, CV value vectors, n rows;
// p_i(R) = weights[i][R - shift * i].
template <int KB, int CV>
void weigh_rows(const float *rows, int64_t ld, int n, const float *const *weights, int shift,
                vec (*acc)[4]) {
  for (int R = 0; R < n; ++R) {
    const float *vr = rows + R * ld;
    vec vv[CV];
    for (int k = 0; k < CV; ++k) vv[k] = load(vr + k * kLanes);
    for (int i = 0; i < KB; ++i) {
      const float p = weights[i][R - shift * i];
      for (int k = 0; k < CV; ++k) acc[i][k] += vv[k] * p;
    }
  }
}

template <int KB>
void weigh(int cv, const float *rows, int64_t ld, int n, const float *const *weights, int shift,
           vec (*acc)[4]) {
  switch (cv) {
    case 1: weigh_rows<KB, 1>(rows, ld, n, weights, shift, acc); break;
    case 2: weigh_rows<KB, 2>(rows, ld, n, weights, shift, acc); break;
    case 3: weigh_rows<KB, 3>(rows, ld, n, weights, shift, acc); break;
    default: weigh_rows<KB, 4>(rows, ld, n, weights, shift, acc); break;
  }
}

}  // namespace

extern "C" void ls_causal_attention(const CausalArgs *args, int64_t begin, int64_t end) {
  const CausalArgs &A = *args;
  const int d = static_cast<int>(A.d), dp = static_cast<int>(A.dp), w = static_cast<int>(A.w);
  const int nv = dp / kLanes;
  const int64_t groups = (A.Np + kChunk - 1) / kChunk;
  const int block = A.seg % 4 == 0 ? 4 : A.seg % 2 == 0 ? 2 : 1;  // inside one segment
  const int win_len = (w + kLanes - 1) / kLanes * kLanes + 2 * kBlock;
  const int long_len = (static_cast<int>(A.P) + kLanes - 1) / kLanes * kLanes;
  Buffer win(kBlock * win_len), lng(kBlock * std::max(long_len, kLanes));
  Buffer qu(kBlock * d), qv(kBlock * d), acc_out(kBlock * dp);
  for (int64_t item = begin; item < end; ++item) {
    const int64_t g = item % groups, hh = item / groups % A.heads, b = item / groups / A.heads;
    const int64_t bh = b * A.heads + hh;
    const float *kw = A.kw_t + bh * d * A.ldw, *vw = A.vw + bh * (A.w + A.Np) * dp;
    const float *kl = A.kl_t ? A.kl_t + bh * d * A.ldl : nullptr;
    const float *vl = A.kl_t ? A.vl + bh * A.P * dp : nullptr;
    const float *rt = A.rt ? A.rt + hh * d * A.ldr : nullptr;
    const float *st = A.st ? A.st + hh * d * A.ldl : nullptr;
    for (int64_t t0 = g * kChunk; t0 < std::min(A.Np, (g + 1) * kChunk); t0 += block) {
      const int nq = static_cast<int>(std::min<int64_t>(block, A.Np - t0));
      const float *qa[kBlock], *qb[kBlock], *ql[kBlock];
      float *ws[kBlock], *ls[kBlock];
      int64_t off[kBlock];
      float inv[kBlock];
      for (int i = 0; i < kBlock; ++i) {
        const int ii = std::min(i, nq - 1);  // a short block repeats its last query
        const float *qr = A.q + (bh * A.Np + t0 + ii) * d;
        float *a = qu.data() + i * d, *bb = qv.data() + i * d;
        for (int c = 0; c < d; ++c) {
          a[c] = qr[c] + (A.u ? A.u[hh * d + c] : 0.f);
          bb[c] = qr[c] + (A.v ? A.v[hh * d + c] : 0.f);
        }
        qa[i] = a; qb[i] = bb; ql[i] = qr;
        ws[i] = win.data() + i * win_len + kBlock;  // kBlock zeros on each side
        ls[i] = lng.data() + i * std::max(long_len, kLanes);
        off[i] = t0 + ii + 1;  // the window of query t starts at row t + 1
      }
      // window scores, the keys of query t0 + i at rows t0 + i + 1 .. t0 + i + w
      score_rows<kBlock, false>(d, qa, qb, kw, A.ldw, off, rt, A.ldr, 0, w, ws);
      const int64_t c_abs = A.mem_segs + t0 / A.seg;
      const int nl = kl ? static_cast<int>(A.r * c_abs) : 0;
      if (nl) {
        const int64_t zero[kBlock] = {0, 0, 0, 0};
        score_rows<kBlock, true>(d, ql, ql, kl, A.ldl, zero, st, A.ldl, A.P - nl, nl, ls);
      }
      for (int i = 0; i < nq; ++i) {
        float *sw = ws[i], *sl = ls[i];
        const int64_t t = t0 + i;
        if (t + 1 < A.hidden)  // rows before the memory
          for (int m = 0; m < std::min<int64_t>(w, A.hidden - t - 1); ++m) sw[m] = -INFINITY;
        inv[i] = 1.f / softmax_unnormalised(sw, w, sl, nl);
      }
      for (int i = nq; i < kBlock; ++i) std::memset(ws[i] - kBlock, 0, win_len * sizeof(float));
      for (int i = 0; i < nq; ++i) {  // zero the pads beside each window
        std::memset(ws[i] - kBlock, 0, kBlock * sizeof(float));
        std::memset(ws[i] + w, 0, (win_len - kBlock - w) * sizeof(float));
      }
      // values: rows t0 + 1 + R, R < w + nq - 1; query i's weight of row t0 + 1 + R is ws[i][R - i]
      vec acc[kBlock][4];
      for (int c0 = 0; c0 < nv; c0 += 4) {
        const int cv = std::min(4, nv - c0);
        for (int i = 0; i < kBlock; ++i)
          for (int k = 0; k < 4; ++k) acc[i][k] = splat(0.f);
        weigh<kBlock>(cv, vw + (t0 + 1) * dp + c0 * kLanes, dp, w + nq - 1, ws, 1, acc);
        if (nl) weigh<kBlock>(cv, vl + c0 * kLanes, dp, nl, ls, 0, acc);
        for (int i = 0; i < nq; ++i)
          for (int k = 0; k < cv; ++k)
            store(acc_out.data() + i * dp + (c0 + k) * kLanes, acc[i][k] * inv[i]);
      }
      for (int i = 0; i < nq; ++i)
        std::memcpy(A.out + ((b * A.Np + t0 + i) * A.heads + hh) * d, acc_out.data() + i * dp,
                    d * sizeof(float));
    }
  }
}
