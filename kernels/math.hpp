#pragma once
// Device-callable math under one name for Kokkos 3.4 (Kokkos::Experimental::) and 4.x (Kokkos::).
#include <Kokkos_Core.hpp>

namespace strata::kmath {
#if KOKKOS_VERSION >= 30700
using Kokkos::cos;
using Kokkos::exp;
using Kokkos::log;
using Kokkos::sqrt;
using Kokkos::tanh;
#else
using Kokkos::Experimental::cos;
using Kokkos::Experimental::exp;
using Kokkos::Experimental::log;
using Kokkos::Experimental::sqrt;
using Kokkos::Experimental::tanh;
#endif
}  // namespace strata::kmath
