#include "kernels/vec_dot.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/vec_dot_internal.h"

namespace layerpool::kernels {
namespace {

// One entry per on-disk ggml_type value (all below 40).
constexpr size_t kTableSize = 40;
using Table = std::array<VecDotFn, kTableSize>;

size_t Index(GgmlType type) { return static_cast<size_t>(type); }

[[noreturn]] float Unsupported(const void*, const void*, int64_t) {
  std::fprintf(stderr, "layerpool kernels: VecDot on an unsupported type\n");
  std::abort();
}

Table ScalarTable() {
  Table t;
  t.fill(&Unsupported);
  t[Index(GgmlType::kF32)] = &ref::DotF32;
  t[Index(GgmlType::kF16)] = &ref::DotF16;
  t[Index(GgmlType::kBF16)] = &ref::DotBF16;
  t[Index(GgmlType::kQ4_0)] = &ref::DotQ4_0;
  t[Index(GgmlType::kQ4_1)] = &ref::DotQ4_1;
  t[Index(GgmlType::kQ5_0)] = &ref::DotQ5_0;
  t[Index(GgmlType::kQ5_1)] = &ref::DotQ5_1;
  t[Index(GgmlType::kQ8_0)] = &ref::DotQ8_0;
  t[Index(GgmlType::kIQ4_NL)] = &ref::DotIQ4_NL;
  t[Index(GgmlType::kQ2_K)] = &ref::DotQ2_K;
  t[Index(GgmlType::kQ3_K)] = &ref::DotQ3_K;
  t[Index(GgmlType::kQ4_K)] = &ref::DotQ4_K;
  t[Index(GgmlType::kQ5_K)] = &ref::DotQ5_K;
  t[Index(GgmlType::kQ6_K)] = &ref::DotQ6_K;
  t[Index(GgmlType::kIQ4_XS)] = &ref::DotIQ4_XS;
  return t;
}

Table Avx2Table() {
  Table t = ScalarTable();
  t[Index(GgmlType::kF32)] = &avx2::DotF32;
  t[Index(GgmlType::kF16)] = &avx2::DotF16;
  t[Index(GgmlType::kBF16)] = &avx2::DotBF16;
  t[Index(GgmlType::kQ4_0)] = &avx2::DotQ4_0;
  t[Index(GgmlType::kQ4_1)] = &avx2::DotQ4_1;
  t[Index(GgmlType::kQ5_0)] = &avx2::DotQ5_0;
  t[Index(GgmlType::kQ5_1)] = &avx2::DotQ5_1;
  t[Index(GgmlType::kQ8_0)] = &avx2::DotQ8_0;
  t[Index(GgmlType::kIQ4_NL)] = &avx2::DotIQ4_NL;
  t[Index(GgmlType::kQ2_K)] = &avx2::DotQ2_K;
  t[Index(GgmlType::kQ3_K)] = &avx2::DotQ3_K;
  t[Index(GgmlType::kQ4_K)] = &avx2::DotQ4_K;
  t[Index(GgmlType::kQ5_K)] = &avx2::DotQ5_K;
  t[Index(GgmlType::kQ6_K)] = &avx2::DotQ6_K;
  t[Index(GgmlType::kIQ4_XS)] = &avx2::DotIQ4_XS;
  return t;
}

Table Avx512Table() {
  Table t = Avx2Table();
  t[Index(GgmlType::kQ4_0)] = &avx512::DotQ4_0;
  t[Index(GgmlType::kQ8_0)] = &avx512::DotQ8_0;
  t[Index(GgmlType::kQ4_K)] = &avx512::DotQ4_K;
  t[Index(GgmlType::kQ5_K)] = &avx512::DotQ5_K;
  t[Index(GgmlType::kQ6_K)] = &avx512::DotQ6_K;
  return t;
}

const Table& TableFor(CpuIsa isa) {
  static const Table scalar = ScalarTable();
  static const Table avx2 = Avx2Table();
  static const Table avx512 = Avx512Table();
  switch (isa) {
    case CpuIsa::kAvx512:
      return avx512;
    case CpuIsa::kAvx2:
      return avx2;
    case CpuIsa::kScalar:
      break;
  }
  return scalar;
}

CpuIsa Detect() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  // F16C from CPUID leaf 1 itself: clang 14's __builtin_cpu_supports does
  // not know the name.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
  const bool avx2 = __builtin_cpu_supports("avx2") &&
                    __builtin_cpu_supports("fma") && f16c;
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vl") &&
                      __builtin_cpu_supports("avx512vnni");
  if (avx512) return CpuIsa::kAvx512;
  if (avx2) return CpuIsa::kAvx2;
#endif
  return CpuIsa::kScalar;
}

CpuIsa FromEnvironment(CpuIsa detected) {
  const char* env = std::getenv("LAYERPOOL_KERNELS");
  if (env == nullptr || *env == '\0') return detected;
  if (std::strcmp(env, "scalar") == 0) return CpuIsa::kScalar;
  if (std::strcmp(env, "avx2") == 0 && detected >= CpuIsa::kAvx2) {
    return CpuIsa::kAvx2;
  }
  return detected;
}

}  // namespace

const char* IsaName(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kScalar:
      return "scalar";
    case CpuIsa::kAvx2:
      return "avx2";
    case CpuIsa::kAvx512:
      return "avx512";
  }
  return "?";
}

CpuIsa DetectedIsa() {
  static const CpuIsa isa = Detect();
  return isa;
}

CpuIsa ActiveIsa() {
  static const CpuIsa isa = FromEnvironment(DetectedIsa());
  return isa;
}

bool IsVecDotSupported(GgmlType type) {
  return Index(type) < kTableSize &&
         TableFor(CpuIsa::kScalar)[Index(type)] != &Unsupported;
}

GgmlType VecDotType(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_0:
    case GgmlType::kQ5_0:
    case GgmlType::kQ8_0:
    case GgmlType::kIQ4_NL:
      return GgmlType::kQ8_0;
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_1:
      return GgmlType::kQ8_1;
    case GgmlType::kQ2_K:
    case GgmlType::kQ3_K:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
    case GgmlType::kIQ4_XS:
      return GgmlType::kQ8_K;
    case GgmlType::kF16:
      return GgmlType::kF16;
    case GgmlType::kBF16:
      return GgmlType::kBF16;
    default:
      return GgmlType::kF32;
  }
}

VecDotFn GetVecDotFn(GgmlType type, CpuIsa isa) {
  if (Index(type) >= kTableSize) return &Unsupported;
  return TableFor(isa)[Index(type)];
}

float VecDot(GgmlType type, const void* w_row, const void* x_quantized,
             int64_t n) {
  static const Table& table = TableFor(ActiveIsa());
  const VecDotFn fn =
      Index(type) < kTableSize ? table[Index(type)] : &Unsupported;
  return fn(w_row, x_quantized, n);
}

}  // namespace layerpool::kernels
