# Provides the target strata::kokkos for either Kokkos flavour:
#  - Debian/Trilinos' Kokkos 3.4 package: its Kokkos::kokkos target carries a wrong include path
#    (/usr/lib/include), but Kokkos_INCLUDE_DIRS / Kokkos_LIBRARIES / Kokkos_LIBRARY_DIRS are right;
#  - a standard Kokkos 4.x install (a cluster's CUDA or OpenMP build): Kokkos::kokkos is correct as is.
find_package(Kokkos REQUIRED)
add_library(strata_kokkos INTERFACE)
add_library(strata::kokkos ALIAS strata_kokkos)
if(Kokkos_LIBRARIES MATCHES "trilinos_kokkoscore")
  set(_strata_kokkos_libs "")
  foreach(_lib IN LISTS Kokkos_LIBRARIES)
    find_library(_strata_found_${_lib} NAMES ${_lib} HINTS ${Kokkos_LIBRARY_DIRS} REQUIRED)
    list(APPEND _strata_kokkos_libs ${_strata_found_${_lib}})
  endforeach()
  target_include_directories(strata_kokkos SYSTEM INTERFACE ${Kokkos_INCLUDE_DIRS})
  target_link_libraries(strata_kokkos INTERFACE ${_strata_kokkos_libs} ${CMAKE_DL_LIBS})
  message(STATUS "Kokkos: Trilinos package ${Kokkos_VERSION} (devices: ${Kokkos_DEVICES}), include ${Kokkos_INCLUDE_DIRS}")
elseif(TARGET Kokkos::kokkos)
  target_link_libraries(strata_kokkos INTERFACE Kokkos::kokkos)
  message(STATUS "Kokkos: standalone package ${Kokkos_VERSION} (devices: ${Kokkos_DEVICES})")
else()
  message(FATAL_ERROR "Kokkos was found but provides neither Kokkos::kokkos nor Kokkos_LIBRARIES")
endif()

# STRATA_ENABLE_CUDA follows the backend: Kokkos' CUDA memory is what makes gemm() reach cuBLAS and the grid reach
# NCCL, so a mismatch would build something that silently never uses the GPU, or cannot run.
set(STRATA_KOKKOS_HAS_CUDA OFF)
if(Kokkos_ENABLE_CUDA OR "${Kokkos_DEVICES}" MATCHES "CUDA")
  set(STRATA_KOKKOS_HAS_CUDA ON)
endif()
if(STRATA_ENABLE_CUDA STREQUAL "AUTO")
  set(STRATA_ENABLE_CUDA ${STRATA_KOKKOS_HAS_CUDA})
elseif(STRATA_ENABLE_CUDA AND NOT STRATA_KOKKOS_HAS_CUDA AND NOT STRATA_CUDA_COMPILE_CHECK)
  message(FATAL_ERROR "STRATA_ENABLE_CUDA=ON but Kokkos ${Kokkos_VERSION} (${Kokkos_DIR}) has no CUDA backend (devices: "
                      "${Kokkos_DEVICES}): point Kokkos_ROOT at a Kokkos built with Kokkos_ENABLE_CUDA, or use AUTO")
elseif(NOT STRATA_ENABLE_CUDA AND STRATA_KOKKOS_HAS_CUDA)
  message(FATAL_ERROR "STRATA_ENABLE_CUDA=OFF but Kokkos ${Kokkos_VERSION} (${Kokkos_DIR}) is a CUDA build: its Views "
                      "live in GPU memory, which needs cuBLAS and NCCL; use STRATA_ENABLE_CUDA=AUTO or ON")
endif()
if(STRATA_KOKKOS_HAS_CUDA)
  get_filename_component(_strata_cxx_name "${CMAKE_CXX_COMPILER}" NAME)
  if(NOT _strata_cxx_name MATCHES "nvcc_wrapper" AND NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "Kokkos ${Kokkos_VERSION} is a CUDA build: configure with "
                        "-DCMAKE_CXX_COMPILER=<its prefix>/bin/nvcc_wrapper (now ${CMAKE_CXX_COMPILER})")
  endif()
endif()
