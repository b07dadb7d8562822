// Test support: this binary replaces global operator new/delete (in
// allocation_counter.cc) to count heap allocations, so a test can show that
// a code path allocates nothing, or how much it asks for.
#ifndef LAYERPOOL_MODEL_SAMPLING_ALLOCATION_COUNTER_H_
#define LAYERPOOL_MODEL_SAMPLING_ALLOCATION_COUNTER_H_

namespace layerpool::testing {

// Calls to the global operator new (and new[]) so far in this process.
long AllocationCount();

// Bytes asked of the global operator new (and new[]) so far, never
// decreased by frees.
long AllocatedBytes();

}  // namespace layerpool::testing

#endif  // LAYERPOOL_MODEL_SAMPLING_ALLOCATION_COUNTER_H_
