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
constexpr int kKeys = 4;     // keys per step of the score product
constexpr int kChans = 4;    // value channels per step of the value product

typedef float vec __attribute__((vector_size(kLanes * sizeof(float))));
typedef int32_t ivec __attribute__((vector_size(kLanes * sizeof(int32_t))));

inline vec load(const float *p) { vec v; std::memcpy(&v, p, sizeof v); return v; }
inline void store(float *p, vec v) { std::memcpy(p, &v, sizeof v); }
inline vec splat(float x) { return vec{} + x; }

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
    for (int c = 0; c < d; ++c) {
      vec qv[QV];
      for (int v = 0; v < QV; ++v) qv[v] = load(qt + c * kChunk + v * kLanes);
      for (int i = 0; i < kKeys; ++i) {
        const float kc = kr[i][c];
        for (int v = 0; v < QV; ++v) acc[i][v] += qv[v] * kc;
      }
    }
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
    for (int j = 0; j < nk; ++j) {
      vec p[QV];
      for (int v = 0; v < QV; ++v) p[v] = load(scores + j * QP + v * kLanes);
      const float *vr = keys.v[j] + c0;
      for (int i = 0; i < kChans; ++i) {
        const float vc = vr[i];
        for (int v = 0; v < QV; ++v) acc[i][v] += p[v] * vc;
      }
    }
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

void add_shared(Keys &keys, const float *shared, int64_t b, int64_t m, int64_t c, int64_t off) {
  for (int64_t i = 0; i < m; ++i) {
    const float *row = shared + ((b * m + i) * 2) * c + off;
    keys.add(row, row + c, nullptr);
  }
}

}  // namespace

extern "C" {

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
    const int64_t blk = item % blocks, seg = item / blocks % segs;
    const int64_t hh = item / blocks / segs % heads, b = item / blocks / segs / heads;
    const int64_t off = hh * d;
    const int64_t t0 = seg * w + blk * kChunk;
    const int lanes = static_cast<int>(std::min<int64_t>(kChunk, w - blk * kChunk));
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
    const int64_t blk = item % blocks, tile = item / blocks % (tiles_h * tiles_w);
    const int64_t hh = item / blocks / (tiles_h * tiles_w) % heads;
    const int64_t b = item / blocks / (tiles_h * tiles_w) / heads;
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
