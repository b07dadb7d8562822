// In a file of its own so the replaced operators are never inlined next to
// a new-expression (GCC's -Wmismatched-new-delete would flag the free()).
#include "model/sampling/allocation_counter.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<long> g_allocations{0};
std::atomic<long> g_bytes{0};
}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  g_bytes.fetch_add(static_cast<long>(size), std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace layerpool::testing {
long AllocationCount() { return g_allocations.load(); }
long AllocatedBytes() { return g_bytes.load(); }
}  // namespace layerpool::testing
