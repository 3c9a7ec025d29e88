#include "core/h5.hpp"

#include "core/error.hpp"

#include <filesystem>

namespace strata::h5 {
namespace {
// Every entry point holds the process-wide HDF5 lock (core/error.hpp: the library is not thread-safe).
using Lock = std::lock_guard<std::recursive_mutex>;
}  // namespace

void quiet_errors() {
  Lock lock(hdf5_mutex());
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

Handle& Handle::operator=(Handle&& o) noexcept {
  Lock lock(hdf5_mutex());
  if (this != &o) {
    if (id_ >= 0 && closer_) closer_(id_);
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = -1;
  }
  return *this;
}

Handle::~Handle() {
  Lock lock(hdf5_mutex());
  if (id_ >= 0 && closer_) closer_(id_);
}

template <>
hid_t native_type<float>() {
  return H5T_NATIVE_FLOAT;
}
template <>
hid_t native_type<uint8_t>() {
  return H5T_NATIVE_UINT8;
}
template <>
hid_t native_type<double>() {
  return H5T_NATIVE_DOUBLE;
}
template <>
hid_t native_type<uint16_t>() {
  return H5T_NATIVE_UINT16;
}
template <>
hid_t native_type<uint32_t>() {
  return H5T_NATIVE_UINT32;
}
template <>
hid_t native_type<int32_t>() {
  return H5T_NATIVE_INT32;
}
template <>
hid_t native_type<int64_t>() {
  return H5T_NATIVE_INT64;
}
template <>
hid_t native_type<uint64_t>() {
  return H5T_NATIVE_UINT64;
}

Handle create_file(const std::string& path) {
  Lock lock(hdf5_mutex());
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  STRATA_CHECK(id >= 0, "cannot create HDF5 file '{}'", path);
  return Handle(id, H5Fclose);
}

Handle open_file(const std::string& path, bool writable) {
  Lock lock(hdf5_mutex());
  STRATA_CHECK(std::filesystem::exists(path), "'{}': no such file", path);
  STRATA_CHECK(H5Fis_hdf5(path.c_str()) > 0, "'{}': not an HDF5 file (or unreadable)", path);
  // HDF5's data sieving reads 64 KiB around every small hyperslab: for scattered samples (a 514-byte token window)
  // that is 100x read amplification, and it bound the token reader. Large reads bypass the sieve anyway.
  Handle fapl(STRATA_H5(H5Pcreate(H5P_FILE_ACCESS)), H5Pclose);
  STRATA_H5(H5Pset_sieve_buf_size(fapl, 0));
  hid_t id = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
  STRATA_CHECK(id >= 0, "'{}': cannot open HDF5 file (truncated, corrupt or not HDF5)", path);
  return Handle(id, H5Fclose);
}

bool exists(hid_t loc, const std::string& name) {
  Lock lock(hdf5_mutex());
  // Walk the path so that a missing intermediate group answers false instead of failing.
  std::string prefix;
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    prefix = name.substr(0, slash);
    if (!prefix.empty() && H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

Handle create_group(hid_t loc, const std::string& name) {
  Lock lock(hdf5_mutex());
  return Handle(STRATA_H5(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)), H5Gclose);
}

std::vector<std::string> member_names(hid_t loc, const std::string& group, const std::string& what) {
  Lock lock(hdf5_mutex());
  STRATA_CHECK(exists(loc, group), "{}: group '{}' is missing", what, group);
  Handle g(STRATA_H5(H5Gopen2(loc, group.c_str(), H5P_DEFAULT)), H5Gclose);
  H5G_info_t info;
  STRATA_H5(H5Gget_info(g, &info));
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t n = STRATA_H5(H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT));
    std::string name(size_t(n) + 1, '\0');
    STRATA_H5(H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT));
    name.resize(size_t(n));
    names.push_back(std::move(name));
  }
  return names;
}

std::string element_type_name(hid_t dataset) {
  Lock lock(hdf5_mutex());
  Handle type(STRATA_H5(H5Dget_type(dataset)), H5Tclose);
  const H5T_class_t cls = H5Tget_class(type);
  const size_t bits = 8 * H5Tget_size(type);
  if (cls == H5T_INTEGER) return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
  if (cls == H5T_FLOAT) return "float" + std::to_string(bits);
  switch (cls) {
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_ARRAY: return "array";
    default: return "unsupported type";
  }
}

std::vector<hsize_t> dataset_shape(hid_t loc, const std::string& name, const std::string& what) {
  Lock lock(hdf5_mutex());
  STRATA_CHECK(exists(loc, name), "{}: dataset '{}' is missing", what, name);
  Handle ds(STRATA_H5(H5Dopen2(loc, name.c_str(), H5P_DEFAULT)), H5Dclose);
  Handle space(STRATA_H5(H5Dget_space(ds)), H5Sclose);
  int rank = STRATA_H5(H5Sget_simple_extent_ndims(space));
  std::vector<hsize_t> dims(rank);
  STRATA_H5(H5Sget_simple_extent_dims(space, dims.data(), nullptr));
  return dims;
}

template <class T>
void write_dataset(hid_t loc, const std::string& name, const std::vector<hsize_t>& shape, const T* data) {
  Lock lock(hdf5_mutex());
  Handle space(STRATA_H5(H5Screate_simple(static_cast<int>(shape.size()), shape.data(), nullptr)), H5Sclose);
  Handle ds(STRATA_H5(H5Dcreate2(loc, name.c_str(), native_type<T>(), space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)),
            H5Dclose);
  STRATA_H5(H5Dwrite(ds, native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
}

template <class T>
std::vector<T> read_dataset(hid_t loc, const std::string& name, const std::string& what) {
  Lock lock(hdf5_mutex());
  auto shape = dataset_shape(loc, name, what);
  hsize_t n = 1;
  for (auto d : shape) n *= d;
  std::vector<T> out(n);
  Handle ds(STRATA_H5(H5Dopen2(loc, name.c_str(), H5P_DEFAULT)), H5Dclose);
  if (n > 0) STRATA_H5(H5Dread(ds, native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()));
  return out;
}

template <class T>
void read_range(hid_t dataset, hsize_t offset, hsize_t count, T* out) {
  Lock lock(hdf5_mutex());
  Handle file_space(STRATA_H5(H5Dget_space(dataset)), H5Sclose);
  STRATA_H5(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, &offset, nullptr, &count, nullptr));
  Handle mem_space(STRATA_H5(H5Screate_simple(1, &count, nullptr)), H5Sclose);
  STRATA_H5(H5Dread(dataset, native_type<T>(), mem_space, file_space, H5P_DEFAULT, out));
}

template <class T>
void read_rows(hid_t dataset, const std::vector<hsize_t>& rows, T* out) {
  if (rows.empty()) return;
  Lock lock(hdf5_mutex());
  Handle file_space(STRATA_H5(H5Dget_space(dataset)), H5Sclose);
  const int rank = STRATA_H5(H5Sget_simple_extent_ndims(file_space));
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  STRATA_H5(H5Sget_simple_extent_dims(file_space, dims.data(), nullptr));
  hsize_t row_elems = 1;
  for (int d = 1; d < rank; ++d) row_elems *= dims[size_t(d)];
  std::vector<hsize_t> start(dims.size(), 0), count(dims);
  STRATA_H5(H5Sselect_none(file_space));
  for (size_t i = 0; i < rows.size();) {
    size_t j = i + 1;
    while (j < rows.size() && rows[j] == rows[j - 1] + 1) ++j;
    STRATA_CHECK(rows[i] < dims[0] && rows[j - 1] < dims[0] && (j == rows.size() || rows[j] > rows[j - 1]),
                 "read_rows: rows must be sorted, unique and < {}", dims[0]);
    start[0] = rows[i];
    count[0] = j - i;
    STRATA_H5(H5Sselect_hyperslab(file_space, H5S_SELECT_OR, start.data(), nullptr, count.data(), nullptr));
    i = j;
  }
  const hsize_t total = hsize_t(rows.size()) * row_elems;
  Handle mem_space(STRATA_H5(H5Screate_simple(1, &total, nullptr)), H5Sclose);
  STRATA_H5(H5Dread(dataset, native_type<T>(), mem_space, file_space, H5P_DEFAULT, out));
}

#define STRATA_H5_INSTANTIATE(T)                                                                    \
  template void write_dataset<T>(hid_t, const std::string&, const std::vector<hsize_t>&, const T*); \
  template std::vector<T> read_dataset<T>(hid_t, const std::string&, const std::string&);           \
  template void read_range<T>(hid_t, hsize_t, hsize_t, T*);                                         \
  template void read_rows<T>(hid_t, const std::vector<hsize_t>&, T*);
STRATA_H5_INSTANTIATE(float)
STRATA_H5_INSTANTIATE(uint8_t)
STRATA_H5_INSTANTIATE(double)
STRATA_H5_INSTANTIATE(uint16_t)
STRATA_H5_INSTANTIATE(uint32_t)
STRATA_H5_INSTANTIATE(int32_t)
STRATA_H5_INSTANTIATE(int64_t)
#undef STRATA_H5_INSTANTIATE

namespace {
Handle scalar_attr(hid_t obj, const std::string& name, hid_t type) {
  Lock lock(hdf5_mutex());
  if (H5Aexists(obj, name.c_str()) > 0) STRATA_H5(H5Adelete(obj, name.c_str()));
  Handle space(STRATA_H5(H5Screate(H5S_SCALAR)), H5Sclose);
  return Handle(STRATA_H5(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT)), H5Aclose);
}

Handle open_attr(hid_t obj, const std::string& name, const std::string& what) {
  Lock lock(hdf5_mutex());
  STRATA_CHECK(H5Aexists(obj, name.c_str()) > 0, "{}: attribute '{}' is missing", what, name);
  return Handle(STRATA_H5(H5Aopen(obj, name.c_str(), H5P_DEFAULT)), H5Aclose);
}
}  // namespace

void write_attr(hid_t obj, const std::string& name, const std::string& value) {
  Lock lock(hdf5_mutex());
  // Variable-length UTF-8 strings: h5py reads them back as str.
  Handle type(STRATA_H5(H5Tcopy(H5T_C_S1)), H5Tclose);
  STRATA_H5(H5Tset_size(type, H5T_VARIABLE));
  STRATA_H5(H5Tset_cset(type, H5T_CSET_UTF8));
  auto attr = scalar_attr(obj, name, type);
  const char* ptr = value.c_str();
  STRATA_H5(H5Awrite(attr, type, &ptr));
}

void write_attr(hid_t obj, const std::string& name, int64_t value) {
  Lock lock(hdf5_mutex());
  auto attr = scalar_attr(obj, name, H5T_NATIVE_INT64);
  STRATA_H5(H5Awrite(attr, H5T_NATIVE_INT64, &value));
}

void write_attr(hid_t obj, const std::string& name, double value) {
  Lock lock(hdf5_mutex());
  auto attr = scalar_attr(obj, name, H5T_NATIVE_DOUBLE);
  STRATA_H5(H5Awrite(attr, H5T_NATIVE_DOUBLE, &value));
}

void write_attr(hid_t obj, const std::string& name, const std::vector<int64_t>& values) {
  Lock lock(hdf5_mutex());
  if (H5Aexists(obj, name.c_str()) > 0) STRATA_H5(H5Adelete(obj, name.c_str()));
  const hsize_t n = values.size();
  // An empty list is a null dataspace (h5py reads it as an empty array).
  Handle space(STRATA_H5(n > 0 ? H5Screate_simple(1, &n, nullptr) : H5Screate(H5S_NULL)), H5Sclose);
  Handle attr(STRATA_H5(H5Acreate2(obj, name.c_str(), H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT)), H5Aclose);
  if (n > 0) STRATA_H5(H5Awrite(attr, H5T_NATIVE_INT64, values.data()));
}

std::vector<int64_t> read_attr_int_list(hid_t obj, const std::string& name, const std::string& what) {
  Lock lock(hdf5_mutex());
  auto attr = open_attr(obj, name, what);
  Handle stored(STRATA_H5(H5Aget_type(attr)), H5Tclose);
  STRATA_CHECK(H5Tget_class(stored) == H5T_INTEGER, "{}: attribute '{}' should be integers", what, name);
  Handle space(STRATA_H5(H5Aget_space(attr)), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  STRATA_CHECK(n >= 0, "{}: attribute '{}': unreadable dataspace", what, name);
  std::vector<int64_t> values(static_cast<size_t>(n));
  if (n > 0) STRATA_H5(H5Aread(attr, H5T_NATIVE_INT64, values.data()));
  return values;
}

bool has_attr(hid_t obj, const std::string& name) {
  Lock lock(hdf5_mutex());
  return H5Aexists(obj, name.c_str()) > 0;
}

std::string read_attr_string(hid_t obj, const std::string& name, const std::string& what) {
  Lock lock(hdf5_mutex());
  auto attr = open_attr(obj, name, what);
  Handle stored(STRATA_H5(H5Aget_type(attr)), H5Tclose);
  STRATA_CHECK(H5Tget_class(stored) == H5T_STRING, "{}: attribute '{}' should be a string", what, name);
  if (H5Tis_variable_str(stored) > 0) {
    Handle type(STRATA_H5(H5Tcopy(H5T_C_S1)), H5Tclose);
    STRATA_H5(H5Tset_size(type, H5T_VARIABLE));
    STRATA_H5(H5Tset_cset(type, H5Tget_cset(stored)));  // HDF5 will not convert UTF-8 to ASCII
    char* ptr = nullptr;
    STRATA_H5(H5Aread(attr, type, &ptr));
    std::string value = ptr ? ptr : "";
    H5free_memory(ptr);
    return value;
  }
  size_t size = H5Tget_size(stored);
  std::string value(size, '\0');
  STRATA_H5(H5Aread(attr, stored, value.data()));
  value.resize(value.find('\0') == std::string::npos ? size : value.find('\0'));
  return value;
}

int64_t read_attr_int(hid_t obj, const std::string& name, const std::string& what) {
  Lock lock(hdf5_mutex());
  auto attr = open_attr(obj, name, what);
  Handle stored(STRATA_H5(H5Aget_type(attr)), H5Tclose);
  STRATA_CHECK(H5Tget_class(stored) == H5T_INTEGER, "{}: attribute '{}' should be an integer", what, name);
  int64_t value = 0;
  STRATA_H5(H5Aread(attr, H5T_NATIVE_INT64, &value));
  return value;
}

double read_attr_double(hid_t obj, const std::string& name, const std::string& what) {
  Lock lock(hdf5_mutex());
  auto attr = open_attr(obj, name, what);
  double value = 0;
  STRATA_H5(H5Aread(attr, H5T_NATIVE_DOUBLE, &value));
  return value;
}

}  // namespace strata::h5
