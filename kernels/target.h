// The part of a kernels/ file compiled for an instruction set beyond the
// baseline x86-64 the rest of the build targets:
//
//   LAYERPOOL_BEGIN_AVX2   ... LAYERPOOL_END_AVX2    AVX2 + FMA + F16C
//                                                    (CpuIsa::kAvx2)
//   LAYERPOOL_BEGIN_AVX512 ... LAYERPOOL_END_AVX512  that plus AVX-512
//                                                    F/BW/DQ/VL + VNNI
//                                                    (CpuIsa::kAvx512)
//
// Every function defined in between gets the target, so it may only be
// called once the CPU is known to have it (ActiveIsa, vec_dot.h). The
// simd_*.h headers of inline helpers are included inside a region on
// purpose: their functions take its target, and their unnamed namespace
// keeps each file's copies to itself. Standard-library templates are not
// used inside: an inline function instantiated there would be target code
// that the linker might pick for baseline callers elsewhere.
//
// The AVX-512 region also silences -Wuninitialized: GCC 12's
// avx512fintrin.h builds its "undefined" vectors by self-initialisation,
// which the warning reports at every inlined use.
#ifndef LAYERPOOL_KERNELS_TARGET_H_
#define LAYERPOOL_KERNELS_TARGET_H_

#if defined(__clang__)
// Clang has no GCC target pragmas; an attribute pushed over the region does
// the same (the fuzz build, tests/fuzz/run.sh, uses clang). One literal
// each, as _Pragma wants.
#define LAYERPOOL_BEGIN_AVX2 \
  _Pragma("clang attribute push (__attribute__((target(\"avx2,fma,f16c\"))), apply_to = function)")
#define LAYERPOOL_END_AVX2 _Pragma("clang attribute pop")
#define LAYERPOOL_BEGIN_AVX512 \
  _Pragma("clang attribute push (__attribute__((target(\"avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx2,fma,f16c\"))), apply_to = function)")
#define LAYERPOOL_END_AVX512 _Pragma("clang attribute pop")
#else
#define LAYERPOOL_BEGIN_AVX2 \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma,f16c\")")
#define LAYERPOOL_END_AVX2 _Pragma("GCC pop_options")

// (_Pragma takes one string literal, so the target list is one line.)
#define LAYERPOOL_BEGIN_AVX512                                                            \
  _Pragma("GCC push_options")                                                             \
  _Pragma("GCC target(\"avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx2,fma,f16c\")") \
  _Pragma("GCC diagnostic push")                                                          \
  _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")                                   \
  _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define LAYERPOOL_END_AVX512 \
  _Pragma("GCC diagnostic pop") _Pragma("GCC pop_options")
#endif

#endif  // LAYERPOOL_KERNELS_TARGET_H_
