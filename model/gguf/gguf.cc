// GgufFile accessors and TensorMap. Parsing lives in parser.cc.

#include "model/gguf/gguf.h"

#include <algorithm>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace layerpool::gguf {

int64_t TensorInfo::n_rows() const {
  int64_t rows = 1;
  for (size_t d = 1; d < shape.size(); ++d) rows *= shape[d];
  return rows;
}

const Value* GgufFile::FindValue(absl::string_view key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].value;
}

namespace {

absl::Status WrongType(absl::string_view key, const Value& v,
                       absl::string_view wanted) {
  return absl::InvalidArgumentError(absl::StrCat(
      "metadata key ", key, " has type ", ValueTypeName(v.type), ", expected ",
      wanted));
}

absl::StatusOr<const Value*> Lookup(const GgufFile& file,
                                    absl::string_view key) {
  const Value* v = file.FindValue(key);
  if (v == nullptr) {
    return absl::NotFoundError(absl::StrCat("metadata key ", key, " not found"));
  }
  return v;
}

}  // namespace

absl::StatusOr<std::string> GgufFile::GetString(absl::string_view key) const {
  LP_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key));
  if (const auto* s = std::get_if<std::string>(&v->data)) return *s;
  return WrongType(key, *v, "string");
}

absl::StatusOr<uint64_t> GgufFile::GetUint(absl::string_view key) const {
  LP_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key));
  if (const auto* u = std::get_if<uint64_t>(&v->data)) return *u;
  if (const auto* i = std::get_if<int64_t>(&v->data)) {
    if (*i >= 0) return static_cast<uint64_t>(*i);
    return absl::InvalidArgumentError(
        absl::StrCat("metadata key ", key, " is negative (", *i, ")"));
  }
  return WrongType(key, *v, "an unsigned integer");
}

absl::StatusOr<int64_t> GgufFile::GetInt(absl::string_view key) const {
  LP_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key));
  if (const auto* i = std::get_if<int64_t>(&v->data)) return *i;
  if (const auto* u = std::get_if<uint64_t>(&v->data)) {
    if (*u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(*u);
    }
    return absl::InvalidArgumentError(
        absl::StrCat("metadata key ", key, " does not fit in int64"));
  }
  return WrongType(key, *v, "an integer");
}

absl::StatusOr<double> GgufFile::GetFloat(absl::string_view key) const {
  LP_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key));
  if (const auto* d = std::get_if<double>(&v->data)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&v->data)) {
    return static_cast<double>(*u);
  }
  if (const auto* i = std::get_if<int64_t>(&v->data)) {
    return static_cast<double>(*i);
  }
  return WrongType(key, *v, "a number");
}

absl::StatusOr<bool> GgufFile::GetBool(absl::string_view key) const {
  LP_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key));
  if (const auto* b = std::get_if<bool>(&v->data)) return *b;
  return WrongType(key, *v, "bool");
}

absl::StatusOr<const Array*> GgufFile::GetArray(absl::string_view key) const {
  LP_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key));
  if (const auto* a = std::get_if<Array>(&v->data)) return a;
  return WrongType(key, *v, "array");
}

const TensorInfo* GgufFile::FindTensor(absl::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

absl::StatusOr<std::span<const uint8_t>> GgufFile::TensorData(
    const TensorInfo& tensor) const {
  if (bytes_.empty() && tensor.size_bytes > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tensor ", tensor.name,
        ": file was opened without its data mapped; use TensorMap"));
  }
  // Offsets were validated against the file size when parsing.
  return bytes_.subspan(data_offset_ + tensor.offset, tensor.size_bytes);
}

uint64_t GgufFile::total_tensor_bytes() const {
  uint64_t total = 0;
  for (const TensorInfo& t : tensors_) total += t.size_bytes;
  return total;
}

int64_t GgufFile::total_elements() const {
  int64_t total = 0;
  for (const TensorInfo& t : tensors_) total += t.n_elements;
  return total;
}

absl::StatusOr<TensorMap> TensorMap::Map(
    const GgufFile& file, const std::function<bool(const TensorInfo&)>& keep) {
  if (file.path().empty()) {
    return absl::FailedPreconditionError(
        "TensorMap needs a GGUF file opened from a path");
  }
  TensorMap map;
  uint64_t begin = std::numeric_limits<uint64_t>::max();
  uint64_t end = 0;
  for (const TensorInfo& t : file.tensors()) {
    if (!keep(t)) continue;
    map.tensors_.push_back(&t);
    begin = std::min(begin, t.offset);
    end = std::max(end, t.offset + t.size_bytes);
  }
  if (map.tensors_.empty()) return map;
  map.base_offset_ = begin;
  LP_ASSIGN_OR_RETURN(
      map.mapping_,
      MappedFile::OpenRange(file.path(), file.data_offset() + begin, end - begin),
      "mapping tensors of ", file.path());
  return map;
}

const TensorInfo* TensorMap::Find(absl::string_view name) const {
  for (const TensorInfo* t : tensors_) {
    if (t->name == name) return t;
  }
  return nullptr;
}

absl::StatusOr<std::span<const uint8_t>> TensorMap::Data(
    const TensorInfo& tensor) const {
  if (std::find(tensors_.begin(), tensors_.end(), &tensor) == tensors_.end()) {
    return absl::NotFoundError(
        absl::StrCat("tensor ", tensor.name, " is not in this map"));
  }
  return mapping_.bytes().subspan(tensor.offset - base_offset_,
                                  tensor.size_bytes);
}

}  // namespace layerpool::gguf
