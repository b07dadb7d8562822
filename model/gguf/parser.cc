// Parsing and validation of the GGUF header, metadata and tensor infos.
//
// Every read goes through Cursor, which checks bounds before touching a byte
// and reports truncation as DataLoss with the byte offset. Counts read from
// the file are checked against the bytes left before anything is allocated,
// so a corrupt count cannot make us reserve terabytes.

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "model/gguf/gguf.h"

namespace layerpool::gguf {
namespace {

constexpr int kMaxArrayDepth = 8;
constexpr size_t kMaxTensorName = 63;  // GGML_MAX_NAME - 1, as llama.cpp

class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }

  template <typename T>
  absl::Status Read(T* out, absl::string_view what) {
    if (remaining() < sizeof(T)) return Truncated(what, sizeof(T));
    std::memcpy(out, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return absl::OkStatus();
  }

  absl::Status ReadString(std::string* out, absl::string_view what) {
    uint64_t length = 0;
    LP_RETURN_IF_ERROR(Read(&length, what));
    if (length > remaining()) {
      return absl::DataLossError(absl::StrCat(
          what, ": string of ", length, " bytes at byte ", pos_,
          " runs past the end of the file (", remaining(), " bytes left)"));
    }
    out->assign(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
    pos_ += length;
    return absl::OkStatus();
  }

 private:
  absl::Status Truncated(absl::string_view what, size_t need) const {
    return absl::DataLossError(absl::StrCat("truncated file: reading ", what,
                                            " needs ", need, " bytes at byte ",
                                            pos_, ", ", remaining(), " left"));
  }

  std::span<const uint8_t> bytes_;
  uint64_t pos_ = 0;
};

// Smallest encoding of one value of `type`, used to bound element counts.
uint64_t MinEncodedSize(ValueType type) {
  switch (type) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool:
      return 1;
    case ValueType::kUint16:
    case ValueType::kInt16:
      return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32:
      return 4;
    case ValueType::kString:
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64:
      return 8;
    case ValueType::kArray:
      return 12;  // element type + count
  }
  return 1;
}

bool IsKnownValueType(uint32_t raw) {
  return raw <= static_cast<uint32_t>(ValueType::kFloat64);
}

absl::Status ReadValue(Cursor& in, ValueType type, int depth, Value* out);

template <typename Stored, typename OnDisk>
absl::Status ReadScalar(Cursor& in, ValueType type, Value* out) {
  OnDisk v{};
  LP_RETURN_IF_ERROR(in.Read(&v, ValueTypeName(type)));
  out->type = type;
  out->data = static_cast<Stored>(v);
  return absl::OkStatus();
}

absl::Status ReadArray(Cursor& in, int depth, Value* out) {
  if (depth >= kMaxArrayDepth) {
    return absl::InvalidArgumentError(absl::StrCat(
        "arrays nested deeper than ", kMaxArrayDepth, " at byte ", in.pos()));
  }
  uint32_t raw_type = 0;
  uint64_t count = 0;
  LP_RETURN_IF_ERROR(in.Read(&raw_type, "array element type"));
  if (!IsKnownValueType(raw_type)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown array element type ", raw_type, " at byte ", in.pos() - 4));
  }
  const ValueType element_type = static_cast<ValueType>(raw_type);
  LP_RETURN_IF_ERROR(in.Read(&count, "array length"));
  if (count > in.remaining() / MinEncodedSize(element_type)) {
    return absl::DataLossError(absl::StrCat(
        "array of ", count, " ", ValueTypeName(element_type),
        " values at byte ", in.pos(), " cannot fit in the ", in.remaining(),
        " bytes left"));
  }
  Array array;
  array.element_type = element_type;
  array.elements.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    LP_RETURN_IF_ERROR(
        ReadValue(in, element_type, depth + 1, &array.elements[i]),
        "array element ", i);
  }
  out->type = ValueType::kArray;
  out->data = std::move(array);
  return absl::OkStatus();
}

absl::Status ReadValue(Cursor& in, ValueType type, int depth, Value* out) {
  switch (type) {
    case ValueType::kUint8: return ReadScalar<uint64_t, uint8_t>(in, type, out);
    case ValueType::kInt8: return ReadScalar<int64_t, int8_t>(in, type, out);
    case ValueType::kUint16: return ReadScalar<uint64_t, uint16_t>(in, type, out);
    case ValueType::kInt16: return ReadScalar<int64_t, int16_t>(in, type, out);
    case ValueType::kUint32: return ReadScalar<uint64_t, uint32_t>(in, type, out);
    case ValueType::kInt32: return ReadScalar<int64_t, int32_t>(in, type, out);
    case ValueType::kUint64: return ReadScalar<uint64_t, uint64_t>(in, type, out);
    case ValueType::kInt64: return ReadScalar<int64_t, int64_t>(in, type, out);
    case ValueType::kFloat32: return ReadScalar<double, float>(in, type, out);
    case ValueType::kFloat64: return ReadScalar<double, double>(in, type, out);
    case ValueType::kBool: {
      uint8_t b = 0;
      LP_RETURN_IF_ERROR(in.Read(&b, "bool"));
      if (b > 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "bool value ", int{b}, " at byte ", in.pos() - 1, " is not 0 or 1"));
      }
      out->type = type;
      out->data = b == 1;
      return absl::OkStatus();
    }
    case ValueType::kString: {
      std::string s;
      LP_RETURN_IF_ERROR(in.ReadString(&s, "string value"));
      out->type = type;
      out->data = std::move(s);
      return absl::OkStatus();
    }
    case ValueType::kArray:
      return ReadArray(in, depth, out);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown value type ", static_cast<uint32_t>(type)));
}

// a * b, or nullopt on int64 overflow (both non-negative).
std::optional<int64_t> CheckedMul(int64_t a, int64_t b) {
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) return std::nullopt;
  return a * b;
}

}  // namespace

class Parser {
 public:
  static absl::Status Run(std::span<const uint8_t> bytes, GgufFile* file);

 private:
  static absl::Status ReadHeader(Cursor& in, GgufFile* file,
                                 uint64_t* n_tensors, uint64_t* n_kv);
  static absl::Status ReadMetadata(Cursor& in, uint64_t n_kv, GgufFile* file);
  static absl::Status ReadTensorInfo(Cursor& in, uint64_t index,
                                     TensorInfo* info);
  static absl::Status CheckTensorPlacement(GgufFile* file);
};

absl::Status Parser::ReadHeader(Cursor& in, GgufFile* file,
                                uint64_t* n_tensors, uint64_t* n_kv) {
  uint32_t magic = 0;
  LP_RETURN_IF_ERROR(in.Read(&magic, "magic"));
  if (magic != kMagic) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "not a GGUF file: magic is 0x%08x, expected 0x%08x (\"GGUF\")", magic,
        kMagic));
  }
  uint32_t version = 0;
  LP_RETURN_IF_ERROR(in.Read(&version, "version"));
  if (version == 1) {
    return absl::UnimplementedError(
        "GGUF version 1 is not supported (versions 2 and 3 are); convert the "
        "file with a current llama.cpp");
  }
  if (version != 2 && version != 3) {
    if ((version & 0xFFFF) == 0 && version != 0) {
      return absl::UnimplementedError(absl::StrCat(
          "GGUF version field is ", version,
          ": this looks like a big-endian file, which is not supported"));
    }
    return absl::UnimplementedError(absl::StrCat(
        "GGUF version ", version, " is not supported (versions 2 and 3 are)"));
  }
  file->version_ = version;
  LP_RETURN_IF_ERROR(in.Read(n_tensors, "tensor count"));
  LP_RETURN_IF_ERROR(in.Read(n_kv, "metadata count"));
  // A key/value needs at least 13 bytes and a tensor info at least 24.
  if (*n_kv > in.remaining() / 13) {
    return absl::DataLossError(absl::StrCat(
        "metadata count ", *n_kv, " cannot fit in a file of ", in.remaining() + 24,
        " bytes"));
  }
  if (*n_tensors > in.remaining() / 24) {
    return absl::DataLossError(absl::StrCat(
        "tensor count ", *n_tensors, " cannot fit in a file of ",
        in.remaining() + 24, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status Parser::ReadMetadata(Cursor& in, uint64_t n_kv, GgufFile* file) {
  file->metadata_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    KeyValue kv;
    LP_RETURN_IF_ERROR(in.ReadString(&kv.key, "key"), "metadata entry ", i);
    const std::string where = absl::StrCat("metadata entry ", i, " ('", kv.key, "')");
    uint32_t raw_type = 0;
    LP_RETURN_IF_ERROR(in.Read(&raw_type, "value type"), where);
    if (!IsKnownValueType(raw_type)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": unknown value type ", raw_type));
    }
    LP_RETURN_IF_ERROR(
        ReadValue(in, static_cast<ValueType>(raw_type), 0, &kv.value), where);
    if (!file->metadata_index_.emplace(kv.key, file->metadata_.size()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": duplicate key"));
    }
    file->metadata_.push_back(std::move(kv));
  }
  if (const Value* v = file->FindValue("general.alignment")) {
    if (v->type != ValueType::kUint32) {
      return absl::InvalidArgumentError(absl::StrCat(
          "general.alignment has type ", ValueTypeName(v->type),
          ", expected uint32"));
    }
    uint64_t alignment = std::get<uint64_t>(v->data);
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "general.alignment ", alignment, " is not a power of two"));
    }
    file->alignment_ = alignment;
  }
  return absl::OkStatus();
}

absl::Status Parser::ReadTensorInfo(Cursor& in, uint64_t index,
                                    TensorInfo* info) {
  LP_RETURN_IF_ERROR(in.ReadString(&info->name, "name"), "tensor ", index);
  const std::string where = absl::StrCat("tensor ", index, " (", info->name, ")");
  if (info->name.size() > kMaxTensorName) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": name is ", info->name.size(), " bytes, the limit is ",
        kMaxTensorName));
  }
  uint32_t n_dims = 0;
  LP_RETURN_IF_ERROR(in.Read(&n_dims, "dimension count"), where);
  if (n_dims > static_cast<uint32_t>(kMaxDims)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": ", n_dims, " dimensions, at most ", kMaxDims, " allowed"));
  }
  info->shape.resize(n_dims);
  int64_t n_elements = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    uint64_t dim = 0;
    LP_RETURN_IF_ERROR(in.Read(&dim, "dimension"), where);
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": dimension ", d, " is negative"));
    }
    info->shape[d] = static_cast<int64_t>(dim);
    std::optional<int64_t> product = CheckedMul(n_elements, info->shape[d]);
    if (!product) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": element count overflows 64 bits"));
    }
    n_elements = *product;
  }
  info->n_elements = n_elements;
  // A zero-length row makes n_elements 0 however large the other dimensions
  // are, so the row count (used for sizes and offsets) is checked on its own.
  int64_t n_rows = 1;
  for (uint32_t d = 1; d < n_dims; ++d) {
    std::optional<int64_t> product = CheckedMul(n_rows, info->shape[d]);
    if (!product) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": row count overflows 64 bits"));
    }
    n_rows = *product;
  }
  uint32_t raw_type = 0;
  LP_RETURN_IF_ERROR(in.Read(&raw_type, "type"), where);
  std::optional<TypeTraits> traits = GetTypeTraits(raw_type);
  if (!traits) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": unknown tensor type ", raw_type));
  }
  info->type = static_cast<GgmlType>(raw_type);
  if (info->row_length() % traits->block_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": row length ", info->row_length(),
        " is not a multiple of the ", std::string(traits->name),
        " block size ", traits->block_size));
  }
  std::optional<int64_t> row_bytes = RowBytes(info->type, info->row_length());
  if (!row_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": row byte size overflows 64 bits"));
  }
  std::optional<int64_t> size = CheckedMul(*row_bytes, info->n_rows());
  if (!size) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": byte size overflows 64 bits"));
  }
  info->size_bytes = static_cast<uint64_t>(*size);
  LP_RETURN_IF_ERROR(in.Read(&info->offset, "data offset"), where);
  return absl::OkStatus();
}

absl::Status Parser::CheckTensorPlacement(GgufFile* file) {
  const uint64_t data_size = file->file_size_ > file->data_offset_
                                 ? file->file_size_ - file->data_offset_
                                 : 0;
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& t : file->tensors_) {
    const std::string where = absl::StrCat("tensor ", t.name);
    if (t.offset % file->alignment_ != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": data offset ", t.offset, " is not a multiple of the ",
          "alignment ", file->alignment_));
    }
    if (t.offset > data_size || t.size_bytes > data_size - t.offset) {
      return absl::DataLossError(absl::StrCat(
          where, ": data [", t.offset, ", ", t.offset + t.size_bytes,
          ") lies outside the data section (", data_size,
          " bytes): the file is truncated or the offset is wrong"));
    }
    if (t.size_bytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) {
              return a->offset < b->offset;
            });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo& prev = *by_offset[i - 1];
    if (prev.offset + prev.size_bytes > by_offset[i]->offset) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensors ", prev.name, " and ", by_offset[i]->name,
          " overlap in the data section"));
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::Run(std::span<const uint8_t> bytes, GgufFile* file) {
  Cursor in(bytes);
  file->file_size_ = bytes.size();
  uint64_t n_tensors = 0, n_kv = 0;
  LP_RETURN_IF_ERROR(ReadHeader(in, file, &n_tensors, &n_kv));
  LP_RETURN_IF_ERROR(ReadMetadata(in, n_kv, file));
  file->tensors_.resize(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo& info = file->tensors_[i];
    LP_RETURN_IF_ERROR(ReadTensorInfo(in, i, &info));
    if (!file->tensor_index_.emplace(info.name, i).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor ", i, ": duplicate tensor name '", info.name, "'"));
    }
  }
  const uint64_t a = file->alignment_;
  file->data_offset_ = (in.pos() + a - 1) / a * a;
  return CheckTensorPlacement(file);
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Parse(
    std::span<const uint8_t> bytes) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  LP_RETURN_IF_ERROR(Parser::Run(bytes, file.get()));
  file->bytes_ = bytes;
  return file;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(
    const std::string& path, Options options) {
  LP_ASSIGN_OR_RETURN(MappedFile mapping, MappedFile::Open(path));
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->path_ = path;
  LP_RETURN_IF_ERROR(Parser::Run(mapping.bytes(), file.get()), path);
  if (options.map_data) {
    file->bytes_ = mapping.bytes();
    file->mapping_ = std::move(mapping);
  }
  return file;
}

}  // namespace layerpool::gguf
