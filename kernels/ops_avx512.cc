// AVX-512 loop of ops.cc's Silu: ggml_v_silu on whole groups of 16, the
// same operations as the scalar loop lane by lane (ops_test.cc).

#include <immintrin.h>

#include <cstdint>

#include "kernels/ops_internal.h"
#include "kernels/target.h"

LAYERPOOL_BEGIN_AVX512

#include "kernels/simd_avx512.h"  // inside the target region, on purpose

namespace layerpool::kernels::avx512 {

void SiluGroups(const float* x, int64_t n, float* y) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512 e = GgmlExpf16(_mm512_sub_ps(_mm512_setzero_ps(), v));
    _mm512_storeu_ps(y + i, _mm512_div_ps(v, _mm512_add_ps(one, e)));
  }
}

}  // namespace layerpool::kernels::avx512

LAYERPOOL_END_AVX512
