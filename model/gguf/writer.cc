#include "model/gguf/writer.h"

#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace layerpool::gguf {
namespace {

constexpr uint64_t kChunkBytes = 16 << 20;  // rows handed to a Filler at once

template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(v));
}

void PutString(std::string* out, const std::string& s) {
  Put<uint64_t>(out, s.size());
  out->append(s);
}

void PutValue(std::string* out, const Value& v) {
  auto as_u = [&] { return std::get<uint64_t>(v.data); };
  auto as_i = [&] { return std::get<int64_t>(v.data); };
  switch (v.type) {
    case ValueType::kUint8: Put<uint8_t>(out, as_u()); break;
    case ValueType::kInt8: Put<int8_t>(out, as_i()); break;
    case ValueType::kUint16: Put<uint16_t>(out, as_u()); break;
    case ValueType::kInt16: Put<int16_t>(out, as_i()); break;
    case ValueType::kUint32: Put<uint32_t>(out, as_u()); break;
    case ValueType::kInt32: Put<int32_t>(out, as_i()); break;
    case ValueType::kUint64: Put<uint64_t>(out, as_u()); break;
    case ValueType::kInt64: Put<int64_t>(out, as_i()); break;
    case ValueType::kFloat32:
      Put<float>(out, static_cast<float>(std::get<double>(v.data)));
      break;
    case ValueType::kFloat64: Put<double>(out, std::get<double>(v.data)); break;
    case ValueType::kBool: Put<uint8_t>(out, std::get<bool>(v.data)); break;
    case ValueType::kString: PutString(out, std::get<std::string>(v.data)); break;
    case ValueType::kArray: {
      const Array& a = std::get<Array>(v.data);
      Put<uint32_t>(out, static_cast<uint32_t>(a.element_type));
      Put<uint64_t>(out, a.elements.size());
      for (const Value& e : a.elements) PutValue(out, e);
      break;
    }
  }
}

uint64_t AlignUp(uint64_t n, uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

}  // namespace

absl::Status GgufWriter::SetAlignment(uint64_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 ||
      alignment > (uint64_t{1} << 31)) {
    return absl::InvalidArgumentError(
        absl::StrCat("alignment ", alignment, " is not a power of two"));
  }
  if (!tensors_.empty()) {
    return absl::FailedPreconditionError(
        "set the alignment before adding tensors");
  }
  alignment_ = alignment;
  if (alignment != kDefaultAlignment) {
    Set("general.alignment", Value::Uint32(static_cast<uint32_t>(alignment)));
  }
  return absl::OkStatus();
}

void GgufWriter::Set(std::string key, Value value) {
  for (KeyValue& kv : metadata_) {
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  }
  metadata_.push_back({std::move(key), std::move(value)});
}

absl::Status GgufWriter::AddTensor(std::string name, GgmlType type,
                                   std::vector<int64_t> shape, Filler fill) {
  const std::string where = absl::StrCat("tensor ", name);
  if (name.empty() || name.size() > 63) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": name must be 1 to 63 bytes"));
  }
  for (const Tensor& t : tensors_) {
    if (t.info.name == name) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": duplicate name"));
    }
  }
  if (shape.size() > static_cast<size_t>(kMaxDims)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": more than ", kMaxDims, " dimensions"));
  }
  TensorInfo info;
  info.name = std::move(name);
  info.type = type;
  info.shape = std::move(shape);
  info.n_elements = 1;
  for (int64_t d : info.shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": negative dimension"));
    }
    info.n_elements *= d;
  }
  std::optional<int64_t> row_bytes = RowBytes(type, info.row_length());
  if (!row_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": row length ", info.row_length(),
        " does not fit the block size of type ", static_cast<uint32_t>(type)));
  }
  info.size_bytes = static_cast<uint64_t>(*row_bytes * info.n_rows());
  info.offset = next_offset_;
  next_offset_ = AlignUp(next_offset_ + info.size_bytes, alignment_);
  tensors_.push_back({std::move(info), std::move(fill)});
  return absl::OkStatus();
}

absl::Status GgufWriter::AddTensor(std::string name, GgmlType type,
                                   std::vector<int64_t> shape,
                                   std::vector<uint8_t> data) {
  auto bytes = std::make_shared<std::vector<uint8_t>>(std::move(data));
  const size_t given = bytes->size();
  LP_RETURN_IF_ERROR(AddTensor(
      std::move(name), type, std::move(shape),
      [bytes](int64_t first_row, int64_t n_rows, std::span<uint8_t> out) {
        const size_t row = out.size() / static_cast<size_t>(n_rows);
        std::memcpy(out.data(), bytes->data() + first_row * row, out.size());
        return absl::OkStatus();
      }));
  if (tensors_.back().info.size_bytes != given) {
    const std::string n = tensors_.back().info.name;
    const uint64_t want = tensors_.back().info.size_bytes;
    tensors_.pop_back();
    next_offset_ = tensors_.empty()
                       ? 0
                       : AlignUp(tensors_.back().info.offset +
                                     tensors_.back().info.size_bytes,
                                 alignment_);
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor ", n, ": ", given, " bytes given, its shape needs ", want));
  }
  return absl::OkStatus();
}

uint64_t GgufWriter::tensor_bytes() const { return next_offset_; }

std::string GgufWriter::EncodeHeader() const {
  std::string out;
  Put<uint32_t>(&out, kMagic);
  Put<uint32_t>(&out, 3);
  Put<uint64_t>(&out, tensors_.size());
  Put<uint64_t>(&out, metadata_.size());
  for (const KeyValue& kv : metadata_) {
    PutString(&out, kv.key);
    Put<uint32_t>(&out, static_cast<uint32_t>(kv.value.type));
    PutValue(&out, kv.value);
  }
  for (const Tensor& t : tensors_) {
    PutString(&out, t.info.name);
    Put<uint32_t>(&out, static_cast<uint32_t>(t.info.shape.size()));
    for (int64_t d : t.info.shape) Put<uint64_t>(&out, d);
    Put<uint32_t>(&out, static_cast<uint32_t>(t.info.type));
    Put<uint64_t>(&out, t.info.offset);
  }
  // Data starts aligned; a file without tensors (a vocab-only file) ends
  // right after its header, as llama.cpp writes it.
  if (!tensors_.empty()) out.resize(AlignUp(out.size(), alignment_), '\0');
  return out;
}

absl::Status GgufWriter::WriteTo(
    const std::function<absl::Status(const void*, size_t)>& sink,
    const Progress& progress) const {
  const std::string header = EncodeHeader();
  LP_RETURN_IF_ERROR(sink(header.data(), header.size()));
  const uint64_t total = tensor_bytes();
  uint64_t written = 0;
  std::vector<uint8_t> buffer;
  for (const Tensor& t : tensors_) {
    const int64_t rows = t.info.n_rows();
    const uint64_t row_bytes = rows > 0 ? t.info.size_bytes / rows : 0;
    const int64_t rows_per_chunk = static_cast<int64_t>(
        std::max<uint64_t>(1, kChunkBytes / std::max<uint64_t>(1, row_bytes)));
    for (int64_t r = 0; r < rows && row_bytes > 0; r += rows_per_chunk) {
      const int64_t n = std::min(rows_per_chunk, rows - r);
      buffer.assign(static_cast<size_t>(n) * row_bytes, 0);
      LP_RETURN_IF_ERROR(t.fill(r, n, buffer), "filling tensor ", t.info.name);
      LP_RETURN_IF_ERROR(sink(buffer.data(), buffer.size()));
      written += buffer.size();
      if (progress) progress(written, total);
    }
    const uint64_t padded = AlignUp(t.info.offset + t.info.size_bytes, alignment_);
    const uint64_t pad = padded - (t.info.offset + t.info.size_bytes);
    if (pad > 0) {  // llama.cpp pads after every tensor, the last included
      buffer.assign(pad, 0);
      LP_RETURN_IF_ERROR(sink(buffer.data(), buffer.size()));
      written += pad;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> GgufWriter::WriteToString() const {
  std::string out;
  LP_RETURN_IF_ERROR(WriteTo(
      [&out](const void* p, size_t n) {
        out.append(static_cast<const char*>(p), n);
        return absl::OkStatus();
      },
      nullptr));
  return out;
}

absl::Status GgufWriter::WriteFile(const std::string& path,
                                   const Progress& progress) const {
  const std::string tmp = path + ".tmp";
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(tmp.c_str(), "wb"),
                                          &std::fclose);
  if (!f) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  }
  absl::Status status = WriteTo(
      [&](const void* p, size_t n) {
        if (std::fwrite(p, 1, n, f.get()) != n) {
          return absl::ResourceExhaustedError(absl::StrCat(
              "writing ", tmp, ": ", std::strerror(errno)));
        }
        return absl::OkStatus();
      },
      progress);
  if (std::fclose(f.release()) != 0 && status.ok()) {
    status = absl::ResourceExhaustedError(
        absl::StrCat("closing ", tmp, ": ", std::strerror(errno)));
  }
  if (status.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    status = absl::InternalError(absl::StrCat("renaming ", tmp, " to ", path,
                                              ": ", std::strerror(errno)));
  }
  if (!status.ok()) std::remove(tmp.c_str());
  return status;
}

}  // namespace layerpool::gguf
