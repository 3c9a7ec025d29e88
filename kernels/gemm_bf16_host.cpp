// Host bf16 GEMMs: oneDNN's matmul primitive (public API; one primitive per shape, cached), or the bf16 values
// widened to float and CBLAS sgemm.
#include <cblas.h>

#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/error.hpp"
#include "kernels/bf16.hpp"
#include "kernels/gemm.hpp"

#ifdef STRATA_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace strata {
namespace {

void widened_sgemm(const GemmShape& s, float alpha, const uint16_t* a, int64_t stride_a, const uint16_t* b,
                   int64_t stride_b, float beta, float* c, int64_t stride_c, int count) {
  const int a_rows = s.a_rows(), a_cols = s.a_cols(), b_rows = s.b_rows(), b_cols = s.b_cols();
  // Widened compactly (ld = cols): the strided layout may leave gaps that need not be converted.
  std::vector<float> wa(size_t(a_rows) * size_t(a_cols)), wb(size_t(b_rows) * size_t(b_cols));
  for (int i = 0; i < count; ++i) {
    const uint16_t* ai = a + i * stride_a;
    const uint16_t* bi = b + i * stride_b;
    for (int r = 0; r < a_rows; ++r)
      for (int q = 0; q < a_cols; ++q) wa[size_t(r) * a_cols + q] = bf16_to_float(ai[size_t(r) * s.lda + q]);
    for (int r = 0; r < b_rows; ++r)
      for (int q = 0; q < b_cols; ++q) wb[size_t(r) * b_cols + q] = bf16_to_float(bi[size_t(r) * s.ldb + q]);
    cblas_sgemm(CblasRowMajor, s.trans_a == Trans::Yes ? CblasTrans : CblasNoTrans,
                s.trans_b == Trans::Yes ? CblasTrans : CblasNoTrans, s.m, s.n, s.k, alpha, wa.data(), a_cols, wb.data(),
                b_cols, beta, c + i * stride_c, s.ldc);
  }
}

#ifdef STRATA_HAVE_DNNL
using dnnl::memory;

struct OneDnn {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  // (m, n, k, trans_a, trans_b, lda, ldb, ldc, strides, count, alpha, beta) -> primitive
  using Key = std::tuple<int, int, int, int, int, int, int, int, int64_t, int64_t, int64_t, int, float, float>;
  struct Compiled {
    dnnl::matmul::primitive_desc pd;
    dnnl::matmul primitive;
  };
  std::map<Key, Compiled> cache;
  std::mutex mutex;

  static OneDnn& get() {
    static OneDnn instance;
    return instance;
  }

  // [count, rows, cols] as op() sees them, over a row-major stored matrix with leading dimension ld.
  static memory::desc operand(int count, int rows, int cols, bool transposed, int ld, int64_t stride) {
    const memory::dims dims{count, rows, cols};
    const memory::dims strides = transposed ? memory::dims{stride, 1, ld} : memory::dims{stride, ld, 1};
    return memory::desc(dims, memory::data_type::bf16, strides);
  }

  dnnl::matmul::primitive_desc describe(const GemmShape& s, int64_t stride_a, int64_t stride_b, int64_t stride_c,
                                        int count, float alpha, float beta) {
    const bool ta = s.trans_a == Trans::Yes, tb = s.trans_b == Trans::Yes;
    const auto a = operand(count, s.m, s.k, ta, s.lda, count > 1 ? stride_a : int64_t(s.a_rows()) * s.lda);
    const auto b = operand(count, s.k, s.n, tb, s.ldb, count > 1 ? stride_b : int64_t(s.b_rows()) * s.ldb);
    const memory::desc c({count, s.m, s.n}, memory::data_type::f32,
                         memory::dims{count > 1 ? stride_c : int64_t(s.m) * s.ldc, s.ldc, 1});
    dnnl::primitive_attr attr;
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    if (beta != 0.0f) {
      dnnl::post_ops ops;
      ops.append_sum(beta);
      attr.set_post_ops(ops);
    }
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), attr, engine);
  }

  Compiled& compiled(const GemmShape& s, int64_t stride_a, int64_t stride_b, int64_t stride_c, int count, float alpha,
                     float beta) {
    const Key key{s.m,   s.n,      s.k,      int(s.trans_a), int(s.trans_b), s.lda, s.ldb,
                  s.ldc, stride_a, stride_b, stride_c,       count,          alpha, beta};
    auto it = cache.find(key);
    if (it == cache.end()) {
      auto pd = describe(s, stride_a, stride_b, stride_c, count, alpha, beta);
      it = cache.emplace(key, Compiled{pd, dnnl::matmul(pd)}).first;
    }
    return it->second;
  }

  void run(const GemmShape& s, float alpha, const uint16_t* a, int64_t stride_a, const uint16_t* b, int64_t stride_b,
           float beta, float* c, int64_t stride_c, int count) {
    std::lock_guard lock(mutex);
    auto& mm = compiled(s, stride_a, stride_b, stride_c, count, alpha, beta);
    memory am(mm.pd.src_desc(), engine, const_cast<uint16_t*>(a));
    memory bm(mm.pd.weights_desc(), engine, const_cast<uint16_t*>(b));
    memory cm(mm.pd.dst_desc(), engine, c);
    mm.primitive.execute(stream, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    stream.wait();
  }

  // oneDNN implements bf16 matmul everywhere, but only as a slow reference loop on CPUs without AVX-512.
  bool optimised() {
    GemmShape s{Trans::No, Trans::No, 64, 64, 64, 64, 64, 64};
    const std::string impl = describe(s, 0, 0, 0, 1, 1.0f, 0.0f).impl_info_str();
    return impl.find("ref") == std::string::npos;
  }
};
#endif

}  // namespace

bool onednn_bf16_available() {
#ifdef STRATA_HAVE_DNNL
  static const bool available = [] {
    try {
      return OneDnn::get().optimised();
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return available;
#else
  return false;
#endif
}

void gemm_host_bf16(const GemmShape& s, float alpha, const uint16_t* a, int64_t stride_a, const uint16_t* b,
                    int64_t stride_b, float beta, float* c, int64_t stride_c, int count, Bf16Backend backend) {
  if (s.m == 0 || s.n == 0 || count == 0) return;
  if (backend == Bf16Backend::Auto) backend = onednn_bf16_available() ? Bf16Backend::OneDnn : Bf16Backend::WidenedSgemm;
  if (backend == Bf16Backend::WidenedSgemm)
    return widened_sgemm(s, alpha, a, stride_a, b, stride_b, beta, c, stride_c, count);
#ifdef STRATA_HAVE_DNNL
  try {
    OneDnn::get().run(s, alpha, a, stride_a, b, stride_b, beta, c, stride_c, count);
  } catch (const dnnl::error& e) {
    STRATA_FAIL("oneDNN bf16 GEMM (m {} n {} k {}) failed: {} (status {})", s.m, s.n, s.k, e.what(), int(e.status));
  }
#else
  STRATA_FAIL("bf16 GEMM through oneDNN requested, but Strata was built without oneDNN (libdnnl-dev)");
#endif
}

}  // namespace strata
