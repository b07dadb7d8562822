#include "tests/fuzz/gguf_cases.h"

namespace layerpool::gguf::cases {
namespace {

// Hand-assembles GGUF bytes field by field, so tests can write exactly the
// corruption they mean.
class Raw {
 public:
  template <typename T>
  Raw& Put(T v) {
    bytes_.append(reinterpret_cast<const char*>(&v), sizeof(v));
    return *this;
  }
  Raw& Str(const std::string& s) {
    Put<uint64_t>(s.size());
    bytes_ += s;
    return *this;
  }
  Raw& Header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return Put<uint32_t>(kMagic).Put<uint32_t>(version).Put(n_tensors).Put(n_kv);
  }
  Raw& KvU32(const std::string& key, uint32_t v) {
    return Str(key).Put<uint32_t>(4).Put<uint32_t>(v);
  }
  Raw& Tensor(const std::string& name, std::vector<uint64_t> dims,
              uint32_t type, uint64_t offset) {
    Str(name).Put<uint32_t>(dims.size());
    for (uint64_t d : dims) Put(d);
    return Put<uint32_t>(type).Put<uint64_t>(offset);
  }
  Raw& PadTo(size_t alignment) {
    bytes_.resize((bytes_.size() + alignment - 1) / alignment * alignment, '\0');
    return *this;
  }
  Raw& Zeros(size_t n) {
    bytes_.append(n, '\0');
    return *this;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

}  // namespace

GgufWriter ExampleWriter() {
  GgufWriter w;
  w.Set("general.architecture", Value::String("llama"));
  w.Set("u8", Value::Uint8(250));
  w.Set("i8", Value::Int8(-5));
  w.Set("u16", Value::Uint16(65000));
  w.Set("i16", Value::Int16(-32000));
  w.Set("u32", Value::Uint32(4000000000u));
  w.Set("i32", Value::Int32(-2000000000));
  w.Set("u64", Value::Uint64(uint64_t{1} << 60));
  w.Set("i64", Value::Int64(-(int64_t{1} << 60)));
  w.Set("f32", Value::Float32(0.25f));
  w.Set("f64", Value::Float64(1e-300));
  w.Set("yes", Value::Bool(true));
  w.Set("nested", Value::MakeArray(
                      ValueType::kArray,
                      {Value::MakeArray(ValueType::kString,
                                        {Value::String("a"), Value::String("")}),
                       Value::MakeArray(ValueType::kInt32, {Value::Int32(-1)})}));
  std::vector<uint8_t> f32(4 * 8 * 3);
  for (size_t i = 0; i < f32.size(); ++i) f32[i] = static_cast<uint8_t>(i);
  // Both shapes are valid, so these cannot fail.
  (void)w.AddTensor("a", GgmlType::kF32, {8, 3}, f32);
  (void)w.AddTensor("b", GgmlType::kQ8_0, {64}, std::vector<uint8_t>(68, 7));
  return w;
}

std::vector<CorruptCase> CorruptGgufCases() {
  std::vector<CorruptCase> cases;
  auto add = [&](const char* name, const Raw& raw, absl::StatusCode code,
                 const char* message) {
    cases.push_back({name, raw.bytes(), code, message});
  };
  using C = absl::StatusCode;
  add("bad-magic", Raw().Put<uint32_t>(0x46554746).Put<uint32_t>(3).Zeros(16),
      C::kInvalidArgument, "not a GGUF file");
  add("version-1", Raw().Header(0, 0, 1), C::kUnimplemented, "version 1");
  add("version-4", Raw().Header(0, 0, 4), C::kUnimplemented, "version 4");
  add("big-endian", Raw().Header(0, 0, 0x03000000), C::kUnimplemented,
      "big-endian");
  add("huge-kv-count", Raw().Header(0, uint64_t{1} << 62), C::kDataLoss,
      "metadata count");
  add("huge-tensor-count", Raw().Header(uint64_t{1} << 62, 0), C::kDataLoss,
      "tensor count");
  add("key-past-end", Raw().Header(0, 1).Put<uint64_t>(1000).Zeros(8),
      C::kDataLoss, "runs past the end");
  add("unknown-value-type", Raw().Header(0, 1).Str("k").Put<uint32_t>(13).Zeros(8),
      C::kInvalidArgument, "unknown value type 13");
  add("duplicate-key", Raw().Header(0, 2).KvU32("k", 1).KvU32("k", 2),
      C::kInvalidArgument, "duplicate key");
  add("bad-bool", Raw().Header(0, 1).Str("b").Put<uint32_t>(7).Put<uint8_t>(2),
      C::kInvalidArgument, "is not 0 or 1");
  add("huge-array",
      Raw().Header(0, 1).Str("a").Put<uint32_t>(9).Put<uint32_t>(8).Put<uint64_t>(
          uint64_t{1} << 40),
      C::kDataLoss, "cannot fit");
  {
    Raw deep;
    deep.Header(0, 1).Str("deep").Put<uint32_t>(9);
    for (int i = 0; i < 20; ++i) deep.Put<uint32_t>(9).Put<uint64_t>(1);
    deep.Put<uint32_t>(4).Put<uint64_t>(0);
    add("deep-array", deep, C::kInvalidArgument, "nested deeper");
  }
  add("alignment-not-power-of-two", Raw().Header(0, 1).KvU32("general.alignment", 48),
      C::kInvalidArgument, "not a power of two");
  add("alignment-wrong-type",
      Raw().Header(0, 1).Str("general.alignment").Put<uint32_t>(5).Put<int32_t>(32),
      C::kInvalidArgument, "expected uint32");
  add("too-many-dims",
      Raw().Header(1, 0).Tensor("t", {1, 1, 1, 1, 1}, 0, 0).PadTo(32).Zeros(4),
      C::kInvalidArgument, "5 dimensions");
  add("negative-dim",
      Raw().Header(1, 0).Tensor("t", {~uint64_t{0}}, 0, 0).PadTo(32),
      C::kInvalidArgument, "negative");
  add("elements-overflow",
      Raw().Header(1, 0).Tensor("t", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0),
      C::kInvalidArgument, "overflows");
  add("bytes-overflow",
      Raw().Header(1, 0).Tensor("t", {uint64_t{1} << 61, 2}, 0, 0),
      C::kInvalidArgument, "overflows");
  add("row-bytes-overflow",  // found by the fuzzer
      Raw().Header(1, 0).Tensor("t", {uint64_t{1} << 61}, 0, 0).PadTo(32),
      C::kInvalidArgument, "row byte size overflows");
  add("row-count-overflow-behind-empty-row",  // found by the fuzzer
      Raw().Header(1, 0).Tensor("t", {0, 256, uint64_t{1} << 56}, 0, 0).PadTo(32),
      C::kInvalidArgument, "row count overflows");
  add("unknown-tensor-type",
      Raw().Header(1, 0).Tensor("t", {4}, 4, 0).PadTo(32).Zeros(16),
      C::kInvalidArgument, "unknown tensor type 4");
  add("row-not-multiple-of-block",
      Raw().Header(1, 0).Tensor("t", {100}, 12, 0).PadTo(32).Zeros(256),
      C::kInvalidArgument, "not a multiple of the q4_K block size");
  add("misaligned-offset",
      Raw().Header(1, 0).Tensor("t", {4}, 0, 8).PadTo(32).Zeros(32),
      C::kInvalidArgument, "not a multiple of the alignment");
  add("tensor-outside-file",
      Raw().Header(1, 0).Tensor("t", {1024}, 0, 0).PadTo(32).Zeros(64),
      C::kDataLoss, "outside the data section");
  add("duplicate-tensor",
      Raw().Header(2, 0).Tensor("t", {4}, 0, 0).Tensor("t", {4}, 0, 32).PadTo(32).Zeros(64),
      C::kInvalidArgument, "duplicate tensor name");
  add("overlapping-tensors",
      Raw().Header(2, 0).Tensor("a", {16}, 0, 0).Tensor("b", {16}, 0, 32).PadTo(32).Zeros(128),
      C::kInvalidArgument, "overlap");
  add("long-tensor-name",
      Raw().Header(1, 0).Tensor(std::string(70, 'n'), {4}, 0, 0).PadTo(32).Zeros(32),
      C::kInvalidArgument, "the limit is 63");
  return cases;
}


}  // namespace layerpool::gguf::cases
