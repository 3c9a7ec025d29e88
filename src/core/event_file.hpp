#pragma once
// TensorBoard event files, written natively (no TensorFlow, no protobuf library): a sequence of TFRecords, each
//   uint64 length | uint32 masked CRC-32C of the length bytes | data | uint32 masked CRC-32C of the data
// (little-endian; masked = ((crc >> 15) | (crc << 17)) + 0xa282ead8), whose data is a serialized tensorflow.Event:
// wall_time (1, double), step (2, int64), file_version (3, string) or summary (5: Summary, repeated Value (1):
// tag (1), simple_value (2, float), or a text tensor (8: TensorProto of DT_STRING) with the text plugin's metadata
// (9)).
#include <cstdint>
#include <string>
#include <vector>

namespace strata::tb {

// CRC-32C (Castagnoli) of data, masked as TFRecords store it.
uint32_t masked_crc32c(const void* data, size_t size);

// One record's bytes: the framing around `data`.
std::string frame_record(const std::string& data);

// Serialized Events.
std::string file_version_event(double wall_time);  // "brain.Event:2", the first record of a file
std::string scalar_event(double wall_time, int64_t step, const std::string& tag, float value);
std::string text_event(double wall_time, int64_t step, const std::string& tag, const std::string& text);

// The records of an event file, in order; reading stops at a truncated or damaged record (a crash mid-write loses
// only the record being written). `intact` (optional) tells whether the whole file was read.
std::vector<std::string> read_records(const std::string& path, bool* intact = nullptr);
// The step of a serialized Event (0 when it has none).
int64_t event_step(const std::string& event);

}  // namespace strata::tb
