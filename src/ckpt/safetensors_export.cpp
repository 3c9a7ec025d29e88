#include "ckpt/safetensors_export.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "ckpt/checkpoint.hpp"
#include "ckpt/inspect.hpp"
#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "core/stopwatch.hpp"
#include "nn/weights_io.hpp"

namespace strata::ckpt {
namespace {
namespace fs = std::filesystem;

bool host_is_little_endian() {
  const uint32_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

// `n` bytes of `v` in little-endian order appended to `out`.
void append_le(std::string& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}

// A file written through a descriptor with every error checked; commit_file fsyncs and renames it.
class OutFile {
 public:
  explicit OutFile(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    STRATA_CHECK(fd_ >= 0, "'{}': cannot create: {}", path_, std::strerror(errno));
  }
  OutFile(const OutFile&) = delete;
  OutFile& operator=(const OutFile&) = delete;
  ~OutFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  void write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      STRATA_CHECK(w > 0, "'{}': write failed: {}", path_, std::strerror(errno));
      p += w;
      n -= size_t(w);
    }
  }
  void close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    STRATA_CHECK(rc == 0, "'{}': close failed: {}", path_, std::strerror(errno));
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// params/<name> read whole and checked against its stored checksum.
std::vector<float> read_param(hid_t file, const std::string& checkpoint, const TensorSpec& spec) {
  const std::string dataset = "params/" + spec.name;
  CheckedTensor t = read_checkpoint_tensor(file, checkpoint, dataset, spec.global_shape);
  STRATA_CHECK(t.ok(), "{}: checksum mismatch in tensor '{}': computed {}, stored {} (not exported)", checkpoint,
               dataset, t.computed_checksum, t.stored_checksum);
  return std::move(t.values);
}

}  // namespace

const std::vector<std::string>& export_formats() {
  static const std::vector<std::string> formats{"safetensors", "hdf5"};
  return formats;
}

ExportResult export_checkpoint(const std::string& checkpoint, const std::string& out, const std::string& format,
                               const ExportProgress& progress) {
  std::error_code ec;
  STRATA_CHECK(!fs::equivalent(checkpoint, out, ec), "'{}': the export would replace the checkpoint it reads", out);
  if (format == "safetensors") return export_safetensors(checkpoint, out, progress);
  if (format == "hdf5") return export_weights_hdf5(checkpoint, out, progress);
  STRATA_FAIL("unknown export format '{}' (choices: {})", format, fmt::join(export_formats(), ", "));
}

ExportResult export_safetensors(const std::string& checkpoint, const std::string& out, const ExportProgress& progress) {
  const auto start = Clock::now();
  const CheckpointMeta meta = read_checkpoint_meta(checkpoint);
  std::vector<TensorSpec> specs = meta.tensors;
  std::sort(specs.begin(), specs.end(), [](const TensorSpec& a, const TensorSpec& b) { return a.name < b.name; });

  nlohmann::json header = nlohmann::json::object();
  nlohmann::json metadata = {{"format", "pt"},
                             {"source", kCheckpointFormat},
                             {"library_version", meta.library_version},
                             {"step", std::to_string(meta.step)}};
  for (const auto& [name, value] : model_fields(meta.model)) metadata[name] = format_value(value);
  header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& s : specs) {
    const uint64_t bytes = uint64_t(s.global_numel()) * sizeof(float);
    header[s.name] = {{"dtype", "F32"}, {"shape", s.global_shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');  // the data starts 8-byte aligned
  std::string prefix;
  append_le(prefix, uint64_t(text.size()), 8);

  ExportResult result;
  result.step = meta.step;
  write_atomically(out, [&](const std::string& tmp) {
    OutFile file(tmp);
    file.write(prefix.data(), prefix.size());
    file.write(text.data(), text.size());
    auto source = h5::open_file(checkpoint);
    const bool little = host_is_little_endian();
    for (const auto& s : specs) {
      std::vector<float> values = read_param(source, checkpoint, s);
      if (!little)
        for (float& v : values) {
          uint32_t bits;
          std::memcpy(&bits, &v, 4);
          bits = __builtin_bswap32(bits);
          std::memcpy(&v, &bits, 4);
        }
      file.write(values.data(), values.size() * sizeof(float));
      result.bytes += int64_t(values.size() * sizeof(float));
      ++result.tensors;
      if (progress) progress(result.tensors, int64_t(specs.size()));
    }
    file.close();
  });
  result.seconds = seconds_since(start);
  return result;
}

ExportResult export_weights_hdf5(const std::string& checkpoint, const std::string& out,
                                 const ExportProgress& progress) {
  const auto start = Clock::now();
  const CheckpointMeta meta = read_checkpoint_meta(checkpoint);
  const std::vector<TensorSpec> specs = meta.tensors;
  ExportResult result;
  result.step = meta.step;
  write_atomically(out, [&](const std::string& tmp) {
    auto source = h5::open_file(checkpoint);
    auto file = h5::create_file(tmp);
    write_weights_header(file, meta.model);
    for (const auto& s : specs) {
      const std::vector<float> values = read_param(source, checkpoint, s);
      const std::vector<hsize_t> shape(s.global_shape.begin(), s.global_shape.end());
      h5::write_dataset<float>(file, s.name, shape, values.data());
      result.bytes += int64_t(values.size() * sizeof(float));
      ++result.tensors;
      if (progress) progress(result.tensors, int64_t(specs.size()));
    }
    STRATA_H5(H5Fflush(file, H5F_SCOPE_GLOBAL));
  });  // closed before commit_file
  result.seconds = seconds_since(start);
  return result;
}

}  // namespace strata::ckpt
