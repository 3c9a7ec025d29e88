// TensorBoard event files (core/event_file.hpp): CRC-32C against its published check value, the record framing
// read back, a record cut short or damaged stopping the reader there, and the step of each Event. The files are
// also read by the tensorboard package itself (tests/e2e/test_tensorboard.py).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/event_file.hpp"
#include "unit/data/temp_dir.hpp"

namespace strata::tb {
namespace {

uint32_t unmask(uint32_t masked) {
  const uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

TEST(EventFile, Crc32cCheckValue) {
  // CRC-32C("123456789") = 0xE3069283 (RFC 3720, appendix B.4); 32 zero bytes: 0x8A9136AA (RFC 3720 B.4).
  EXPECT_EQ(unmask(masked_crc32c("123456789", 9)), 0xE3069283u);
  const std::string zeros(32, '\0');
  EXPECT_EQ(unmask(masked_crc32c(zeros.data(), zeros.size())), 0x8A9136AAu);
}

TEST(EventFile, RecordsReadBackAndStopAtDamage) {
  strata::testing::TempDir dir;
  const std::string path = dir.file("events.out.tfevents.1.test");
  const std::vector<std::string> events{file_version_event(1.5), scalar_event(2.0, 7, "train/loss", 0.25f),
                                        text_event(3.0, 9, "config", "[model]\nkind = \"gpt\"\n"),
                                        scalar_event(4.0, 123456789012, "val/loss", 1.5f)};
  std::string bytes;
  for (const auto& e : events) bytes += frame_record(e);
  std::ofstream(path, std::ios::binary) << bytes;
  bool intact = false;
  EXPECT_EQ(read_records(path, &intact), events);
  EXPECT_TRUE(intact);
  EXPECT_EQ(event_step(events[0]), 0);
  EXPECT_EQ(event_step(events[1]), 7);
  EXPECT_EQ(event_step(events[2]), 9);
  EXPECT_EQ(event_step(events[3]), 123456789012);
  // Cut inside the last record (a crash mid-write): the others are read.
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 5);
  EXPECT_EQ(read_records(path, &intact), std::vector<std::string>(events.begin(), events.begin() + 3));
  EXPECT_FALSE(intact);
  // A flipped bit in the second record's data: reading stops before it.
  std::string damaged = bytes;
  damaged[frame_record(events[0]).size() + 14] ^= 0x10;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << damaged;
  EXPECT_EQ(read_records(path, &intact), std::vector<std::string>(events.begin(), events.begin() + 1));
  EXPECT_FALSE(intact);
}

}  // namespace
}  // namespace strata::tb
