#pragma once
// Tied tensors across pipeline stages (TensorSpec::tied; the GPT's token embedding, which the first stage uses as
// the input embedding and the last as the output head): the two copies stay equal because both get the sum of
// their gradients, over the group of the first and the last stage, before the optimizer step. The sum can only
// come after the whole pipeline (the first stage finishes its backward last), so the data-parallel buckets that
// hold a tied tensor are held back until then.
#include <cstdint>

#include "comm/communicator.hpp"
#include "nn/model.hpp"

namespace strata {

template <class T>
class TiedGradients {
 public:
  // group: the first and the last stage of this rank's pipeline (null where this rank holds no tied tensor or
  // there is one stage: then this does nothing).
  TiedGradients(Communicator* group, ParamBuffer<T>& params);

  // Passes the gradient-ready calls on to `next` (data parallelism), holding back readiness below the end of the
  // last tied tensor in the buffer until sum() has run.
  GradReadyHook hold_back(GradReadyHook next) const;
  // After the pipeline: sums the tied tensors' gradients over the group, in place.
  void sum();

 private:
  Communicator* group_;
  ParamBuffer<T>& params_;
  int64_t tied_end_ = 0;  // buffer offset where the last tied tensor ends
};

}  // namespace strata
