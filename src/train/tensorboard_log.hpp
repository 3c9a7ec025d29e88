#pragma once
// <out_dir>/tb: a run's scalars and resolved config as TensorBoard event files (core/event_file.hpp), written by the
// lead rank and flushed record by record. A resumed run first drops from the event files already there the records
// after the step it resumes from (written after its checkpoint, before the interruption), so that no step appears
// twice, and then writes a file of its own (TensorBoard reads a directory's files in name order: by start time).
#include <cstdint>
#include <fstream>
#include <string>

namespace strata {

class TensorBoardLog {
 public:
  // resume_step < 0: a new run (the event files already in `dir` are removed).
  TensorBoardLog(const std::string& dir, int64_t resume_step);
  void scalar(const std::string& tag, double value, int64_t step);
  void text(const std::string& tag, const std::string& text, int64_t step);
  const std::string& path() const { return path_; }

 private:
  void write(const std::string& event);
  std::string path_;
  std::ofstream out_;
};

}  // namespace strata
