// The model config as HDF5 attributes (core/model_attrs.hpp): every kind round-trips, a file without `kind` is a
// GPT, and a mismatch names the first differing field.
#include "core/model_attrs.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.hpp"
#include "core/h5.hpp"

namespace strata {
namespace {

std::string temp_file(const char* name) { return (std::filesystem::temp_directory_path() / name).string(); }

TEST(ModelAttrs, EveryKindRoundTrips) {
  const std::string path = temp_file("strata-model-attrs-test.h5");
  for (const auto& kind : model_kinds()) {
    ModelConfig m;
    m.kind = kind;
    m.channels = {4, 12};
    m.input_shape = kind == "cnn" ? std::vector<int64_t>{3, 5, 6} : std::vector<int64_t>{7, 2};
    m.num_classes = 5;
    m.cell = "gru";
    {
      auto file = h5::create_file(path);
      write_model_attrs(file, m, "model.");
    }
    auto file = h5::open_file(path);
    const ModelConfig back = read_model_attrs(file, "model.", path);
    EXPECT_EQ(model_fields(back), model_fields(m)) << kind;
    EXPECT_EQ(model_attrs_mismatch(file, "model.", m, path), "") << kind;
  }
  std::filesystem::remove(path);
}

TEST(ModelAttrs, WithoutKindItIsAGptAndMismatchesAreNamed) {
  const std::string path = temp_file("strata-model-attrs-gpt.h5");
  {
    auto file = h5::create_file(path);
    h5::write_attr(file, "n_layer", int64_t(2));  // an older weights file: GPT fields only
  }
  auto file = h5::open_file(path);
  ModelConfig run;
  run.n_layer = 3;
  EXPECT_EQ(model_attrs_mismatch(file, "", run, path), "model.n_layer = 2 in the file, 3 in the config");
  run.n_layer = 2;
  EXPECT_EQ(model_attrs_mismatch(file, "", run, path), "");  // absent fields are not compared
  run.kind = "lstm";
  EXPECT_EQ(model_attrs_mismatch(file, "", run, path), "model.kind = gpt in the file, lstm in the config");
  EXPECT_THROW(read_model_attrs(file, "", path), Error);  // n_head etc. are missing
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace strata
