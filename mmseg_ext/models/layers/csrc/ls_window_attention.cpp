// Fused Long-Short attention windows on CPU (Zhu et al., NeurIPS 2021, Eq. 4): forward and
// backward, registered as torch operators (the mmseg_ext::ls_* ops of ls_attention_kernel.py).
//
// For each (image, head, tile) the forward computes ONE softmax over the tile's window keys and
// the shared (compressed, global) keys, times their values, in fp32, with the scores of one
// query block kept in a small buffer: no window copies, no padding and no masks. Keys outside
// the sequence / map, and padded keys, are skipped rather than masked. Queries are vectorised
// 16 to a register (the softmax reduces along keys, i.e. across registers), keys and values are
// read in place from the [B, N, 2, C] tensor of LN_S-normalised keys/values. The forward also
// returns each query's log-sum-exp of its scores; the backward recomputes the scores from it
// (no probabilities are stored) and accumulates the key, value and bias gradients per
// (image, head), so that no two threads write the same rows.
//
// Built on first use by mmseg_ext/models/layers/ls_attention_kernel.py
// (torch.utils.cpp_extension, -O3 -march=native); work is split by at::parallel_for.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
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
// In the backward also the rows their gradients are added to (dk, dv; dbias: [64] lanes).
struct Keys {
  std::vector<const float *> k, v, bias;
  std::vector<float *> dk, dv, dbias;
  int size = 0;
  void reset() { size = 0; }
  void add(const float *key, const float *value, const float *b) {
    k[size] = key; v[size] = value; bias[size] = b; ++size;
  }
  void add_grad(float *gk, float *gv, float *gb) {
    dk[size - 1] = gk; dv[size - 1] = gv; dbias[size - 1] = gb;
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
    for (auto *rows : {&keys.k, &keys.v, &keys.bias}) rows->resize(max_keys);
    for (auto *rows : {&keys.dk, &keys.dv, &keys.dbias}) rows->resize(max_keys);
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

// softmax(qt^T K^T + bias) V for QV * 16 query lanes; qt [d][64] (scaled), out ot [d][64] and
// the log-sum-exp of each lane's scores, lse [64].
template <int QV>
void attend_block(int d, const float *qt, const Keys &keys, float *scores, float *ot,
                  float *lse) {
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
  for (int v = 0; v < QV; ++v) {
    for (int l = 0; l < kLanes; ++l) lse[v * kLanes + l] = mx[v][l] + std::log(sum[v][l]);
    sum[v] = 1.f / sum[v];
  }
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

void attend(int lanes, int d, Scratch &s, float *lse) {
  switch ((lanes + kLanes - 1) / kLanes) {
    case 1: attend_block<1>(d, s.qt.data(), s.keys, s.scores.data(), s.ot.data(), lse); break;
    case 2: attend_block<2>(d, s.qt.data(), s.keys, s.scores.data(), s.ot.data(), lse); break;
    case 3: attend_block<3>(d, s.qt.data(), s.keys, s.scores.data(), s.ot.data(), lse); break;
    default: attend_block<4>(d, s.qt.data(), s.keys, s.scores.data(), s.ot.data(), lse); break;
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

// LayerNorm over the last C channels, in place: x [rows, C] <- (x - mean) / sqrt(var + eps) *
// weight + bias (the biased variance, as torch.nn.LayerNorm). Rows [begin, end).
void layer_norm_rows(float *x, const float *weight, const float *bias, int64_t C, float eps,
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

// ------------------------------------------------------------------------------- backward
// Per-thread scratch of the backward: besides the forward's (qt, keys), the output gradient
// transposed (dot [d][64]), the scaled queries and output gradients as rows padded to dp
// channels (qrow, drow [64][dp]), probabilities and score gradients ([keys][64]), dq^T [d][64],
// four keys' gradients (kloc, vloc [4][dp]), each lane's log-sum-exp and D = dout . out.
struct BackScratch {
  Scratch s;
  int dp;
  Buffer dot, qrow, drow, p, ds, dqt, kloc, vloc;
  float lse[kChunk], D[kChunk];
  BackScratch(int d, int max_keys)
      : s(d, max_keys), dp((d + kLanes - 1) / kLanes * kLanes), dot(d * kChunk),
        qrow(kChunk * dp), drow(kChunk * dp), p((max_keys + kKeys) * kChunk),
        ds((max_keys + kKeys) * kChunk), dqt(d * kChunk), kloc(kKeys * dp), vloc(kKeys * dp) {
    std::memset(qrow.data(), 0, kChunk * dp * sizeof(float));  // the pads stay zero
    std::memset(drow.data(), 0, kChunk * dp * sizeof(float));
  }
};

// Lane i < 64: the query row q[i] (nullptr: no query), its output o[i], output gradient g[i]
// and log-sum-exp lse[i] -> the lanes of the scratch (a lane without query gets lse = +inf, so
// its probabilities are 0).
void gather_backward(const float *const *q, const float *const *o, const float *const *g,
                     const float *const *lse, int d, float scale, BackScratch &b) {
  float *qt = b.s.qt.data(), *dot = b.dot.data(), *qrow = b.qrow.data(), *drow = b.drow.data();
  for (int i = 0; i < kChunk; ++i) {
    float dsum = 0.f;
    for (int c = 0; c < d; ++c) {
      const float qc = q[i] ? q[i][c] * scale : 0.f, gc = q[i] ? g[i][c] : 0.f;
      qt[c * kChunk + i] = qrow[i * b.dp + c] = qc;
      dot[c * kChunk + i] = drow[i * b.dp + c] = gc;
      if (q[i]) dsum += gc * o[i][c];
    }
    b.D[i] = dsum;
    b.lse[i] = q[i] ? *lse[i] : std::numeric_limits<float>::infinity();
  }
}

// dk += ds^T q, dv += p^T dout of the four keys j0.., channels [c0, c0 + 16 CV), into kloc/vloc.
template <int CV>
void key_grads(int lanes, int qp, int j0, int c0, BackScratch &b) {
  vec ak[kKeys][CV], av[kKeys][CV];
  const float *P = b.p.data(), *DS = b.ds.data();
  outer_4<CV>(lanes, b.qrow.data() + c0, b.dp,
              [&](int t, int i) { return DS[(j0 + i) * qp + t]; }, ak);
  outer_4<CV>(lanes, b.drow.data() + c0, b.dp,
              [&](int t, int i) { return P[(j0 + i) * qp + t]; }, av);
  for (int i = 0; i < kKeys; ++i)
    for (int v = 0; v < CV; ++v) {
      store(b.kloc.data() + i * b.dp + c0 + v * kLanes, ak[i][v]);
      store(b.vloc.data() + i * b.dp + c0 + v * kLanes, av[i][v]);
    }
}

// The gradients of one query block: p = exp(s - lse) from the recomputed scores s, ds = p (dout
// . v - D); dq = scale ds K into dqt [d][64]; ds^T q and p^T dout added to the keys' gradient
// rows, ds to their bias-gradient rows.
template <int QV>
void backward_block(int d, int lanes, float scale, BackScratch &b) {
  constexpr int QP = QV * kLanes;
  const Keys &keys = b.s.keys;
  const int nk = keys.size;
  float *P = b.p.data(), *DS = b.ds.data();
  vec lse[QV], D[QV];
  for (int v = 0; v < QV; ++v) { lse[v] = load(b.lse + v * kLanes); D[v] = load(b.D + v * kLanes); }
  const vec zero{};
  for (int j0 = 0; j0 < nk; j0 += kKeys) {
    const int nb = std::min(kKeys, nk - j0);
    const float *kr[kKeys], *vr[kKeys];
    for (int i = 0; i < kKeys; ++i) {
      kr[i] = keys.k[j0 + std::min(i, nb - 1)];
      vr[i] = keys.v[j0 + std::min(i, nb - 1)];
    }
    vec s[kKeys][QV], g[kKeys][QV];
    outer_4<QV>(d, b.s.qt.data(), kChunk, [&](int c, int i) { return kr[i][c]; }, s);
    outer_4<QV>(d, b.dot.data(), kChunk, [&](int c, int i) { return vr[i][c]; }, g);
    for (int i = 0; i < nb; ++i) {
      const float *bias = keys.bias[j0 + i];
      float *dbias = keys.dbias[j0 + i];
      for (int v = 0; v < QV; ++v) {
        vec x = s[i][v] - lse[v];
        if (bias) x += load(bias + v * kLanes);
        x = x < zero ? x : zero;  // <= 0 up to rounding
        const vec p = exp_nonpositive(x), ds = p * (g[i][v] - D[v]);
        store(P + (j0 + i) * QP + v * kLanes, p);
        store(DS + (j0 + i) * QP + v * kLanes, ds);
        if (dbias) store(dbias + v * kLanes, load(dbias + v * kLanes) + ds);
      }
    }
  }
  float *dqt = b.dqt.data();
  int c0 = 0;
  for (; c0 + kChans <= d; c0 += kChans) {
    vec acc[kChans][QV];
    outer_4<QV>(nk, DS, QP, [&](int j, int i) { return keys.k[j][c0 + i]; }, acc);
    for (int i = 0; i < kChans; ++i)
      for (int v = 0; v < QV; ++v) store(dqt + (c0 + i) * kChunk + v * kLanes, acc[i][v] * scale);
  }
  for (; c0 < d; ++c0) {
    vec acc[QV] = {};
    for (int j = 0; j < nk; ++j)
      for (int v = 0; v < QV; ++v) acc[v] += load(DS + j * QP + v * kLanes) * keys.k[j][c0];
    for (int v = 0; v < QV; ++v) store(dqt + c0 * kChunk + v * kLanes, acc[v] * scale);
  }
  for (int j0 = 0; j0 < nk; j0 += kKeys) {
    for (int c = 0; c < b.dp; c += 4 * kLanes) switch (std::min(4, (b.dp - c) / kLanes)) {
        case 1: key_grads<1>(lanes, QP, j0, c, b); break;
        case 2: key_grads<2>(lanes, QP, j0, c, b); break;
        case 3: key_grads<3>(lanes, QP, j0, c, b); break;
        default: key_grads<4>(lanes, QP, j0, c, b); break;
      }
    for (int i = 0; i < std::min(kKeys, nk - j0); ++i) {
      float *gk = keys.dk[j0 + i], *gv = keys.dv[j0 + i];
      const float *lk = b.kloc.data() + i * b.dp, *lv = b.vloc.data() + i * b.dp;
      for (int c = 0; c < d; ++c) { gk[c] += lk[c]; gv[c] += lv[c]; }
    }
  }
}

void backward(int lanes, int d, float scale, BackScratch &b) {
  switch ((lanes + kLanes - 1) / kLanes) {
    case 1: backward_block<1>(d, lanes, scale, b); break;
    case 2: backward_block<2>(d, lanes, scale, b); break;
    case 3: backward_block<3>(d, lanes, scale, b); break;
    default: backward_block<4>(d, lanes, scale, b); break;
  }
}

// dqt [d][64] -> the rows dq[i] (nullptr: none).
void scatter_dq(const BackScratch &b, float *const *dq, int d) {
  for (int i = 0; i < kChunk; ++i)
    if (dq[i])
      for (int c = 0; c < d; ++c) dq[i][c] = b.dqt.data()[c * kChunk + i];
}

// --------------------------------------------------------------------------------- windows
// The tensors of one 1D or 2D call; the gradients (d*) only in the backward.
struct Window {
  const float *q, *kv, *shared, *bias;
  const uint8_t *valid;
  float *out, *lse;
  const float *gout;
  float *dq, *dkv, *dshared, *dbias;
  int64_t B, N, C, heads, m, w, halo, G, H, W;
  float scale;
  int d() const { return static_cast<int>(C / heads); }
};

void add_shared(Keys &keys, const Window &a, int64_t b, int64_t off, bool grads) {
  for (int64_t i = 0; i < a.m; ++i) {
    const int64_t at = ((b * a.m + i) * 2) * a.C + off;
    keys.add(a.shared + at, a.shared + at + a.C, nullptr);
    if (grads) keys.add_grad(a.dshared + at, a.dshared + at + a.C, nullptr);
  }
}

// The query lanes of one block: tok[i] = the token of lane i (-1: none), on[i] = a query (not
// padded), lanes = the lanes the block spans.
struct Lanes {
  int64_t tok[kChunk];
  bool on[kChunk];
  int lanes;
};

// 1D: segment s (queries [s w, s w + w)) sees the keys [s w - halo, s w + w + halo) and the
// shared ones. Block blk of segment seg: its lanes and keys (with their gradient rows in the
// backward).
void block_1d(const Window &a, int64_t b, int64_t hh, int64_t seg, int64_t blk, Lanes &q,
              Keys &keys, bool grads) {
  const int64_t t0 = seg * a.w + blk * kChunk, off = hh * a.d();
  q.lanes = static_cast<int>(std::min<int64_t>(kChunk, a.w - blk * kChunk));
  for (int i = 0; i < kChunk; ++i) {
    const int64_t t = t0 + i;
    const bool real = i < q.lanes && t < a.N;
    q.tok[i] = real ? t : -1;
    q.on[i] = real && (!a.valid || a.valid[b * a.N + t]);
  }
  keys.reset();
  for (int64_t j = std::max<int64_t>(0, seg * a.w - a.halo);
       j < std::min(a.N, (seg + 1) * a.w + a.halo); ++j) {
    if (a.valid && !a.valid[b * a.N + j]) continue;
    const int64_t at = ((b * a.N + j) * 2) * a.C + off;
    keys.add(a.kv + at, a.kv + at + a.C, nullptr);
    if (grads) keys.add_grad(a.dkv + at, a.dkv + at + a.C, nullptr);
  }
  if (a.shared) add_shared(keys, a, b, off, grads);
}

// 2D: tokens [G global, then the H x W map row-major]; a w x w tile sees the tile plus a halo on
// every side and the shared keys; bias [heads, (w + 2 halo)^2, QT] (QT = w^2 rounded up to 16:
// the bias of window key k for tile query i at [h, k, i]); dbias [B, heads, .., QT].
void block_2d(const Window &a, int64_t b, int64_t hh, int64_t tile, int64_t blk, Lanes &q,
              Keys &keys, bool grads) {
  const int64_t w = a.w, size = w + 2 * a.halo, tiles_w = (a.W + w - 1) / w;
  const int64_t tile_q = w * w, qt_pad = (tile_q + kLanes - 1) / kLanes * kLanes;
  const int64_t ty = tile / tiles_w * w, tx = tile % tiles_w * w, off = hh * a.d();
  q.lanes = static_cast<int>(std::min<int64_t>(kChunk, tile_q - blk * kChunk));
  for (int i = 0; i < kChunk; ++i) {
    const int64_t qi = blk * kChunk + i, y = ty + qi / w, x = tx + qi % w;
    q.on[i] = i < q.lanes && y < a.H && x < a.W;
    q.tok[i] = q.on[i] ? a.G + y * a.W + x : -1;
  }
  keys.reset();
  const int64_t n = a.G + a.H * a.W;
  for (int64_t ky = 0; ky < size; ++ky) {
    const int64_t y = ty - a.halo + ky;
    if (y < 0 || y >= a.H) continue;
    for (int64_t kx = 0; kx < size; ++kx) {
      const int64_t x = tx - a.halo + kx;
      if (x < 0 || x >= a.W) continue;
      const int64_t at = ((b * n + a.G + y * a.W + x) * 2) * a.C + off;
      const int64_t b_at = (hh * size * size + ky * size + kx) * qt_pad + blk * kChunk;
      keys.add(a.kv + at, a.kv + at + a.C, a.bias ? a.bias + b_at : nullptr);
      if (grads)
        keys.add_grad(a.dkv + at, a.dkv + at + a.C,
                      a.bias ? a.dbias + b * a.heads * size * size * qt_pad + b_at : nullptr);
    }
  }
  if (a.shared) add_shared(keys, a, b, off, grads);
}

using BlockFn = void (*)(const Window &, int64_t, int64_t, int64_t, int64_t, Lanes &, Keys &,
                         bool);

// Forward work items [begin, end) of B * units * heads * blocks (heads innermost: a window's key
// rows serve every head while they are in cache); units = segments (1D) or tiles (2D).
void forward_items(const Window &a, BlockFn block, int64_t units, int64_t blocks, int max_keys,
                   int64_t begin, int64_t end) {
  const int d = a.d();
  Scratch s(d, max_keys);
  Lanes q;
  const float *qrows[kChunk];
  float *orows[kChunk], lse[kChunk];
  for (int64_t item = begin; item < end; ++item) {
    const int64_t blk = item % blocks, hh = item / blocks % a.heads;
    const int64_t unit = item / blocks / a.heads % units, b = item / blocks / a.heads / units;
    const int64_t off = hh * d;
    if (block == block_1d && hh == 0 && blk == 0 && unit + 1 < units) {
      // the next segment's new rows, from memory
      const int64_t lo = b * a.N + (unit + 1) * a.w;
      prefetch_rows(a.kv, lo + a.halo, std::min(a.w, a.N - (unit + 1) * a.w - a.halo), 2 * a.C);
      prefetch_rows(a.q, lo, std::min(a.w, a.N - (unit + 1) * a.w), a.C);
    }
    block(a, b, hh, unit, blk, q, s.keys, false);
    bool any = false;
    for (int i = 0; i < q.lanes; ++i) {
      const int64_t row = b * a.N + q.tok[i];
      qrows[i] = q.on[i] ? a.q + row * a.C + off : nullptr;
      orows[i] = q.on[i] ? a.out + row * a.C + off : nullptr;
      if (q.tok[i] >= 0 && !q.on[i]) {  // padded query: zeros
        std::memset(a.out + row * a.C + off, 0, d * sizeof(float));
        a.lse[row * a.heads + hh] = 0.f;
      }
      any |= q.on[i];
    }
    if (!any) continue;
    gather_queries(qrows, q.lanes, d, a.scale, s.qt.data());
    attend(q.lanes, d, s, lse);
    scatter_outputs(s.ot.data(), orows, q.lanes, d);
    for (int i = 0; i < q.lanes; ++i)
      if (q.on[i]) a.lse[(b * a.N + q.tok[i]) * a.heads + hh] = lse[i];
  }
}

// Backward work items [begin, end) of B * heads: each writes its own image's and head's rows.
void backward_items(const Window &a, BlockFn block, int64_t units, int64_t blocks, int max_keys,
                    int64_t begin, int64_t end) {
  BackScratch bs(a.d(), max_keys);
  Lanes lanes;
  const float *q[kChunk], *o[kChunk], *g[kChunk], *l[kChunk];
  float *dq[kChunk];
  for (int64_t item = begin; item < end; ++item) {
    const int d = a.d();
    const int64_t hh = item % a.heads, b = item / a.heads, off = hh * d;
    for (int64_t unit = 0; unit < units; ++unit)
      for (int64_t blk = 0; blk < blocks; ++blk) {
        block(a, b, hh, unit, blk, lanes, bs.s.keys, true);
        bool any = false;
        for (int i = 0; i < kChunk; ++i) {
          const bool on = lanes.on[i];
          const int64_t row = b * a.N + lanes.tok[i];
          q[i] = on ? a.q + row * a.C + off : nullptr;
          o[i] = on ? a.out + row * a.C + off : nullptr;
          g[i] = on ? a.gout + row * a.C + off : nullptr;
          l[i] = on ? a.lse + row * a.heads + hh : nullptr;
          dq[i] = on ? a.dq + row * a.C + off : nullptr;
          any |= on;
        }
        if (!any) continue;
        gather_backward(q, o, g, l, d, a.scale, bs);
        backward(lanes.lanes, d, a.scale, bs);
        scatter_dq(bs, dq, d);
      }
  }
}

}  // namespace

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

void causal_items(const CausalArgs &A, int64_t begin, int64_t end) {
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

}  // namespace

// ------------------------------------------------------------------------------ operators
namespace {

void check(const at::Tensor &t, const char *name, at::IntArrayRef shape,
           at::ScalarType dtype = at::kFloat) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == dtype, "LS attention kernel: ", name,
              " must be a CPU ", dtype, " tensor, got ", t.scalar_type(), " on ", t.device());
  TORCH_CHECK(t.is_contiguous(), "LS attention kernel: ", name, " must be contiguous");
  TORCH_CHECK(t.sizes() == shape, "LS attention kernel: ", name, " has shape ", t.sizes(),
              ", expected ", shape);
}

const float *ptr(const c10::optional<at::Tensor> &t) {
  return t ? t->data_ptr<float>() : nullptr;
}

// The checked arguments of a 1D (H = 0) or 2D call.
Window window_args(const at::Tensor &q, const at::Tensor &kv,
                   const c10::optional<at::Tensor> &shared, int64_t heads, int64_t w,
                   int64_t halo, double scale) {
  TORCH_CHECK(q.dim() == 3, "LS attention kernel: q must be [B, N, C], got ", q.sizes());
  const int64_t B = q.size(0), N = q.size(1), C = q.size(2);
  TORCH_CHECK(heads >= 1 && C % heads == 0, "LS attention kernel: ", C,
              " channels are not divisible by heads=", heads);
  TORCH_CHECK(w >= 1 && halo >= 0, "LS attention kernel: window=", w, " must be >= 1 and halo=",
              halo, " >= 0");
  check(q, "q", {B, N, C});
  check(kv, "kv", {B, N, 2, C});
  const int64_t m = shared ? shared->size(1) : 0;
  if (shared) check(*shared, "shared", {B, m, 2, C});
  Window a{};
  a.q = q.data_ptr<float>();
  a.kv = kv.data_ptr<float>();
  a.shared = ptr(shared);
  a.B = B; a.N = N; a.C = C; a.heads = heads; a.m = m; a.w = w; a.halo = halo;
  a.scale = static_cast<float>(scale);
  return a;
}

void run(int64_t items, const std::function<void(int64_t, int64_t)> &fn) {
  at::parallel_for(0, items, 1, fn);
}

Window window_1d(const at::Tensor &q, const at::Tensor &kv, const c10::optional<at::Tensor> &shared,
                 const c10::optional<at::Tensor> &valid, int64_t heads, int64_t w, int64_t halo,
                 double scale) {
  Window a = window_args(q, kv, shared, heads, w, halo, scale);
  if (valid) {
    TORCH_CHECK(valid->scalar_type() == at::kBool || valid->scalar_type() == at::kByte,
                "LS attention kernel: valid must be bool or uint8, got ", valid->scalar_type());
    check(*valid, "valid", {a.B, a.N}, valid->scalar_type());
    a.valid = static_cast<const uint8_t *>(valid->data_ptr());
  }
  return a;
}

std::tuple<at::Tensor, at::Tensor> attention_1d(
    const at::Tensor &q, const at::Tensor &kv, const c10::optional<at::Tensor> &shared,
    const c10::optional<at::Tensor> &valid, int64_t heads, int64_t window, int64_t halo,
    double scale) {
  Window a = window_1d(q, kv, shared, valid, heads, window, halo, scale);
  at::Tensor out = at::empty_like(q), lse = at::empty({a.B, a.N, heads}, q.options());
  a.out = out.data_ptr<float>();
  a.lse = lse.data_ptr<float>();
  const int64_t segs = (a.N + window - 1) / window, blocks = (window + kChunk - 1) / kChunk;
  const int max_keys = static_cast<int>(window + 2 * halo + a.m);
  run(a.B * segs * heads * blocks, [&](int64_t begin, int64_t end) {
    forward_items(a, block_1d, segs, blocks, max_keys, begin, end);
  });
  return {out, lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_1d_backward(
    const at::Tensor &gout, const at::Tensor &q, const at::Tensor &kv,
    const c10::optional<at::Tensor> &shared, const c10::optional<at::Tensor> &valid,
    const at::Tensor &out, const at::Tensor &lse, int64_t heads, int64_t window, int64_t halo,
    double scale) {
  Window a = window_1d(q, kv, shared, valid, heads, window, halo, scale);
  check(gout, "grad_out", q.sizes());
  check(out, "out", q.sizes());
  check(lse, "lse", {a.B, a.N, heads});
  at::Tensor dq = at::zeros_like(q), dkv = at::zeros_like(kv);
  at::Tensor dshared = shared ? at::zeros_like(*shared) : at::empty({0}, q.options());
  a.out = out.data_ptr<float>(); a.lse = lse.data_ptr<float>(); a.gout = gout.data_ptr<float>();
  a.dq = dq.data_ptr<float>(); a.dkv = dkv.data_ptr<float>();
  a.dshared = shared ? dshared.data_ptr<float>() : nullptr;
  const int64_t segs = (a.N + window - 1) / window, blocks = (window + kChunk - 1) / kChunk;
  const int max_keys = static_cast<int>(window + 2 * halo + a.m);
  run(a.B * heads, [&](int64_t begin, int64_t end) {
    backward_items(a, block_1d, segs, blocks, max_keys, begin, end);
  });
  return {dq, dkv, dshared};
}

Window window_2d(const at::Tensor &q, const at::Tensor &kv, const c10::optional<at::Tensor> &shared,
                 const c10::optional<at::Tensor> &bias, int64_t height, int64_t width,
                 int64_t heads, int64_t w, int64_t halo, double scale) {
  Window a = window_args(q, kv, shared, heads, w, halo, scale);
  TORCH_CHECK(height >= 1 && width >= 1 && a.N >= height * width, "LS attention kernel: ",
              a.N, " tokens cannot hold a ", height, " x ", width, " map");
  a.H = height; a.W = width; a.G = a.N - height * width;
  if (bias) {
    const int64_t size = w + 2 * halo, qt_pad = (w * w + kLanes - 1) / kLanes * kLanes;
    check(*bias, "bias", {heads, size * size, qt_pad});
    a.bias = bias->data_ptr<float>();
  }
  return a;
}

int64_t tiles(const Window &a) { return (a.H + a.w - 1) / a.w * ((a.W + a.w - 1) / a.w); }

std::tuple<at::Tensor, at::Tensor> attention_2d(
    const at::Tensor &q, const at::Tensor &kv, const c10::optional<at::Tensor> &shared,
    const c10::optional<at::Tensor> &bias, int64_t height, int64_t width, int64_t heads,
    int64_t window, int64_t halo, double scale) {
  Window a = window_2d(q, kv, shared, bias, height, width, heads, window, halo, scale);
  at::Tensor out = at::empty_like(q), lse = at::empty({a.B, a.N, heads}, q.options());
  out.narrow(1, 0, a.G).zero_();  // the global rows are not computed here
  lse.narrow(1, 0, a.G).zero_();
  a.out = out.data_ptr<float>();
  a.lse = lse.data_ptr<float>();
  const int64_t size = window + 2 * halo, blocks = (window * window + kChunk - 1) / kChunk;
  const int max_keys = static_cast<int>(size * size + a.m);
  run(a.B * tiles(a) * heads * blocks, [&](int64_t begin, int64_t end) {
    forward_items(a, block_2d, tiles(a), blocks, max_keys, begin, end);
  });
  return {out, lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> attention_2d_backward(
    const at::Tensor &gout, const at::Tensor &q, const at::Tensor &kv,
    const c10::optional<at::Tensor> &shared, const c10::optional<at::Tensor> &bias,
    const at::Tensor &out, const at::Tensor &lse, int64_t height, int64_t width, int64_t heads,
    int64_t window, int64_t halo, double scale) {
  Window a = window_2d(q, kv, shared, bias, height, width, heads, window, halo, scale);
  check(gout, "grad_out", q.sizes());
  check(out, "out", q.sizes());
  check(lse, "lse", {a.B, a.N, heads});
  at::Tensor dq = at::zeros_like(q), dkv = at::zeros_like(kv);
  at::Tensor dshared = shared ? at::zeros_like(*shared) : at::empty({0}, q.options());
  at::Tensor dbias = bias ? at::zeros({a.B, bias->size(0), bias->size(1), bias->size(2)},
                                      q.options())
                          : at::empty({0}, q.options());
  a.out = out.data_ptr<float>(); a.lse = lse.data_ptr<float>(); a.gout = gout.data_ptr<float>();
  a.dq = dq.data_ptr<float>(); a.dkv = dkv.data_ptr<float>();
  a.dshared = shared ? dshared.data_ptr<float>() : nullptr;
  a.dbias = bias ? dbias.data_ptr<float>() : nullptr;
  const int64_t size = window + 2 * halo, blocks = (window * window + kChunk - 1) / kChunk;
  const int max_keys = static_cast<int>(size * size + a.m);
  run(a.B * heads, [&](int64_t begin, int64_t end) {
    backward_items(a, block_2d, tiles(a), blocks, max_keys, begin, end);
  });
  return {dq, dkv, dshared, bias ? dbias.sum(0) : dbias};
}

at::Tensor causal_attention(const at::Tensor &q, const at::Tensor &kw_t, const at::Tensor &vw,
                            const c10::optional<at::Tensor> &rt,
                            const c10::optional<at::Tensor> &u,
                            const c10::optional<at::Tensor> &v,
                            const c10::optional<at::Tensor> &kl_t,
                            const c10::optional<at::Tensor> &vl,
                            const c10::optional<at::Tensor> &st, int64_t window, int64_t hidden,
                            int64_t segment, int64_t rank, int64_t mem_segments) {
  TORCH_CHECK(q.dim() == 4, "LS attention kernel: q must be [B, h, Np, d], got ", q.sizes());
  const int64_t B = q.size(0), h = q.size(1), Np = q.size(2), d = q.size(3);
  const int64_t dp = (d + kLanes - 1) / kLanes * kLanes, w = window;
  TORCH_CHECK(w >= 1 && segment >= 1 && rank >= 0 && hidden >= 0 && hidden <= w,
              "LS attention kernel: window=", w, ", segment=", segment, ", rank=", rank,
              ", hidden=", hidden, " out of range");
  TORCH_CHECK(Np % segment == 0, "LS attention kernel: ", Np,
              " queries are not a multiple of segment=", segment);
  check(q, "q", {B, h, Np, d});
  check(kw_t, "kw_t", {B, h, d, w + Np + 32});
  check(vw, "vw", {B, h, w + Np, dp});
  TORCH_CHECK(rt.has_value() == u.has_value() && u.has_value() == v.has_value(),
              "LS attention kernel: rt, u and v go together (relative positions)");
  if (rt) {
    check(*rt, "rt", {h, d, w + 16});
    check(*u, "u", {h, d});
    check(*v, "v", {h, d});
  }
  TORCH_CHECK(kl_t.has_value() == vl.has_value(), "LS attention kernel: kl_t and vl go together");
  const int64_t P = kl_t ? vl->size(2) : 0;
  if (kl_t) {
    check(*kl_t, "kl_t", {B, h, d, P + 16});
    check(*vl, "vl", {B, h, P, dp});
    TORCH_CHECK(P >= rank * (mem_segments + Np / segment - 1), "LS attention kernel: ", P,
                " compressed keys, the last segment sees ", rank * (mem_segments + Np / segment - 1));
  }
  if (st) {
    TORCH_CHECK(kl_t && rt, "LS attention kernel: st needs kl_t and rt");
    check(*st, "st", {h, d, P + 16});
  }
  at::Tensor out = at::empty({B, Np, h, d}, q.options());
  const CausalArgs args{q.data_ptr<float>(), kw_t.data_ptr<float>(), vw.data_ptr<float>(),
                        ptr(rt), ptr(u), ptr(v), ptr(kl_t), ptr(vl), ptr(st),
                        out.data_ptr<float>(), B, h, Np, d, dp, w, hidden, segment, rank,
                        mem_segments, P, w + Np + 32, w + 16, P + 16};
  run(B * h * ((Np + kChunk - 1) / kChunk),
      [&](int64_t begin, int64_t end) { causal_items(args, begin, end); });
  return out;
}

void layer_norm_(at::Tensor &x, const at::Tensor &weight, const at::Tensor &bias, double eps) {
  TORCH_CHECK(x.dim() >= 1, "LS attention kernel: layer_norm_ needs x with channels");
  const int64_t C = x.size(-1);
  check(x, "x", x.sizes());
  check(weight, "weight", {C});
  check(bias, "bias", {C});
  float *data = x.data_ptr<float>();
  run(x.numel() / C, [&](int64_t begin, int64_t end) {
    layer_norm_rows(data, weight.data_ptr<float>(), bias.data_ptr<float>(), C,
                    static_cast<float>(eps), begin, end);
  });
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("window_attention_1d", &attention_1d);
  m.def("window_attention_1d_backward", &attention_1d_backward);
  m.def("window_attention_2d", &attention_2d);
  m.def("window_attention_2d_backward", &attention_2d_backward);
  m.def("causal_attention", &causal_attention);
  m.def("layer_norm_", &layer_norm_);
}
