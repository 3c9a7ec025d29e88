#include "core/model_attrs.hpp"

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/h5.hpp"

namespace strata {
namespace {

void write_value(hid_t obj, const std::string& name, const ConfigValue& v) {
  switch (v.index()) {
    case 0: h5::write_attr(obj, name, std::get<int64_t>(v)); break;
    case 1: h5::write_attr(obj, name, std::get<double>(v)); break;
    case 2: h5::write_attr(obj, name, int64_t(std::get<bool>(v))); break;
    case 3: h5::write_attr(obj, name, std::get<std::string>(v)); break;
    default: h5::write_attr(obj, name, std::get<std::vector<int64_t>>(v)); break;
  }
}

// The attribute `name`, read as the type of `like`.
ConfigValue read_value(hid_t obj, const std::string& name, const ConfigValue& like, const std::string& what) {
  switch (like.index()) {
    case 0: return h5::read_attr_int(obj, name, what);
    case 1: return h5::read_attr_double(obj, name, what);
    case 2: return h5::read_attr_int(obj, name, what) != 0;
    case 3: return h5::read_attr_string(obj, name, what);
    default: return h5::read_attr_int_list(obj, name, what);
  }
}

std::string stored_kind(hid_t obj, const std::string& prefix, const std::string& what) {
  return h5::has_attr(obj, prefix + "kind") ? h5::read_attr_string(obj, prefix + "kind", what) : "gpt";
}

}  // namespace

void write_model_attrs(hid_t obj, const ModelConfig& model, const std::string& prefix) {
  for (const auto& [name, value] : model_fields(model)) write_value(obj, prefix + name, value);
}

ModelConfig read_model_attrs(hid_t obj, const std::string& prefix, const std::string& what) {
  ModelConfig like;
  like.kind = stored_kind(obj, prefix, what);
  std::vector<std::pair<std::string, ConfigValue>> fields;
  for (const auto& [name, value] : model_fields(like))
    fields.push_back({name, name == "kind" ? ConfigValue(like.kind) : read_value(obj, prefix + name, value, what)});
  return model_from_fields(fields, what);
}

std::string model_attrs_mismatch(hid_t obj, const std::string& prefix, const ModelConfig& run,
                                 const std::string& what) {
  const std::string kind = stored_kind(obj, prefix, what);
  if (kind != run.kind) return fmt::format("model.kind = {} in the file, {} in the config", kind, run.kind);
  for (const auto& [name, value] : model_fields(run)) {
    if (name == "kind" || !h5::has_attr(obj, prefix + name)) continue;
    const ConfigValue stored = read_value(obj, prefix + name, value, what);
    if (stored != value)
      return fmt::format("model.{} = {} in the file, {} in the config", name, format_value(stored),
                         format_value(value));
  }
  return "";
}

}  // namespace strata
