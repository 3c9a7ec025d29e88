include(GoogleTest)
# strata_unit_test(name sources...): a GoogleTest binary linked to the library, one ctest per test case.
function(strata_unit_test name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE strata_lib GTest::gtest strata_test_main)
  # A CUDA build cannot list its tests where it is built (no GPU, no libcuda): list them when ctest runs.
  if(STRATA_KOKKOS_HAS_CUDA)
    gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300 LABELS unit)
  else()
    gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300 LABELS unit)
  endif()
endfunction()

# strata_mpi_test(name sources...): a GoogleTest binary with the MPI-aware main (tests/mpi/mpi_test_main.cpp),
# registered as ctest tests <name>.np<N> for N in 1, 2, 4, 8, each run as
# `mpiexec [--allow-run-as-root --oversubscribe] -np N <binary>`, label mpi. The TIMEOUT makes a hung rank
# fail the test instead of blocking CI; PROCESSORS N keeps ctest -jJ from running more ranks than J slots
# at once (a test wider than J runs alone), so two 8-rank tests never overlap on a small machine.
set(STRATA_MPI_TEST_NPROCS 1 2 4 8 CACHE STRING "Rank counts every MPI test runs at")
set(STRATA_MPI_TEST_TIMEOUT 120 CACHE STRING "ctest TIMEOUT (seconds) of each MPI test run")
function(strata_mpi_test name)
  if(NOT MPIEXEC_EXECUTABLE)
    message(FATAL_ERROR "strata_mpi_test(${name}): FindMPI found no mpiexec (set MPIEXEC_EXECUTABLE)")
  endif()
  if(NOT TARGET strata_mpi_test_main)
    add_library(strata_mpi_test_main STATIC ${PROJECT_SOURCE_DIR}/tests/mpi/mpi_test_main.cpp)
    target_link_libraries(strata_mpi_test_main PUBLIC strata_lib GTest::gtest)
    target_include_directories(strata_mpi_test_main PUBLIC ${PROJECT_SOURCE_DIR}/tests)
  endif()
  # Open MPI refuses root and more ranks than cores unless told; other MPIs do not know these flags.
  if(NOT DEFINED CACHE{STRATA_MPIEXEC_IS_OPENMPI})
    execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE _version ERROR_VARIABLE _version
                    RESULT_VARIABLE _rc)
    if(_version MATCHES "Open MPI|OpenRTE")
      set(STRATA_MPIEXEC_IS_OPENMPI ON CACHE INTERNAL "")
    else()
      set(STRATA_MPIEXEC_IS_OPENMPI OFF CACHE INTERNAL "")
    endif()
  endif()
  set(_flags ${MPIEXEC_PREFLAGS})
  if(STRATA_MPIEXEC_IS_OPENMPI)
    list(APPEND _flags --allow-run-as-root --oversubscribe)
  endif()
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE strata_lib GTest::gtest strata_mpi_test_main)
  foreach(np IN LISTS STRATA_MPI_TEST_NPROCS)
    add_test(NAME ${name}.np${np}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${_flags} $<TARGET_FILE:${name}>
                     ${MPIEXEC_POSTFLAGS})
    set_tests_properties(${name}.np${np} PROPERTIES
      TIMEOUT ${STRATA_MPI_TEST_TIMEOUT}
      LABELS mpi
      PROCESSORS ${np}
      ENVIRONMENT "OMPI_MCA_rmaps_base_oversubscribe=1;OPENBLAS_NUM_THREADS=1")
  endforeach()
endfunction()
