#pragma once
// What the reference dumpers (reference_dump, classifier_dump) share: writing a parameter buffer's tensors by
// name, and a main that brings MPI, Kokkos and HDF5 up around a run and reports errors as one line.
#include <mpi.h>

#include <Kokkos_Core.hpp>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "core/h5.hpp"
#include "nn/param_buffer.hpp"

namespace strata::reference {

// Every tensor of `p` (values from `all`: its parameters or gradients) as a dataset of `group`, by name and this
// rank's shape.
inline void write_tensors(hid_t group, const ParamBuffer<float>& p, const Vec<float>& all) {
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), all);
  for (const auto& s : p.specs()) {
    std::vector<hsize_t> shape(s.shape.begin(), s.shape.end());
    h5::write_dataset<float>(group, s.name, shape, host.data() + s.offset);
  }
}

// main() of a dumper: run(argc, argv) between MPI/Kokkos start and stop; an exception is "<name>: error: ..." and
// exit code 1.
template <class Run>
int dump_main(int argc, char** argv, const char* name, Run&& run) {
  MPI_Init(&argc, &argv);
  int rc = 0;
  {
    Kokkos::ScopeGuard kokkos(argc, argv);
    h5::quiet_errors();
    try {
      rc = run(argc, argv);
    } catch (const std::exception& e) {
      std::cerr << name << ": error: " << e.what() << "\n";
      rc = 1;
    }
  }
  MPI_Finalize();
  return rc;
}

}  // namespace strata::reference
