// The cross-validation report (train/cross_validation.hpp): fold directories and overrides, each fold's last
// validation record read from its metrics.jsonl, mean and sample standard deviation, the table and the JSON.
#include "train/cross_validation.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "../data/temp_dir.hpp"
#include "core/error.hpp"

namespace strata {
namespace {

void write_fold(const testing::TempDir& dir, int fold, const std::string& metrics, const std::string& status = "") {
  std::filesystem::create_directories(fold_dir(dir.file(""), fold));
  dir.write("fold-" + std::to_string(fold) + "/metrics.jsonl", metrics);
  if (!status.empty()) dir.write("fold-" + std::to_string(fold) + "/status.json", status);
}

TEST(CrossValidation, FoldOverridesAndCompletion) {
  testing::TempDir dir;
  const std::string out = dir.file("");
  EXPECT_EQ(fold_overrides("runs/cv", 5, 2),
            (std::vector<std::string>{"data.cv_folds=5", "data.cv_fold=2", "train.out_dir=runs/cv/fold-2"}));
  EXPECT_FALSE(fold_complete(out, 0));
  write_fold(dir, 0, "", "{\"state\": \"stopped\", \"step\": 8}\n");
  EXPECT_FALSE(fold_complete(out, 0));
  write_fold(dir, 0, "", "{\"state\": \"complete\", \"step\": 16}\n");
  EXPECT_TRUE(fold_complete(out, 0));
  write_fold(dir, 1, "", "{\"state\": \"comp");  // torn: not complete
  EXPECT_FALSE(fold_complete(out, 1));
}

TEST(CrossValidation, ReadsTheLastValidationOfEachFold) {
  testing::TempDir dir;
  const std::string out = dir.file("");
  write_fold(
      dir, 0,
      "{\"step\": 1, \"loss\": 2.0}\n{\"step\": 8, \"val_loss\": 1.5, \"val_accuracy\": 0.5, \"val_rows\": 41}\n"
      "{\"step\": 16, \"loss\": 1.0}\n{\"step\": 16, \"val_loss\": 1.0, \"val_accuracy\": 0.75, \"val_rows\": 41}\n");
  write_fold(dir, 1, "{\"step\": 16, \"val_loss\": 2.0, \"val_accuracy\": 0.25, \"val_rows\": 40}\n");
  write_fold(dir, 2, "{\"step\": 16, \"val_loss\": 3.0, \"val_accuracy\": 0.5, \"val_rows\": 40}\n");
  const FoldResult f0 = read_fold_result(out, 0);
  EXPECT_EQ(f0.step, 16);
  EXPECT_EQ(f0.metrics, (std::map<std::string, double>{{"val_accuracy", 0.75}, {"val_loss", 1.0}}));
  const auto r = summarize_folds({f0, read_fold_result(out, 1), read_fold_result(out, 2)});
  EXPECT_EQ(r.folds, 3);
  EXPECT_DOUBLE_EQ(r.mean.at("val_loss"), 2.0);
  EXPECT_DOUBLE_EQ(r.std.at("val_loss"), 1.0);  // sample std of 1, 2, 3
  EXPECT_DOUBLE_EQ(r.mean.at("val_accuracy"), 0.5);
  EXPECT_DOUBLE_EQ(r.std.at("val_accuracy"), 0.25);
  const auto table = format_report(r);
  EXPECT_NE(table.find("mean +- std"), std::string::npos) << table;
  EXPECT_NE(table.find("2 +- 1"), std::string::npos) << table;
  const auto j = nlohmann::json::parse(report_json(r));
  EXPECT_EQ(j["folds"], 3);
  EXPECT_EQ(j["per_fold"][1]["val_loss"], 2.0);
  EXPECT_EQ(j["std"]["val_accuracy"], 0.25);
}

TEST(CrossValidation, MissingOrEmptyFoldsAreNamed) {
  testing::TempDir dir;
  const std::string out = dir.file("");
  try {
    read_fold_result(out, 3);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fold-3/metrics.jsonl"), std::string::npos) << e.what();
  }
  write_fold(dir, 0, "{\"step\": 1, \"loss\": 2.0}\n");
  EXPECT_THROW(read_fold_result(out, 0), Error);
  write_fold(dir, 1, "not json\n");
  EXPECT_THROW(read_fold_result(out, 1), Error);
  EXPECT_THROW(summarize_folds({}), Error);
}

}  // namespace
}  // namespace strata
