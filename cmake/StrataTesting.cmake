include(GoogleTest)
# strata_unit_test(name sources...): a GoogleTest binary linked to the library, one ctest per test case.
function(strata_unit_test name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE strata_lib GTest::gtest strata_test_main)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300 LABELS unit)
endfunction()
