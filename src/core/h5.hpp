#pragma once
// Thin RAII over the HDF5 C API: every call checked (STRATA_H5), every handle closed.
// Serial use here; the parallel (MPI-IO) file access joins with sharded data and checkpoints.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace strata::h5 {

// Silences HDF5's own stderr printing: errors arrive as strata::Error with the stack in the message.
void quiet_errors();

class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept;
  ~Handle();
  hid_t id() const { return id_; }
  operator hid_t() const { return id_; }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// The HDF5 type matching a C++ element type.
template <class T>
hid_t native_type();

Handle create_file(const std::string& path);                       // truncates
Handle open_file(const std::string& path, bool writable = false);  // error names the path
bool exists(hid_t loc, const std::string& name);                   // a link (group or dataset) at this path
Handle create_group(hid_t loc, const std::string& name);
// The names of the links in group `group` (in name order); throws naming `what` if it is missing.
std::vector<std::string> member_names(hid_t loc, const std::string& group, const std::string& what);

// The element type stored in a dataset, e.g. "uint8", "int32", "float32", "float64" (other classes: "string",
// "compound", ...): readers compare it with what the format promises and name it in errors.
std::string element_type_name(hid_t dataset);

// Shape of a dataset; throws naming `what` (e.g. the file) if it is missing.
std::vector<hsize_t> dataset_shape(hid_t loc, const std::string& name, const std::string& what);

template <class T>
void write_dataset(hid_t loc, const std::string& name, const std::vector<hsize_t>& shape, const T* data);
// Reads the whole dataset, converted to T by HDF5 (any integer or float type stored).
template <class T>
std::vector<T> read_dataset(hid_t loc, const std::string& name, const std::string& what);
// Reads elements [offset, offset+count) of a 1-D dataset into out.
template <class T>
void read_range(hid_t dataset, hsize_t offset, hsize_t count, T* out);

// Reads whole rows (indices into the first dimension; sorted ascending, no repeats) of a dataset of any rank into
// out[rows.size() * row_elems], converted to T, with one H5Dread over a union of hyperslabs (runs of consecutive
// rows become one block), so a batch of scattered samples costs one call, not one per sample.
template <class T>
void read_rows(hid_t dataset, const std::vector<hsize_t>& rows, T* out);

void write_attr(hid_t obj, const std::string& name, const std::string& value);
void write_attr(hid_t obj, const std::string& name, int64_t value);
void write_attr(hid_t obj, const std::string& name, double value);
void write_attr(hid_t obj, const std::string& name, const std::vector<int64_t>& values);  // 1-D int64
bool has_attr(hid_t obj, const std::string& name);
std::string read_attr_string(hid_t obj, const std::string& name, const std::string& what);
int64_t read_attr_int(hid_t obj, const std::string& name, const std::string& what);
double read_attr_double(hid_t obj, const std::string& name, const std::string& what);
std::vector<int64_t> read_attr_int_list(hid_t obj, const std::string& name, const std::string& what);

}  // namespace strata::h5
