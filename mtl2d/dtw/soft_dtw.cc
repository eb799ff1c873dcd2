// Soft-DTW value and gradient on CPU, as XLA FFI custom calls (mtl2d.dtw._soft_dtw_native).
//
// For each pair b of a batch, with n = x_len[b] <= N, m = y_len[b] <= M, d features and
// gamma = gamma[b] (an operand, so that it may be traced: jit, vmap and grad over gamma):
//   cost(i, j) = sum_f (x[b, i, f] - y[b, j, f])^2,
//   R(i, j) = cost(i, j) + softmin_gamma(R(i-1, j), R(i, j-1), R(i-1, j-1)), R(-1, -1) = 0,
//   value[b] = R(n-1, m-1),
// over the cells of the Sakoe-Chiba band of mtl2d.dtw (all cells for window < 0). The gradient
// is Cuturi & Blondel's backward recursion E(i, j) = sum over successors s of E(s) * w(s <- (i, j))
// with w the softmin weights, and d value / d x_i = sum_j 2 E(i, j) (x_i - y_j) (y likewise).
//
// Layout. Cells are visited by anti-diagonals k = i + j; the cells of one diagonal do not
// depend on each other, so the inner loop over i runs 8 cells per AVX2 vector (GCC vector
// extensions; the compiler's scalar code elsewhere). A diagonal lives in a buffer indexed by i,
// so the three predecessors of cell i are buf[k-1][i-1], buf[k-1][i] and buf[k-2][i-1]; y is
// stored reversed so that y_j = yr[m-1-k+i] is contiguous in i too. The band is an interval of i
// on every diagonal (the band is convex along anti-diagonals), computed exactly in integers.
//
// Transcendentals. After subtracting the minimum of the three predecessors, the softmin is
// min - gamma * log(1 + e1 + e2) with e1, e2 = exp(-(mid - min) / gamma), exp(-(max - min) / gamma):
// two exponentials and one logarithm of a number in [1, 3]. exp is 2^t with a degree-5
// polynomial on [-0.5, 0.5] (relative error 2e-7) and log is 2 atanh((s-1)/(s+1)) with a degree-5
// polynomial (absolute error 2e-7 on [1, 3]); both are branch-free so that they vectorise. The
// backward recomputes the weights from the stored R of the predecessors (two exponentials and a
// division per cell) instead of storing three weights per cell: differences of nearby R values
// are exact, so small gamma keeps its precision, and memory is one float per cell.
//
// Memory. Value: three diagonals per pair. Value and gradient: R of every band cell of the pair
// ("full"), or, with `segment` K > 0, only the two diagonals before every K-th one; the backward
// then recomputes K diagonals at a time from those checkpoints (one extra forward pass, memory
// O((n + m) / K * n + K * n) instead of O(n * m)). Pairs are independent and are taken by XLA's
// intra-op threads and the caller, each with its own scratch; one pair runs on one thread.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

typedef float V8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32_t V8i __attribute__((vector_size(32), aligned(4), may_alias));
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kLog2e = 1.4426950408889634f;

// ------------------------------------------------------------------------------------------
// Branch-free math, one template for scalars and vectors.

inline float Select(bool c, float a, float b) { return c ? a : b; }
inline V8 Select(V8i c, V8 a, V8 b) { return c ? a : b; }
inline int32_t AsInt(float v) {
  int32_t i;
  std::memcpy(&i, &v, 4);
  return i;
}
inline V8i AsInt(V8 v) { return reinterpret_cast<V8i&>(v); }
inline float AsFloat(int32_t i) {
  float v;
  std::memcpy(&v, &i, 4);
  return v;
}
inline V8 AsFloat(V8i v) { return reinterpret_cast<V8&>(v); }
template <class T> inline T Splat(float v) { return T{} + v; }
template <class T> inline T Min(T a, T b) { return Select(a < b, a, b); }
template <class T> inline T Max(T a, T b) { return Select(a < b, b, a); }

// 2^t for t <= 0 (and t = -inf): 0 below -127.
template <class T> inline T Exp2NonPos(T t) {
  t = Max(t, Splat<T>(-127.0f));
  // Adding 1.5 * 2^23 rounds to the nearest integer, which then sits in the low mantissa bits.
  const T shifted = t + 12582912.0f;
  const T n = shifted - 12582912.0f;
  const T f = t - n;
  T p = Splat<T>(0.00132765f);
  p = p * f + 0.00967554f;
  p = p * f + 0.05550713f;
  p = p * f + 0.2402212f;
  p = p * f + 0.69314697f;
  p = p * f + 1.00000007f;
  // Exponent bits of 2^n: (n + 127) << 23; n = -127 gives +0.
  const auto bits = (AsInt(shifted) - 0x4B400000 + 127) << 23;
  return p * AsFloat(bits);
}

// log(s) for s in [1, 3].
template <class T> inline T Log1to3(T s) {
  const T u = (s - 1.0f) / (s + 1.0f);
  const T z = u * u;
  T p = Splat<T>(0.18393464f);
  p = p * z + 0.08093705f;
  p = p * z + 0.14706316f;
  p = p * z + 0.19974208f;
  p = p * z + 0.33333904f;
  p = p * z + 0.99999998f;
  return 2.0f * u * p;
}

template <class T> struct Sorted3 {
  T lo, mid, hi;
};
template <class T> inline Sorted3<T> Sort3(T a, T b, T c) {
  const T lo1 = Min(a, b), hi1 = Max(a, b);
  const T t = Max(lo1, c);
  return {Min(lo1, c), Min(hi1, t), Max(hi1, t)};
}

// softmin_gamma(a, b, c); +inf when all three are +inf. neg_k = -log2(e) / gamma.
template <class T> inline T SoftMin(T a, T b, T c, float gamma, float neg_k) {
  const Sorted3<T> s = Sort3(a, b, c);
  const auto finite = s.lo < kInf;
  const T e1 = Exp2NonPos(Select(finite, (s.mid - s.lo) * neg_k, Splat<T>(-kInf)));
  const T e2 = Exp2NonPos(Select(finite, (s.hi - s.lo) * neg_k, Splat<T>(-kInf)));
  return s.lo - gamma * Log1to3(1.0f + e1 + e2);
}

// Softmin weights of (a, b, c): exp(-(v - softmin) / gamma). Zero when all three are +inf.
template <class T> inline void Weights(T a, T b, T c, float neg_k, T* wa, T* wb, T* wc) {
  const Sorted3<T> s = Sort3(a, b, c);
  const auto finite = s.lo < kInf;
  const T e1 = Exp2NonPos(Select(finite, (s.mid - s.lo) * neg_k, Splat<T>(-kInf)));
  const T e2 = Exp2NonPos(Select(finite, (s.hi - s.lo) * neg_k, Splat<T>(-kInf)));
  const T inv = Select(finite, 1.0f / (1.0f + e1 + e2), Splat<T>(0.0f));
  const T w1 = e1 * inv, w2 = e2 * inv;
  // The minimum gets 1 / s; ties with the minimum also get 1 / s (their exp is 1).
  *wa = Select(a == s.lo, inv, Select(a == s.mid, w1, w2));
  *wb = Select(b == s.lo, inv, Select(b == s.mid, w1, w2));
  *wc = Select(c == s.lo, inv, Select(c == s.mid, w1, w2));
}

inline V8 Load(const float* p) { return *reinterpret_cast<const V8*>(p); }
inline void Store(float* p, V8 v) { *reinterpret_cast<V8*>(p) = v; }

// ------------------------------------------------------------------------------------------
// One pair.

inline int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
inline int64_t CeilDiv(int64_t a, int64_t b) { return -FloorDiv(-a, b); }

struct Pair {
  int64_t n, m, d;
  int64_t window;  // < 0: no band
  float gamma, neg_k;
  // Band interval [lo, hi] of i on diagonal k.
  void Range(int64_t k, int64_t* lo, int64_t* hi) const {
    int64_t a = std::max<int64_t>(0, k - m + 1), b = std::min<int64_t>(n - 1, k);
    if (window >= 0 && n + m > 2) {
      // Allowed iff 2 |i (m-1) - j (n-1)| <= max(2 w (min - 1), max - 1) with j = k - i, the rule
      // of mtl2d.dtw.band_mask; the left side is 2 |i (n + m - 2) - k (n - 1)|.
      const int64_t slope = n + m - 2, center = 2 * k * (n - 1);
      const int64_t t = std::max(2 * window * (std::min(n, m) - 1), std::max(n, m) - 1);
      a = std::max(a, CeilDiv(center - t, 2 * slope));
      b = std::min(b, FloorDiv(center + t, 2 * slope));
    }
    *lo = a;
    *hi = b;
  }
};

// Per-thread scratch. A diagonal buffer holds index i at position i + 1; position lo and hi + 2
// of diagonal [lo, hi] are guards (+inf for R, 0 for E), the band moves by at most one index per
// diagonal, so no other stale position is ever read.
struct Scratch {
  std::vector<float> xt, yr, gxt, gyr;  // feature-major [d][n + 16], reversed y [d][m + 16]
  std::vector<float> r[3], e[3], ca, cb, cc;
  std::vector<float> store;             // R of the kept diagonals, compact
  std::vector<int64_t> lo, hi, off;     // per diagonal k at index k + 2 (k >= -2)
  std::vector<float> ckpt;              // [segments][2][n + 18]: diagonals k0 - 2, k0 - 1
  void Resize(int64_t n, int64_t m, int64_t d) {
    const size_t w = n + 18;
    xt.assign(d * (n + 16), 0.0f);
    yr.assign(d * (m + 16), 0.0f);
    for (auto& v : r) v.assign(w, kInf);
    for (auto& v : e) v.assign(w, 0.0f);
    ca.assign(w, 0.0f);
    cb.assign(w, 0.0f);
    cc.assign(w, 0.0f);
  }
};

struct Inputs {
  const float *x, *y;
  const int32_t *xl, *yl;
  const float* gamma;  // per pair
  int64_t N, M, d;
};

// Cost + softmin for the cells [lo, hi] of diagonal k into cur.
void DiagonalForward(const Pair& p, const Scratch& s, int64_t k, int64_t lo, int64_t hi,
                     const float* p1, const float* p2, float* cur) {
  const int64_t nx = p.n + 16, ny = p.m + 16, ty0 = p.m - 1 - k;
  int64_t i = lo;
  for (; i + 8 <= hi + 1; i += 8) {
    V8 c = Splat<V8>(0.0f);
    for (int64_t f = 0; f < p.d; ++f) {
      const V8 diff = Load(&s.xt[f * nx + i]) - Load(&s.yr[f * ny + ty0 + i]);
      c += diff * diff;
    }
    Store(cur + i + 1,
          c + SoftMin(Load(p1 + i), Load(p1 + i + 1), Load(p2 + i), p.gamma, p.neg_k));
  }
  for (; i <= hi; ++i) {
    float c = 0.0f;
    for (int64_t f = 0; f < p.d; ++f) {
      const float diff = s.xt[f * nx + i] - s.yr[f * ny + ty0 + i];
      c += diff * diff;
    }
    cur[i + 1] = c + SoftMin(p1[i], p1[i + 1], p2[i], p.gamma, p.neg_k);
  }
}

// Diagonals [k0, k1), from the buffers of k0 - 2 and k0 - 1 (slots (k0 + 1) % 3, (k0 + 2) % 3).
// If keep, copies each diagonal's band to s.store at s.off.
void Forward(const Pair& p, Scratch& s, int64_t k0, int64_t k1, bool keep) {
  for (int64_t k = k0; k < k1; ++k) {
    float* cur = s.r[k % 3].data();
    const float* p1 = s.r[(k + 2) % 3].data();
    const float* p2 = s.r[(k + 1) % 3].data();
    const int64_t lo = s.lo[k + 2], hi = s.hi[k + 2];
    DiagonalForward(p, s, k, lo, hi, p1, p2, cur);
    cur[lo] = kInf;
    cur[hi + 2] = kInf;
    // Kept with both guards, so that the backward reads the store in place.
    if (keep) std::memcpy(&s.store[s.off[k + 2] + lo], cur + lo, 4 * (hi - lo + 3));
  }
}

// R of diagonal q as a buffer indexed like the diagonal buffers (positions [lo, hi + 2] valid):
// in the store if q >= k0, else the checkpoint buffer of k0 - 1 or k0 - 2.
inline const float* Diagonal(const Scratch& s, int64_t q, int64_t k0, const float* ck2,
                             const float* ck1) {
  if (q < k0) return q == k0 - 1 ? ck1 : ck2;
  return s.store.data() + s.off[q + 2];
}

// Backward over diagonals k1 - 1 down to k0, whose R are in the store; R of k0 - 1 and k0 - 2
// come from ck1 and ck2. E of diagonal k rotates through slot k % 3 (complete when k is reached).
void Backward(const Pair& p, Scratch& s, int64_t k0, int64_t k1, const float* ck2,
              const float* ck1) {
  const int64_t nx = p.n + 16, ny = p.m + 16;
  for (int64_t k = k1 - 1; k >= k0; --k) {
    const int64_t lo = s.lo[k + 2], hi = s.hi[k + 2];
    float* ek = s.e[k % 3].data();
    float* e1 = s.e[(k + 2) % 3].data();
    float* e2 = s.e[(k + 1) % 3].data();
    // The cells read positions [lo, hi + 1] of diagonal k - 1 and [lo, hi] of k - 2, inside the
    // kept positions of both since the band moves by at most one index per diagonal.
    const float* r1 = Diagonal(s, k - 1, k0, ck2, ck1);
    const float* r2 = Diagonal(s, k - 2, k0, ck2, ck1);
    const int64_t ty0 = p.m - 1 - k;
    int64_t i = lo;
    for (; i + 8 <= hi + 1; i += 8) {
      V8 wa, wb, wc;
      Weights(Load(r1 + i), Load(r1 + i + 1), Load(r2 + i), p.neg_k, &wa, &wb, &wc);
      const V8 ev = Load(ek + i + 1);
      Store(&s.ca[i + 1], ev * wa);
      Store(&s.cb[i + 1], ev * wb);
      Store(&s.cc[i + 1], ev * wc);
      const V8 e2x = 2.0f * ev;
      for (int64_t f = 0; f < p.d; ++f) {
        float* gx = &s.gxt[f * nx + i];
        float* gy = &s.gyr[f * ny + ty0 + i];
        const V8 g = e2x * (Load(&s.xt[f * nx + i]) - Load(&s.yr[f * ny + ty0 + i]));
        Store(gx, Load(gx) + g);
        Store(gy, Load(gy) - g);
      }
    }
    for (; i <= hi; ++i) {
      float wa, wb, wc;
      Weights(r1[i], r1[i + 1], r2[i], p.neg_k, &wa, &wb, &wc);
      const float ev = ek[i + 1];
      s.ca[i + 1] = ev * wa;
      s.cb[i + 1] = ev * wb;
      s.cc[i + 1] = ev * wc;
      for (int64_t f = 0; f < p.d; ++f) {
        const float g = 2.0f * ev * (s.xt[f * nx + i] - s.yr[f * ny + ty0 + i]);
        s.gxt[f * nx + i] += g;
        s.gyr[f * ny + ty0 + i] -= g;
      }
    }
    // Push to the predecessors: up (i - 1 on k - 1), left (i on k - 1), diagonal (i - 1 on k - 2).
    // With ca[lo - 1..] and cb[hi + 1] zero: e1[q] += ca[q] + cb[q - 1] over positions
    // [lo, hi + 1] (ca, cb, cc at position i + 1 for cell i).
    s.ca[hi + 2] = 0.0f;
    s.cb[lo] = 0.0f;
    const float* ca = s.ca.data();
    const float* cb = s.cb.data();
    const float* cc = s.cc.data();
    for (int64_t q = lo; q <= hi + 1; ++q) e1[q] += ca[q + 1] + cb[q];
    for (int64_t q = lo; q <= hi; ++q) e2[q] += cc[q + 1];
    // Diagonal k is done; its slot serves k - 3 next.
    std::fill(ek + lo, ek + hi + 3, 0.0f);
  }
}

void SetupPair(const Inputs& in, int64_t b, int64_t window, Pair* p, Scratch* s) {
  const int64_t n = std::clamp<int64_t>(in.xl[b], 1, in.N);
  const int64_t m = std::clamp<int64_t>(in.yl[b], 1, in.M);
  const float gamma = in.gamma[b];
  *p = Pair{n, m, in.d, window, gamma, -kLog2e / gamma};
  s->Resize(n, m, in.d);
  const float* x = in.x + b * in.N * in.d;
  const float* y = in.y + b * in.M * in.d;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t f = 0; f < in.d; ++f) s->xt[f * (n + 16) + i] = x[i * in.d + f];
  for (int64_t j = 0; j < m; ++j)
    for (int64_t f = 0; f < in.d; ++f) s->yr[f * (m + 16) + (m - 1 - j)] = y[j * in.d + f];
  const int64_t diags = n + m - 1;
  s->lo.assign(diags + 2, 0);
  s->hi.assign(diags + 2, -1);
  for (int64_t k = 0; k < diags; ++k) p->Range(k, &s->lo[k + 2], &s->hi[k + 2]);
  // Diagonal -2 (slot 1) holds the virtual start R(-1, -1) = 0 at position 0; the rest is +inf.
  for (auto& v : s->r) std::fill(v.begin(), v.end(), kInf);
  s->r[1][0] = 0.0f;
}

float Value(const Inputs& in, int64_t b, int64_t window, Scratch& s) {
  Pair p;
  SetupPair(in, b, window, &p, &s);
  const int64_t last = p.n + p.m - 2;
  Forward(p, s, 0, last + 1, false);
  return s.r[last % 3][p.n];  // cell (n - 1, m - 1)
}

// segment <= 0: keep R of every band cell; otherwise checkpoints every `segment` diagonals.
float ValueGrad(const Inputs& in, int64_t b, int64_t window, int64_t segment, Scratch& s,
                float* gx, float* gy) {
  Pair p;
  SetupPair(in, b, window, &p, &s);
  const int64_t n = p.n, m = p.m, d = p.d, last = n + m - 2, diags = last + 1;
  const int64_t seg = segment > 0 ? std::min(segment, diags) : diags;
  const int64_t segments = (diags + seg - 1) / seg, w = n + 18;
  s.gxt.assign(d * (n + 16), 0.0f);
  s.gyr.assign(d * (m + 16), 0.0f);
  s.off.assign(diags + 2, 0);
  // Diagonal k keeps positions [lo, hi + 2] at store[off + lo ...]; a lead of n + 2 floats keeps
  // off itself inside the store (lo <= n).
  int64_t cells = 0;
  for (int64_t q = 0; q < segments; ++q) {
    int64_t c = n + 2;
    for (int64_t k = q * seg; k < std::min(diags, (q + 1) * seg); ++k) {
      s.off[k + 2] = c - s.lo[k + 2];
      c += s.hi[k + 2] - s.lo[k + 2] + 3;
    }
    cells = std::max(cells, c);
  }
  s.store.resize(cells);
  s.ckpt.resize(segments * 2 * w);
  for (int64_t q = 0; q < segments; ++q) {
    const int64_t k0 = q * seg;
    std::copy(s.r[(k0 + 1) % 3].begin(), s.r[(k0 + 1) % 3].end(), &s.ckpt[2 * q * w]);
    std::copy(s.r[(k0 + 2) % 3].begin(), s.r[(k0 + 2) % 3].end(), &s.ckpt[(2 * q + 1) * w]);
    // The last segment keeps its diagonals: its backward needs no recomputation.
    Forward(p, s, k0, std::min(diags, k0 + seg), q == segments - 1);
  }
  const float value = s.r[last % 3][n];
  s.e[last % 3][n] = 1.0f;
  for (int64_t q = segments - 1; q >= 0; --q) {
    const int64_t k0 = q * seg, k1 = std::min(diags, k0 + seg);
    const float* ck2 = &s.ckpt[2 * q * w];
    const float* ck1 = &s.ckpt[(2 * q + 1) * w];
    if (q != segments - 1) {
      std::copy(ck2, ck2 + w, s.r[(k0 + 1) % 3].begin());
      std::copy(ck1, ck1 + w, s.r[(k0 + 2) % 3].begin());
      Forward(p, s, k0, k1, true);
    }
    Backward(p, s, k0, k1, ck2, ck1);
  }
  s.e[last % 3][n] = 0.0f;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t f = 0; f < d; ++f) gx[i * d + f] = s.gxt[f * (n + 16) + i];
  for (int64_t j = 0; j < m; ++j)
    for (int64_t f = 0; f < d; ++f) gy[j * d + f] = s.gyr[f * (m + 16) + (m - 1 - j)];
  return value;
}

// ------------------------------------------------------------------------------------------
// Batches: pairs are handed out one at a time to XLA's intra-op threads and the caller.

template <class F> void ParallelPairs(ffi::ThreadPool& pool, int64_t pairs, F fn) {
  struct Work {
    std::atomic<int64_t> next{0};
    int64_t done = 0;
    std::mutex mu;
    std::condition_variable cv;
  };
  auto work = std::make_shared<Work>();
  auto run = [work, pairs, fn] {
    Scratch s;
    int64_t finished = 0;
    for (int64_t b; (b = work->next.fetch_add(1)) < pairs;) {
      fn(b, s);
      ++finished;
    }
    std::lock_guard<std::mutex> lock(work->mu);
    work->done += finished;
    if (work->done == pairs) work->cv.notify_all();
  };
  const int64_t threads = std::min<int64_t>(pairs, pool.num_threads() + 1);
  for (int64_t t = 1; t < threads; ++t) pool.Schedule([run] { run(); });
  run();
  std::unique_lock<std::mutex> lock(work->mu);
  work->cv.wait(lock, [&] { return work->done == pairs; });
}

ffi::Error CheckShapes(const char* name, ffi::Buffer<ffi::F32>& x, ffi::Buffer<ffi::F32>& y,
                       ffi::Buffer<ffi::S32>& xl, ffi::Buffer<ffi::S32>& yl,
                       ffi::Buffer<ffi::F32>& gamma, Inputs* in, int64_t* pairs) {
  const auto xd = x.dimensions(), yd = y.dimensions(), ld = xl.dimensions();
  const size_t r = ld.size();
  if (xd.size() != r + 2 || yd.size() != r + 2 || yl.dimensions().size() != r ||
      gamma.dimensions().size() != r)
    return ffi::Error::InvalidArgument(
        std::string(name) + ": x [..., N, D], y [..., M, D], x_len, y_len, gamma [...] expected");
  int64_t count = 1;
  for (size_t a = 0; a < r; ++a) {
    if (xd[a] != ld[a] || yd[a] != ld[a] || yl.dimensions()[a] != ld[a] ||
        gamma.dimensions()[a] != ld[a])
      return ffi::Error::InvalidArgument(std::string(name) + ": batch dimensions disagree");
    count *= ld[a];
  }
  if (xd[r + 1] != yd[r + 1] || xd[r] < 1 || yd[r] < 1)
    return ffi::Error::InvalidArgument(std::string(name) + ": empty series or feature mismatch");
  *in = Inputs{x.typed_data(), y.typed_data(), xl.typed_data(), yl.typed_data(),
               gamma.typed_data(), xd[r], yd[r], xd[r + 1]};
  *pairs = count;
  return ffi::Error::Success();
}

ffi::Error ValueImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> y,
                     ffi::Buffer<ffi::S32> xl, ffi::Buffer<ffi::S32> yl,
                     ffi::Buffer<ffi::F32> gamma, ffi::ResultBuffer<ffi::F32> value,
                     int64_t window) {
  Inputs in;
  int64_t pairs;
  if (auto err = CheckShapes("mtl2d_soft_dtw", x, y, xl, yl, gamma, &in, &pairs); err.failure())
    return err;
  float* out = value->typed_data();
  ParallelPairs(pool, pairs, [&](int64_t b, Scratch& s) { out[b] = Value(in, b, window, s); });
  return ffi::Error::Success();
}

ffi::Error ValueGradImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> y,
                         ffi::Buffer<ffi::S32> xl, ffi::Buffer<ffi::S32> yl,
                         ffi::Buffer<ffi::F32> gamma, ffi::ResultBuffer<ffi::F32> value,
                         ffi::ResultBuffer<ffi::F32> gx, ffi::ResultBuffer<ffi::F32> gy,
                         int64_t window, int64_t segment) {
  Inputs in;
  int64_t pairs;
  if (auto err = CheckShapes("mtl2d_soft_dtw_grad", x, y, xl, yl, gamma, &in, &pairs);
      err.failure())
    return err;
  float* out = value->typed_data();
  float* gxo = gx->typed_data();
  float* gyo = gy->typed_data();
  // Rows beyond a pair's length get zero gradient.
  std::memset(gxo, 0, 4 * pairs * in.N * in.d);
  std::memset(gyo, 0, 4 * pairs * in.M * in.d);
  ParallelPairs(pool, pairs, [&](int64_t b, Scratch& s) {
    out[b] = ValueGrad(in, b, window, segment, s, gxo + b * in.N * in.d, gyo + b * in.M * in.d);
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(Mtl2dSoftDtw, ValueImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("window"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(Mtl2dSoftDtwGrad, ValueGradImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("window")
                                  .Attr<int64_t>("segment"));
