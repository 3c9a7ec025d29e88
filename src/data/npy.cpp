#include "data/npy.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>

#include "core/error.hpp"

namespace strata::data {
namespace {

const char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

struct DtypeInfo {
  const char* name;
  char kind;  // numpy's kind letter: 'u', 'i', 'f'
  size_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {"uint8", 'u', 1}, {"int8", 'i', 1},  {"uint16", 'u', 2},  {"int16", 'i', 2},
    {"int32", 'i', 4}, {"int64", 'i', 8}, {"float32", 'f', 4}, {"float64", 'f', 8},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

// numel of a shape, rejecting negative extents and sizes that overflow int64 bytes.
int64_t checked_numel(const std::vector<int64_t>& shape, size_t itemsize, const std::string& where) {
  const int64_t limit = std::numeric_limits<int64_t>::max() / static_cast<int64_t>(itemsize);
  int64_t n = 1;
  for (int64_t d : shape) {
    STRATA_CHECK(d >= 0, "{}: negative extent {} in shape", where, d);
    STRATA_CHECK(d == 0 || n <= limit / d, "{}: shape too large", where);
    n *= d;
  }
  return n;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

bool is_one_of(char c, const char* set) { return c != '\0' && std::strchr(set, c) != nullptr; }

// ---- the header: a Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }

struct PyValue {
  enum Kind { kString, kBool, kNone, kInt, kSequence } kind = kNone;
  std::string str;  // kString: the contents
  bool boolean = false;
  int64_t integer = 0;
  std::vector<PyValue> items;  // kSequence: tuple or list
  std::string raw;             // the literal as written, for error messages
};

// Just enough of Python's literal syntax for what numpy writes (strings, ints, True/False/None, tuples, lists).
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& path) : text_(text), path_(path) {}

  std::map<std::string, PyValue> parse_dict() {
    std::map<std::string, PyValue> dict;
    expect('{');
    while (!accept('}')) {
      PyValue key = parse_value();
      if (key.kind != PyValue::kString) fail("dict key is not a string");
      expect(':');
      dict[key.str] = parse_value();
      if (!accept(',')) {
        expect('}');
        break;
      }
    }
    return dict;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    STRATA_FAIL("{}: malformed .npy header ({} at offset {}): {}", path_, why, pos_, text_);
  }
  void skip_space() {
    while (pos_ < text_.size() && is_one_of(text_[pos_], " \t\r\n")) ++pos_;
  }
  bool accept(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!accept(c)) fail(std::string("expected '") + c + "'");
  }

  PyValue parse_value() {
    skip_space();
    if (pos_ >= text_.size()) fail("unexpected end");
    const size_t start = pos_;
    PyValue v;
    const char c = text_[pos_];
    if (c == '\'' || c == '"') {
      v.kind = PyValue::kString;
      ++pos_;
      while (pos_ < text_.size() && text_[pos_] != c) {
        if (text_[pos_] == '\\') ++pos_;
        if (pos_ < text_.size()) v.str += text_[pos_++];
      }
      if (pos_ >= text_.size()) fail("unterminated string");
      ++pos_;
    } else if (c == '(' || c == '[') {
      v.kind = PyValue::kSequence;
      const char close = c == '(' ? ')' : ']';
      ++pos_;
      while (!accept(close)) {
        v.items.push_back(parse_value());
        if (!accept(',')) {
          expect(close);
          break;
        }
      }
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = PyValue::kInt;
      size_t used = 0;
      try {
        v.integer = std::stoll(text_.substr(pos_), &used);
      } catch (const std::exception&) {
        fail("bad integer");
      }
      pos_ += used;
      if (pos_ < text_.size() && (text_[pos_] == 'L' || text_[pos_] == 'l')) ++pos_;  // Python 2 longs
    } else {
      size_t end = pos_;
      while (end < text_.size() && std::isalpha(static_cast<unsigned char>(text_[end]))) ++end;
      const std::string word = text_.substr(pos_, end - pos_);
      if (word == "True" || word == "False") {
        v.kind = PyValue::kBool;
        v.boolean = word == "True";
      } else if (word == "None") {
        v.kind = PyValue::kNone;
      } else {
        fail("unexpected '" + std::string(1, c) + "'");
      }
      pos_ = end;
    }
    v.raw = text_.substr(start, pos_ - start);
    return v;
  }

  const std::string& text_;
  const std::string& path_;
  size_t pos_ = 0;
};

struct Descr {
  const DtypeInfo* dtype;
  bool big_endian;
};

// '<f4' -> float32 little-endian. Byte order '|' (not applicable) and '=' (native) are little-endian here.
Descr parse_descr(const PyValue& descr, const std::string& path) {
  STRATA_CHECK(descr.kind == PyValue::kString, "{}: unsupported dtype descr {} (structured arrays are not supported)",
               path, descr.raw);
  const std::string& s = descr.str;
  if (s.size() >= 3 && is_one_of(s[0], "<>|=")) {
    size_t size = 0;
    bool digits = true;
    for (size_t i = 2; i < s.size(); ++i) {
      digits = digits && s[i] >= '0' && s[i] <= '9';
      if (digits) size = size * 10 + static_cast<size_t>(s[i] - '0');
    }
    for (const auto& d : kDtypes)
      if (digits && d.kind == s[1] && d.size == size) return {&d, s[0] == '>' && size > 1};
  }
  STRATA_FAIL("{}: unsupported dtype descr '{}' (supported: |u1 |i1 <u2 <i2 <i4 <i8 <f4 <f8, either byte order)", path,
              s);
}

uint64_t read_le(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

int64_t file_size(std::ifstream& in) {
  in.seekg(0, std::ios::end);
  const int64_t size = static_cast<int64_t>(in.tellg());
  in.seekg(0, std::ios::beg);
  return size;
}

std::ifstream open_for_reading(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  STRATA_CHECK(in.good(), "{}: cannot open for reading", path);
  return in;
}

void read_exactly(std::ifstream& in, unsigned char* dst, int64_t n, const std::string& path) {
  in.read(reinterpret_cast<char*>(dst), n);
  STRATA_CHECK(in.gcount() == n, "{}: read error after {} of {} bytes", path, in.gcount(), n);
}

void byte_swap_items(std::vector<unsigned char>& bytes, size_t itemsize) {
  for (size_t i = 0; i + itemsize <= bytes.size(); i += itemsize)
    std::reverse(bytes.begin() + static_cast<std::ptrdiff_t>(i),
                 bytes.begin() + static_cast<std::ptrdiff_t>(i + itemsize));
}

std::string descr_for(const HostArray& a) {
  const DtypeInfo* d = find_dtype(a.dtype);
  STRATA_CHECK(d != nullptr, "unknown dtype '{}'", a.dtype);
  return std::string(d->size == 1 ? "|" : "<") + d->kind + std::to_string(d->size);
}

void check_consistent(const HostArray& a, const std::string& what) {
  const int64_t n = checked_numel(a.shape, a.itemsize(), what);
  STRATA_CHECK(a.bytes.size() == static_cast<size_t>(n) * a.itemsize(),
               "{}: holds {} bytes but shape {} of {} needs {}", what, a.bytes.size(), shape_text(a.shape), a.dtype,
               static_cast<size_t>(n) * a.itemsize());
}

template <class T>
T load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Calls f(index, value) for every element, value in its own C++ type.
template <class F>
void for_each_element(const HostArray& a, F&& f) {
  const unsigned char* p = a.bytes.data();
  const int64_t n = a.numel();
  const size_t s = a.itemsize();
  auto loop = [&](auto tag) {
    using T = decltype(tag);
    for (int64_t i = 0; i < n; ++i) f(i, load<T>(p + static_cast<size_t>(i) * s));
  };
  if (a.dtype == "uint8")
    loop(uint8_t{});
  else if (a.dtype == "int8")
    loop(int8_t{});
  else if (a.dtype == "uint16")
    loop(uint16_t{});
  else if (a.dtype == "int16")
    loop(int16_t{});
  else if (a.dtype == "int32")
    loop(int32_t{});
  else if (a.dtype == "int64")
    loop(int64_t{});
  else if (a.dtype == "float32")
    loop(float{});
  else if (a.dtype == "float64")
    loop(double{});
  else
    STRATA_FAIL("unknown dtype '{}'", a.dtype);
}

}  // namespace

size_t dtype_itemsize(const std::string& dtype) {
  const DtypeInfo* d = find_dtype(dtype);
  STRATA_CHECK(d != nullptr, "unknown dtype '{}' (expected uint8, int8, uint16, int16, int32, int64, float32, float64)",
               dtype);
  return d->size;
}

size_t HostArray::itemsize() const { return dtype_itemsize(dtype); }

int64_t HostArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

HostArray read_npy(const std::string& path) {
  std::ifstream in = open_for_reading(path);
  const int64_t size = file_size(in);

  // Preamble: magic, major, minor, header length (2 bytes in 1.0, 4 bytes in 2.0 and 3.0).
  unsigned char pre[12] = {};
  STRATA_CHECK(size >= 10, "{}: not a .npy file ({} bytes)", path, size);
  read_exactly(in, pre, 10, path);
  STRATA_CHECK(std::memcmp(pre, kMagic, kMagicSize) == 0, "{}: not a .npy file (bad magic)", path);
  const int major = pre[6], minor = pre[7];
  STRATA_CHECK(major >= 1 && major <= 3 && minor == 0, "{}: unsupported .npy version {}.{} (expected 1.0, 2.0 or 3.0)",
               path, major, minor);
  int64_t prefix = 10;
  if (major >= 2) {
    STRATA_CHECK(size >= 12, "{}: truncated .npy preamble", path);
    read_exactly(in, pre + 10, 2, path);
    prefix = 12;
  }
  const int64_t header_len = static_cast<int64_t>(read_le(pre + 8, major >= 2 ? 4 : 2));
  STRATA_CHECK(size - prefix >= header_len, "{}: truncated: header says {} bytes, file has {} after the preamble", path,
               header_len, size - prefix);
  std::string header(static_cast<size_t>(header_len), '\0');
  read_exactly(in, reinterpret_cast<unsigned char*>(header.data()), header_len, path);

  auto dict = HeaderParser(header, path).parse_dict();
  for (const char* key : {"descr", "fortran_order", "shape"})
    STRATA_CHECK(dict.count(key) == 1, "{}: .npy header has no '{}': {}", path, key, header);
  const Descr descr = parse_descr(dict["descr"], path);
  const PyValue& fortran = dict["fortran_order"];
  STRATA_CHECK(fortran.kind == PyValue::kBool, "{}: fortran_order is {}, expected True or False", path, fortran.raw);
  STRATA_CHECK(!fortran.boolean, "{}: Fortran order not supported, save with np.ascontiguousarray", path);
  const PyValue& shape_value = dict["shape"];
  STRATA_CHECK(shape_value.kind == PyValue::kSequence, "{}: shape is {}, expected a tuple", path, shape_value.raw);

  HostArray a;
  a.dtype = descr.dtype->name;
  for (const PyValue& d : shape_value.items) {
    STRATA_CHECK(d.kind == PyValue::kInt, "{}: shape {} holds a non-integer", path, shape_value.raw);
    a.shape.push_back(d.integer);
  }
  const int64_t expected = checked_numel(a.shape, descr.dtype->size, path) * static_cast<int64_t>(descr.dtype->size);
  const int64_t found = size - prefix - header_len;
  STRATA_CHECK(found >= expected, "{}: truncated: expected {} bytes of data, found {}", path, expected, found);
  STRATA_CHECK(found == expected,
               "{}: expected {} bytes of data, found {} (several arrays saved in one file, or a corrupt file)", path,
               expected, found);
  a.bytes.resize(static_cast<size_t>(expected));
  read_exactly(in, a.bytes.data(), expected, path);
  if (descr.big_endian) byte_swap_items(a.bytes, descr.dtype->size);
  return a;
}

HostArray read_raw(const std::string& path, const std::string& dtype, const std::vector<int64_t>& shape) {
  HostArray a;
  a.dtype = dtype;
  a.shape = shape;
  const int64_t expected = checked_numel(shape, dtype_itemsize(dtype), path) * static_cast<int64_t>(a.itemsize());
  std::ifstream in = open_for_reading(path);
  const int64_t size = file_size(in);
  STRATA_CHECK(size == expected, "{}: raw file has {} bytes, but shape {} of {} needs {}", path, size,
               shape_text(shape), dtype, expected);
  a.bytes.resize(static_cast<size_t>(expected));
  read_exactly(in, a.bytes.data(), expected, path);
  return a;
}

void write_npy(const std::string& path, const HostArray& a) {
  check_consistent(a, path);
  std::string shape = "(";
  for (size_t i = 0; i < a.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(a.shape[i]);
  if (a.shape.size() == 1) shape += ",";
  shape += ")";
  std::string header = "{'descr': '" + descr_for(a) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // As numpy does: spaces then '\n', so that the data starts at a multiple of 64 bytes (aligned loads/mmap).
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  STRATA_CHECK(header.size() <= 65535, "{}: .npy 1.0 header too long ({} bytes)", path, header.size());

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  STRATA_CHECK(out.good(), "{}: cannot open for writing", path);
  out.write(kMagic, kMagicSize);
  const char version_and_len[4] = {1, 0, static_cast<char>(header.size() & 0xff),
                                   static_cast<char>(header.size() >> 8)};
  out.write(version_and_len, 4);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(a.bytes.data()), static_cast<std::streamsize>(a.bytes.size()));
  out.close();
  STRATA_CHECK(out.good(), "{}: write failed", path);
}

std::vector<float> to_float32(const HostArray& a, const std::string& what) {
  check_consistent(a, what);
  std::vector<float> out(static_cast<size_t>(a.numel()));
  for_each_element(a, [&](int64_t i, auto v) { out[static_cast<size_t>(i)] = static_cast<float>(v); });
  return out;
}

std::vector<int32_t> to_int32(const HostArray& a, const std::string& what) {
  check_consistent(a, what);
  STRATA_CHECK(a.dtype != "float32" && a.dtype != "float64", "{}: expected an integer dtype, got {}", what, a.dtype);
  std::vector<int32_t> out(static_cast<size_t>(a.numel()));
  for_each_element(a, [&](int64_t i, auto v) {
    const int64_t wide = static_cast<int64_t>(v);
    STRATA_CHECK(wide >= std::numeric_limits<int32_t>::min() && wide <= std::numeric_limits<int32_t>::max(),
                 "{}: value {} at index {} does not fit in int32", what, wide, i);
    out[static_cast<size_t>(i)] = static_cast<int32_t>(wide);
  });
  return out;
}

}  // namespace strata::data
