// Kernel gradient of a 2D convolution on CPU, as an XLA FFI custom call (mtl2d.models.conv_native).
//
//   dw[i, j, ci, co] = sum over b, h, w of x[b, h*sh + i - pt, w*sw + j - pl, ci] * dy[b, h, w, co]
//
// with x [B, H, W, Ci], dy [B, Ho, Wo, Co], dw [kh, kw, Ci, Co], float32, row-major (NHWC/HWIO);
// input pixels outside x are zero padding and are skipped. It is an im2col matrix product that
// reads the patches where they lie in x (tap (i, j) of output pixel w is x's pixel w*sw + j - pl
// of input row h*sh + i - pt), so nothing is copied: XLA:CPU's backward-filter convolution and
// the im2col products written in XLA both spend as long copying patches as multiplying.
//
// Work: for each group of output rows (a few KiB of input and cotangent, kept in cache) and tap
// (i, j), a [Ci, Co] tile of dw accumulates the outer products of the rows' input pixels and
// cotangents, in registers (4 x 16 floats per micro-tile).
// Output rows are split into chunks taken by XLA's intra-op threads and the caller; each chunk
// sums into its own [kh*kw*Ci, Co] buffer and the caller adds the buffers up.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// 8 floats, loaded from and stored to addresses aligned to 4 bytes only.
typedef float V8 __attribute__((vector_size(32), aligned(4), may_alias));

struct Shape {
  int64_t b, h, w, ci, ho, wo, co, kh, kw, sh, sw, pt, pl;
};

inline int64_t CeilDiv(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
inline int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Pixels of a group of output rows that one tap reads: row k's input pixel p is at
// a[k] + a0 + p * a_stride (channels contiguous), its cotangent at d[k] + d0 + p * co, for p < n.
struct RowGroup {
  const float* const* a;
  const float* const* d;
  int64_t rows, n, a_stride, a0, d0;
};

// c[r, :NV*8] += sum over the group's pixels of a[r] * d[:NV*8], for rows r < MR; the partial
// sums stay in registers for the whole group.
template <int MR, int NV>
inline void MicroTile(float* c, int64_t co, const RowGroup& g, int64_t a_off, int64_t d_off) {
  V8 acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = *reinterpret_cast<const V8*>(c + r * co + 8 * v);
  for (int64_t k = 0; k < g.rows; ++k) {
    const float* a = g.a[k] + g.a0 + a_off;
    const float* d = g.d[k] + g.d0 + d_off;
    for (int64_t p = 0; p < g.n; ++p) {
      V8 dv[NV];
      for (int v = 0; v < NV; ++v) dv[v] = *reinterpret_cast<const V8*>(d + p * co + 8 * v);
      const float* ap = a + p * g.a_stride;
      for (int r = 0; r < MR; ++r) {
        const float s = ap[r];
        for (int v = 0; v < NV; ++v) acc[r][v] += s * dv[v];
      }
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) *reinterpret_cast<V8*>(c + r * co + 8 * v) = acc[r][v];
}

// As MicroTile for `rows` rows of c and the columns from col0 on (after the last multiple of 8).
inline void ScalarColumns(float* c, int64_t rows, int64_t co, int64_t col0, const RowGroup& g,
                          int64_t a_off) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t col = col0; col < co; ++col) {
      float s = c[r * co + col];
      for (int64_t k = 0; k < g.rows; ++k)
        for (int64_t p = 0; p < g.n; ++p)
          s += g.a[k][g.a0 + a_off + p * g.a_stride + r] * g.d[k][g.d0 + p * co + col];
      c[r * co + col] = s;
    }
}

template <int MR>
inline void RowBlock(float* c, int64_t co, const RowGroup& g, int64_t a_off) {
  int64_t col = 0;
  for (; col + 16 <= co; col += 16) MicroTile<MR, 2>(c + col, co, g, a_off, col);
  if (col + 8 <= co) {
    MicroTile<MR, 1>(c + col, co, g, a_off, col);
    col += 8;
  }
  if (col < co) ScalarColumns(c, MR, co, col, g, a_off);
}

// c [ci, co] += a^T d over the group's pixels.
void Tile(float* c, int64_t ci, int64_t co, const RowGroup& g) {
  int64_t r = 0;
  for (; r + 4 <= ci; r += 4) RowBlock<4>(c + r * co, co, g, r);
  for (; r < ci; ++r) RowBlock<1>(c + r * co, co, g, r);
}

// Output rows per group: the group's input and cotangent rows stay in cache while every tile of
// dw passes over them.
constexpr int64_t kGroupBytes = 32 << 10;

// Adds the contributions of output rows [row0, row1) (flattened over batch and height) to dw.
void Rows(const Shape& s, const float* x, const float* dy, float* dw, int64_t row0,
          int64_t row1) {
  const int64_t row_bytes = 4 * (s.wo * s.co + s.kh * s.w * s.ci);
  const int64_t group = std::max<int64_t>(1, kGroupBytes / std::max<int64_t>(1, row_bytes));
  std::vector<const float*> a(group), d(group);
  for (int64_t first = row0; first < row1; first += group) {
    const int64_t last = std::min(row1, first + group);
    for (int64_t i = 0; i < s.kh; ++i) {
      // The rows of the group whose tap row i lies inside x.
      int64_t rows = 0;
      for (int64_t row = first; row < last; ++row) {
        const int64_t b = row / s.ho, hi = (row % s.ho) * s.sh + i - s.pt;
        if (hi < 0 || hi >= s.h) continue;
        a[rows] = x + (b * s.h + hi) * s.w * s.ci;
        d[rows] = dy + row * s.wo * s.co;
        ++rows;
      }
      if (rows == 0) continue;
      for (int64_t j = 0; j < s.kw; ++j) {
        // Output pixels whose tap j reads inside the row: 0 <= w*sw + j - pl < W.
        const int64_t w0 = std::max<int64_t>(0, CeilDiv(s.pl - j, s.sw));
        const int64_t w1 = std::min<int64_t>(s.wo, FloorDiv(s.w - 1 + s.pl - j, s.sw) + 1);
        if (w1 <= w0) continue;
        const RowGroup g{a.data(), d.data(), rows, w1 - w0, s.sw * s.ci,
                         (w0 * s.sw + j - s.pl) * s.ci, w0 * s.co};
        Tile(dw + (i * s.kw + j) * s.ci * s.co, s.ci, s.co, g);
      }
    }
  }
}

// Chunks of output rows claimed by whichever thread comes first; the caller claims too, so the
// call finishes even if no pool thread is free, and it waits only for chunks already started.
struct Work {
  Shape s;
  const float* x;
  const float* dy;
  int64_t rows, chunk_rows, chunks, size;
  std::vector<float> partial;  // [chunks, size]
  std::atomic<int64_t> next{0};
  int64_t done = 0;  // guarded by mu
  std::mutex mu;
  std::condition_variable cv;

  void Run() {
    for (int64_t k; (k = next.fetch_add(1)) < chunks;) {
      const int64_t row0 = k * chunk_rows, row1 = std::min(rows, row0 + chunk_rows);
      Rows(s, x, dy, partial.data() + k * size, row0, row1);
      std::lock_guard<std::mutex> lock(mu);
      if (++done == chunks) cv.notify_all();
    }
  }
};

ffi::Error WeightGradImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x,
                          ffi::Buffer<ffi::F32> dy, ffi::ResultBuffer<ffi::F32> dw, int64_t sh,
                          int64_t sw, int64_t pt, int64_t pl) {
  const auto xd = x.dimensions(), dyd = dy.dimensions(), dwd = dw->dimensions();
  if (xd.size() != 4 || dyd.size() != 4 || dwd.size() != 4)
    return ffi::Error::InvalidArgument("mtl2d_conv_weight_grad: x, dy and dw must be rank 4");
  Shape s{xd[0], xd[1], xd[2], xd[3], dyd[1], dyd[2], dyd[3], dwd[0], dwd[1], sh, sw, pt, pl};
  if (dyd[0] != s.b || dwd[2] != s.ci || dwd[3] != s.co || sh < 1 || sw < 1 || pt < 0 ||
      pl < 0)
    return ffi::Error::InvalidArgument(
        "mtl2d_conv_weight_grad: x [B,H,W,Ci], dy [B,Ho,Wo,Co] and dw [kh,kw,Ci,Co] disagree, "
        "or a stride < 1 or a negative padding was given");
  float* out = dw->typed_data();
  auto work = std::make_shared<Work>();
  work->s = s;
  work->x = x.typed_data();
  work->dy = dy.typed_data();
  work->size = s.kh * s.kw * s.ci * s.co;
  work->rows = s.b * s.ho;
  const int64_t threads = std::max<int64_t>(1, pool.num_threads() + 1);
  // A few chunks per thread balance the load; each chunk has its own accumulator.
  const int64_t want = std::min<int64_t>(work->rows, 4 * threads);
  work->chunk_rows = std::max<int64_t>(1, CeilDiv(work->rows, std::max<int64_t>(1, want)));
  work->chunks = work->rows == 0 ? 0 : CeilDiv(work->rows, work->chunk_rows);
  work->partial.assign(work->chunks * work->size, 0.0f);
  for (int64_t t = 1; t < std::min(threads, work->chunks); ++t)
    pool.Schedule([work] { work->Run(); });
  work->Run();
  {
    std::unique_lock<std::mutex> lock(work->mu);
    work->cv.wait(lock, [&] { return work->done == work->chunks; });
  }
  std::memset(out, 0, sizeof(float) * work->size);
  for (int64_t k = 0; k < work->chunks; ++k) {
    const float* p = work->partial.data() + k * work->size;
    for (int64_t e = 0; e < work->size; ++e) out[e] += p[e];
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(Mtl2dConvWeightGrad, WeightGradImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("sh")
                                  .Attr<int64_t>("sw")
                                  .Attr<int64_t>("pt")
                                  .Attr<int64_t>("pl"));
