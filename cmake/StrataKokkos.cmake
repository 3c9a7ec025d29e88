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
