#pragma once
// The model config (ModelConfig) as attributes of an HDF5 object, for weights files, checkpoints and exports:
// `<prefix>kind` and that kind's fields (model_fields), integers as int64, strings as strings, lists as 1-D int64.
#include <hdf5.h>

#include <string>

#include "core/config.hpp"

namespace strata {

void write_model_attrs(hid_t obj, const ModelConfig& model, const std::string& prefix);

// Reads them back. A file without `<prefix>kind` holds a GPT (written before other kinds existed). Every field of
// the kind must be present; errors name `what` and the attribute.
ModelConfig read_model_attrs(hid_t obj, const std::string& prefix, const std::string& what);

// The first field of `run` whose attribute is present in `obj` with another value ("model.n_layer = 2 in the file,
// 4 in the config"), or "" when they all agree; `kind` absent counts as gpt. Fields absent from the file are not
// compared (files written by other tools may omit them).
std::string model_attrs_mismatch(hid_t obj, const std::string& prefix, const ModelConfig& run, const std::string& what);

}  // namespace strata
