// Refuses to start on a CPU without the instruction set Strata was compiled for (STRATA_CPU_TARGET), with one
// clear line instead of an illegal instruction somewhere in a kernel. Runs before every C++ static initialiser,
// compiled for the plain x86-64 baseline so that the check itself runs on any x86-64 CPU.
#if defined(__x86_64__) && defined(__GNUC__)
#include <cstdio>
#include <cstdlib>

namespace {

__attribute__((target("arch=x86-64"))) bool supported(const char* name) {
  // __builtin_cpu_supports takes string literals only, hence the table of calls.
#define STRATA_CPU_FEATURE(f) \
  if (__builtin_strcmp(name, f) == 0) return __builtin_cpu_supports(f);
  STRATA_CPU_FEATURE("avx")
  STRATA_CPU_FEATURE("avx2")
  STRATA_CPU_FEATURE("fma")
  STRATA_CPU_FEATURE("bmi2")
  STRATA_CPU_FEATURE("avx512f")
  STRATA_CPU_FEATURE("avx512bw")
  STRATA_CPU_FEATURE("avx512vl")
  STRATA_CPU_FEATURE("avx512dq")
  STRATA_CPU_FEATURE("avx512bf16")
  STRATA_CPU_FEATURE("avx512fp16")
#undef STRATA_CPU_FEATURE
  return true;
}

// The features this translation unit was compiled with are those of the whole build (same -march).
constexpr const char* kRequired[] = {
#ifdef __AVX__
    "avx",
#endif
#ifdef __AVX2__
    "avx2",
#endif
#ifdef __FMA__
    "fma",
#endif
#ifdef __BMI2__
    "bmi2",
#endif
#ifdef __AVX512F__
    "avx512f",
#endif
#ifdef __AVX512BW__
    "avx512bw",
#endif
#ifdef __AVX512VL__
    "avx512vl",
#endif
#ifdef __AVX512DQ__
    "avx512dq",
#endif
#ifdef __AVX512BF16__
    "avx512bf16",
#endif
#ifdef __AVX512FP16__
    "avx512fp16",
#endif
    nullptr,  // keeps the array non-empty on a plain x86-64 build
};

__attribute__((constructor(101), target("arch=x86-64"))) void require_compiled_cpu_features() {
  __builtin_cpu_init();
  for (const char* feature : kRequired) {
    if (feature == nullptr || supported(feature)) continue;
    std::fprintf(stderr,
                 "strata: error: this CPU lacks %s, which this build requires (built with STRATA_CPU_TARGET=%s); "
                 "rebuild with -DSTRATA_CPU_TARGET=x86-64-v3 or an older target for this machine\n",
                 feature, STRATA_CPU_TARGET_NAME);
    std::_Exit(2);
  }
}

}  // namespace
#endif
