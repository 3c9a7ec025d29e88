#include "data/token_writer.hpp"

#include <cstdio>
#include <filesystem>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "data/manifest.hpp"
#include "data/token_dataset.hpp"

namespace strata::data {
namespace {
void write_split(hid_t file, const std::string& path, const std::string& split, const std::vector<uint32_t>& ids,
                 int64_t vocab_size) {
  for (size_t i = 0; i < ids.size(); ++i) {
    STRATA_CHECK(ids[i] < vocab_size, "{}: {}/tokens: token id {} at index {} >= vocab_size {}", path, split, ids[i], i,
                 vocab_size);
  }
  auto group = h5::create_group(file, split);
  std::vector<hsize_t> shape{ids.size()};
  if (vocab_size <= 65536) {
    std::vector<uint16_t> narrow(ids.begin(), ids.end());
    h5::write_dataset<uint16_t>(group, "tokens", shape, narrow.data());
  } else {
    h5::write_dataset<uint32_t>(group, "tokens", shape, ids.data());
  }
}

}  // namespace

void write_token_dataset(const std::string& path, const TokenDatasetMeta& meta, const std::vector<uint32_t>& train,
                         const std::vector<uint32_t>& val) {
  STRATA_CHECK(meta.vocab_size > 0 && meta.eot_id >= 0 && meta.eot_id < meta.vocab_size,
               "{}: vocab_size {} / eot_id {} invalid (need 0 <= eot_id < vocab_size)", path, meta.vocab_size,
               meta.eot_id);
  write_atomically(path, [&](const std::string& tmp) {
    auto file = h5::create_file(tmp);
    h5::write_attr(file, "format", std::string(kTokenFormat));
    h5::write_attr(file, "format_version", kTokenFormatVersion);
    h5::write_attr(file, "vocab_size", meta.vocab_size);
    h5::write_attr(file, "eot_id", meta.eot_id);
    h5::write_attr(file, "tokenizer", meta.tokenizer);
    if (!meta.tokenizer_json.empty()) h5::write_attr(file, "tokenizer_json", meta.tokenizer_json);
    write_split(file, path, "train", train, meta.vocab_size);
    write_split(file, path, "val", val, meta.vocab_size);
  });
}

}  // namespace strata::data
