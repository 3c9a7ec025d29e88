#pragma once
// NumPy .npy files and headerless raw arrays, read into host memory for image/sequence datasets that arrive as
// arrays rather than HDF5. Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace strata::data {

// A C-order array held in memory. dtype is one of "uint8", "int8", "uint16", "int16", "int32", "int64",
// "float32", "float64"; bytes are little-endian whatever the file held.
struct HostArray {
  std::string dtype;
  std::vector<int64_t> shape;  // empty shape = a scalar (numel 1)
  std::vector<unsigned char> bytes;

  int64_t numel() const;
  size_t itemsize() const;  // throws for an unknown dtype
};

// Size in bytes of one element of `dtype` (names as in HostArray); throws naming the dtype if unknown.
size_t dtype_itemsize(const std::string& dtype);

// Reads a .npy file, versions 1.0, 2.0 and 3.0. Accepted descr: '|u1' '|i1' and '<u2' '<i2' '<i4' '<i8' '<f4'
// '<f8' (also with '=' for native, and big-endian '>', which is byte-swapped to little-endian). Rejected with
// an error naming the path: fortran_order True, object/structured/other dtypes (the descr is named), a data
// section shorter than the header promises ("truncated: expected N bytes of data, found M") or longer (a file
// holding several arrays, or a corrupt one).
HostArray read_npy(const std::string& path);

// Reads a headerless little-endian C-order array; the file size must be exactly numel(shape) * itemsize(dtype).
HostArray read_raw(const std::string& path, const std::string& dtype, const std::vector<int64_t>& shape);

// Writes `a` as .npy version 1.0, byte-identical to numpy's np.save of the same array (header padded so the
// data starts at a multiple of 64 bytes). For tests and tools.
void write_npy(const std::string& path, const HostArray& a);

// Every element converted to float32 (int64 and float64 round to nearest). `what` names the array in errors.
std::vector<float> to_float32(const HostArray& a, const std::string& what);
// Integer dtypes only (a float dtype is an error naming `what` and the dtype); a value outside int32 is an
// error naming its flat index.
std::vector<int32_t> to_int32(const HostArray& a, const std::string& what);

}  // namespace strata::data
