#include "data/npy.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include "support/expect_error.hpp"
#include "temp_dir.hpp"

namespace strata::data {
namespace {
using strata::testing::expect_error;
using strata::testing::TempDir;

template <class T>
HostArray make_array(const std::string& dtype, std::vector<int64_t> shape, const std::vector<T>& values) {
  HostArray a{dtype, std::move(shape), std::vector<unsigned char>(values.size() * sizeof(T))};
  std::memcpy(a.bytes.data(), values.data(), a.bytes.size());
  return a;
}

std::string bytes_of(const void* p, size_t n) { return std::string(static_cast<const char*>(p), n); }

// A .npy file written by hand: any version, any header text (no alignment padding: readers must not need it).
std::string npy_file(int major, const std::string& dict, const std::string& data) {
  const std::string header = dict + "\n";
  std::string out = std::string("\x93NUMPY", 6) + char(major) + char(0);
  const uint32_t len = static_cast<uint32_t>(header.size());
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) out += char((len >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

template <class T>
void expect_round_trip(const std::string& dtype, const std::vector<T>& values) {
  TempDir dir;
  const HostArray a = make_array(dtype, {2, 3}, values);
  write_npy(dir.file("a.npy"), a);
  const HostArray b = read_npy(dir.file("a.npy"));
  EXPECT_EQ(b.dtype, dtype);
  EXPECT_EQ(b.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(b.bytes, a.bytes) << dtype;
  EXPECT_EQ(b.itemsize(), sizeof(T));
  EXPECT_EQ(b.numel(), 6);
  const std::vector<float> f = to_float32(b, dtype);
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(f[i], static_cast<float>(values[i])) << dtype << " " << i;
}

TEST(Npy, RoundTripsEveryDtype) {
  expect_round_trip<uint8_t>("uint8", {0, 1, 2, 127, 128, 255});
  expect_round_trip<int8_t>("int8", {-128, -1, 0, 1, 2, 127});
  expect_round_trip<uint16_t>("uint16", {0, 1, 300, 32768, 65534, 65535});
  expect_round_trip<int16_t>("int16", {-32768, -300, 0, 1, 300, 32767});
  expect_round_trip<int32_t>("int32", {std::numeric_limits<int32_t>::min(), -70000, 0, 1, 70000, 2147483647});
  expect_round_trip<int64_t>("int64", {-(int64_t{1} << 40), -1, 0, 1, 1 << 20, int64_t{1} << 40});
  expect_round_trip<float>("float32", {-1.5f, 0.0f, 0.1f, 3.25f, 1e30f, -7.0f});
  expect_round_trip<double>("float64", {-1.5, 0.0, 0.1, 3.25, 1e300, -7.0});
}

// What np.save (numpy 1.24) writes for a small array: header length 118 (0x76), the dict padded with spaces and
// ended by '\n' so that the data starts at byte 128. Cross-checked against np.save output during development.
std::string numpy_saved(std::string dict, const std::string& data) {
  dict.append(117 - dict.size(), ' ');
  return std::string("\x93NUMPY\x01\x00\x76\x00", 10) + dict + "\n" + data;
}

// np.save(f, np.array([[1.5, -2.0, 3.25], [0.0, 7.0, -0.5]], dtype=np.float32))
const std::string kNumpySavedFloat32 = numpy_saved(
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
    std::string("\x00\x00\xc0\x3f\x00\x00\x00\xc0\x00\x00\x50\x40\x00\x00\x00\x00\x00\x00\xe0\x40\x00\x00\x00\xbf",
                24));

TEST(Npy, ReadsNumpyOutputAndWritesItByteForByte) {
  TempDir dir;
  const std::string path = dir.write("numpy.npy", kNumpySavedFloat32);
  ASSERT_EQ(kNumpySavedFloat32.size(), 152u);
  const HostArray a = read_npy(path);
  EXPECT_EQ(a.dtype, "float32");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(to_float32(a, "a"), (std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -0.5f}));
  write_npy(dir.file("ours.npy"), a);
  EXPECT_EQ(read_file(dir.file("ours.npy")), kNumpySavedFloat32);
}

TEST(Npy, WritesScalarAndOneDimensionalShapesAsNumpyDoes) {
  TempDir dir;
  write_npy(dir.file("scalar.npy"), make_array<int64_t>("int64", {}, {7}));
  write_npy(dir.file("vector.npy"), make_array<uint8_t>("uint8", {3}, {0, 1, 2}));
  // np.save(f, np.array(7, dtype=np.int64)) and np.save(f, np.arange(3, dtype=np.uint8))
  EXPECT_EQ(read_file(dir.file("scalar.npy")), numpy_saved("{'descr': '<i8', 'fortran_order': False, 'shape': (), }",
                                                           std::string("\x07\0\0\0\0\0\0\0", 8)));
  EXPECT_EQ(read_file(dir.file("vector.npy")),
            numpy_saved("{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", std::string("\x00\x01\x02", 3)));
  const HostArray s = read_npy(dir.file("scalar.npy"));
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(to_int32(s, "s"), std::vector<int32_t>{7});
  EXPECT_EQ(to_int32(read_npy(dir.file("vector.npy")), "v"), (std::vector<int32_t>{0, 1, 2}));
}

TEST(Npy, ReadsVersion2And3Headers) {
  TempDir dir;
  const std::vector<int32_t> values = {5, -6, 7, 8};
  for (int major : {2, 3}) {
    const std::string path = dir.write(
        "v" + std::to_string(major) + ".npy",
        npy_file(major, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", bytes_of(values.data(), 16)));
    const HostArray a = read_npy(path);
    EXPECT_EQ(a.dtype, "int32");
    EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(to_int32(a, "a"), values) << "version " << major;
  }
}

TEST(Npy, AcceptsOtherSpellingsOfTheHeader) {
  // Keys in another order, double quotes, '=' byte order, no trailing comma, Python 2 longs.
  TempDir dir;
  const std::vector<int16_t> values = {-3, 4, 5};
  const std::string path = dir.write(
      "a.npy",
      npy_file(1, "{\"shape\": (3L,), \"fortran_order\": False, \"descr\": \"=i2\"}", bytes_of(values.data(), 6)));
  const HostArray a = read_npy(path);
  EXPECT_EQ(a.dtype, "int16");
  EXPECT_EQ(to_int32(a, "a"), (std::vector<int32_t>{-3, 4, 5}));
}

TEST(Npy, ByteSwapsBigEndianData) {
  TempDir dir;
  // 1.5f = 0x3FC00000, -2.0f = 0xC0000000, big-endian on disk.
  const std::string f4 = std::string("\x3f\xc0\x00\x00\xc0\x00\x00\x00", 8);
  HostArray a =
      read_npy(dir.write("f4.npy", npy_file(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", f4)));
  EXPECT_EQ(a.dtype, "float32");
  EXPECT_EQ(to_float32(a, "a"), (std::vector<float>{1.5f, -2.0f}));

  const std::string i8 = std::string("\x00\x00\x00\x01\x00\x00\x00\x02\xff\xff\xff\xff\xff\xff\xff\xfe", 16);
  a = read_npy(dir.write("i8.npy", npy_file(1, "{'descr': '>i8', 'fortran_order': False, 'shape': (2,), }", i8)));
  EXPECT_EQ(a.dtype, "int64");
  int64_t v[2];
  std::memcpy(v, a.bytes.data(), 16);
  EXPECT_EQ(v[0], (int64_t{1} << 32) + 2);
  EXPECT_EQ(v[1], -2);

  const std::string u2 = std::string("\x01\x02", 2);
  a = read_npy(dir.write("u2.npy", npy_file(1, "{'descr': '>u2', 'fortran_order': False, 'shape': (1,), }", u2)));
  EXPECT_EQ(to_int32(a, "a"), std::vector<int32_t>{0x0102});
}

TEST(Npy, RejectsFortranOrder) {
  TempDir dir;
  const std::string path = dir.write(
      "f.npy", npy_file(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", std::string(16, '\0')));
  expect_error([&] { read_npy(path); }, {path, "Fortran order not supported, save with np.ascontiguousarray"});
}

TEST(Npy, RejectsUnsupportedDtypesNamingTheDescr) {
  TempDir dir;
  for (const std::string descr : {"'|O'", "'<c8'", "'<f2'", "'<u4'", "'|b1'", "'<U3'"}) {
    const std::string path = dir.write(
        "d.npy", npy_file(1, "{'descr': " + descr + ", 'fortran_order': False, 'shape': (1,), }", "12345678"));
    expect_error([&] { read_npy(path); }, {path, "unsupported dtype descr " + descr});
  }
  const std::string structured = "[('x', '<f4'), ('y', '<i4')]";
  const std::string path = dir.write(
      "s.npy", npy_file(1, "{'descr': " + structured + ", 'fortran_order': False, 'shape': (1,), }", "12345678"));
  expect_error([&] { read_npy(path); }, {path, "unsupported dtype descr " + structured, "structured"});
}

TEST(Npy, RejectsTruncatedAndOverlongData) {
  TempDir dir;
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (10,), }";
  const std::string short_path = dir.write("short.npy", npy_file(1, dict, std::string(12, '\0')));
  expect_error([&] { read_npy(short_path); }, {short_path, "truncated: expected 40 bytes of data, found 12"});
  const std::string long_path = dir.write("long.npy", npy_file(1, dict, std::string(44, '\0')));
  expect_error([&] { read_npy(long_path); }, {long_path, "expected 40 bytes of data, found 44"});
}

TEST(Npy, RejectsBrokenPreambleAndHeader) {
  TempDir dir;
  const std::string good = npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "1234");
  const std::string magic = dir.write("magic.npy", "\x92" + good.substr(1));
  expect_error([&] { read_npy(magic); }, {magic, "not a .npy file"});
  std::string v4 = good;
  v4[6] = 4;
  const std::string version = dir.write("v4.npy", v4);
  expect_error([&] { read_npy(version); }, {version, "unsupported .npy version 4.0"});
  const std::string header = dir.write("header.npy", good.substr(0, 30));
  expect_error([&] { read_npy(header); }, {header, "truncated"});
  const std::string tiny = dir.write("tiny.npy", "\x93NUM");
  expect_error([&] { read_npy(tiny); }, {tiny, "not a .npy file"});
  const std::string no_shape =
      dir.write("noshape.npy", npy_file(1, "{'descr': '<f4', 'fortran_order': False}", "1234"));
  expect_error([&] { read_npy(no_shape); }, {no_shape, "no 'shape'"});
  const std::string garbled = dir.write("garbled.npy", npy_file(1, "{'descr': '<f4', 'fortran_order': Fals", "1234"));
  expect_error([&] { read_npy(garbled); }, {garbled, "malformed .npy header"});
  const std::string missing = dir.file("missing.npy");
  expect_error([&] { read_npy(missing); }, {missing, "cannot open"});
}

TEST(Npy, ReadsRawArraysOfExactlyTheRightSize) {
  TempDir dir;
  const std::vector<uint16_t> values = {1, 2, 3, 65535, 0, 9};
  const std::string path = dir.write("a.raw", bytes_of(values.data(), 12));
  const HostArray a = read_raw(path, "uint16", {3, 2});
  EXPECT_EQ(a.dtype, "uint16");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(to_int32(a, "a"), (std::vector<int32_t>{1, 2, 3, 65535, 0, 9}));
  expect_error([&] { read_raw(path, "uint16", {4, 2}); }, {path, "12 bytes", "16"});
  expect_error([&] { read_raw(path, "float32", {2}); }, {path, "12 bytes", "8"});
  expect_error([&] { read_raw(path, "complex64", {1}); }, {"unknown dtype 'complex64'"});
}

TEST(Npy, ToInt32RejectsFloatsAndOutOfRangeValues) {
  expect_error([] { to_int32(make_array<float>("float32", {2}, {1.0f, 2.0f}), "labels"); }, {"labels", "float32"});
  expect_error([] { to_int32(make_array<double>("float64", {1}, {1.0}), "targets"); }, {"targets", "float64"});
  const HostArray big = make_array<int64_t>("int64", {4}, {0, 2147483647, -2147483648LL, 2147483648LL});
  expect_error([&] { to_int32(big, "labels"); }, {"labels", "index 3", "2147483648"});
  const HostArray small = make_array<int64_t>("int64", {2}, {-2147483649LL, 0});
  expect_error([&] { to_int32(small, "labels"); }, {"labels", "index 0"});
  EXPECT_EQ(to_int32(make_array<int64_t>("int64", {3}, {-2147483648LL, 0, 2147483647}), "ok"),
            (std::vector<int32_t>{std::numeric_limits<int32_t>::min(), 0, 2147483647}));
}

TEST(Npy, RejectsInconsistentArraysOnConversionAndWrite) {
  TempDir dir;
  HostArray a = make_array<float>("float32", {3}, {1.0f, 2.0f});
  expect_error([&] { to_float32(a, "x"); }, {"x", "8 bytes", "12"});
  expect_error([&] { write_npy(dir.file("x.npy"), a); }, {dir.file("x.npy"), "8 bytes"});
}

}  // namespace
}  // namespace strata::data
