#include "core/event_file.hpp"

#include <boost/crc.hpp>

#include <cstring>
#include <fstream>
#include <iterator>

#include "core/error.hpp"

namespace strata::tb {
namespace {

// ---- Protocol-buffer wire format: just what an Event needs.
enum Wire : uint32_t { Varint = 0, Fixed64 = 1, Bytes = 2, Fixed32 = 5 };

void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += char((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += char(v);
}
void key(std::string& out, uint32_t field, Wire wire) { varint(out, (uint64_t(field) << 3) | wire); }
template <class T>
void fixed(std::string& out, T v) {  // little-endian (x86, ARM)
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out.append(bytes, sizeof(T));
}
void bytes_field(std::string& out, uint32_t field, const std::string& value) {
  key(out, field, Bytes);
  varint(out, value.size());
  out += value;
}

std::string event_head(double wall_time, int64_t step) {
  std::string e;
  key(e, 1, Fixed64);
  fixed(e, wall_time);
  key(e, 2, Varint);
  varint(e, uint64_t(step));
  return e;
}

std::string summary_event(double wall_time, int64_t step, const std::string& value) {
  std::string summary;
  bytes_field(summary, 1, value);  // Summary.value
  std::string e = event_head(wall_time, step);
  bytes_field(e, 5, summary);  // Event.summary
  return e;
}

bool read_varint(const std::string& s, size_t& pos, uint64_t& v) {
  v = 0;
  for (int shift = 0; pos < s.size() && shift < 64; shift += 7) {
    const auto b = uint8_t(s[pos++]);
    v |= uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

}  // namespace

uint32_t masked_crc32c(const void* data, size_t size) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;  // CRC-32C (Castagnoli)
  crc.process_bytes(data, size);
  const uint32_t c = crc.checksum();
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string frame_record(const std::string& data) {
  std::string out;
  const uint64_t length = data.size();
  fixed(out, length);
  fixed(out, masked_crc32c(out.data(), sizeof length));
  out += data;
  fixed(out, masked_crc32c(data.data(), data.size()));
  return out;
}

std::string file_version_event(double wall_time) {
  std::string e;
  key(e, 1, Fixed64);
  fixed(e, wall_time);
  bytes_field(e, 3, "brain.Event:2");
  return e;
}

std::string scalar_event(double wall_time, int64_t step, const std::string& tag, float value) {
  std::string v;
  bytes_field(v, 1, tag);
  key(v, 2, Fixed32);
  fixed(v, value);
  return summary_event(wall_time, step, v);
}

std::string text_event(double wall_time, int64_t step, const std::string& tag, const std::string& text) {
  std::string plugin, metadata, shape, tensor, v;
  bytes_field(plugin, 1, "text");    // PluginData.plugin_name
  bytes_field(metadata, 1, plugin);  // SummaryMetadata.plugin_data
  key(tensor, 1, Varint);            // TensorProto.dtype = DT_STRING
  varint(tensor, 7);
  bytes_field(tensor, 2, shape);  // TensorProto.tensor_shape: a scalar
  bytes_field(tensor, 8, text);   // TensorProto.string_val
  bytes_field(v, 1, tag);
  bytes_field(v, 9, metadata);
  bytes_field(v, 8, tensor);
  return summary_event(wall_time, step, v);
}

std::vector<std::string> read_records(const std::string& path, bool* intact) {
  std::ifstream in(path, std::ios::binary);
  STRATA_CHECK(in, "cannot read event file '{}'", path);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> records;
  size_t pos = 0;
  bool ok = true;
  while (pos < all.size()) {
    uint64_t length = 0;
    uint32_t length_crc = 0, data_crc = 0;
    if (all.size() - pos < 12) {
      ok = false;
      break;
    }
    std::memcpy(&length, all.data() + pos, 8);
    std::memcpy(&length_crc, all.data() + pos + 8, 4);
    if (length_crc != masked_crc32c(all.data() + pos, 8) || all.size() - pos - 12 < length + 4) {
      ok = false;
      break;
    }
    std::string data = all.substr(pos + 12, length);
    std::memcpy(&data_crc, all.data() + pos + 12 + length, 4);
    if (data_crc != masked_crc32c(data.data(), data.size())) {
      ok = false;
      break;
    }
    records.push_back(std::move(data));
    pos += 12 + length + 4;
  }
  if (intact) *intact = ok;
  return records;
}

int64_t event_step(const std::string& event) {
  size_t pos = 0;
  while (pos < event.size()) {
    uint64_t k = 0, v = 0;
    if (!read_varint(event, pos, k)) break;
    const uint32_t field = uint32_t(k >> 3), wire = uint32_t(k & 7);
    if (wire == Varint) {
      if (!read_varint(event, pos, v)) break;
      if (field == 2) return int64_t(v);
    } else if (wire == Fixed64) {
      pos += 8;
    } else if (wire == Fixed32) {
      pos += 4;
    } else if (wire == Bytes) {
      if (!read_varint(event, pos, v)) break;
      pos += size_t(v);
    } else {
      break;
    }
  }
  return 0;
}

}  // namespace strata::tb
