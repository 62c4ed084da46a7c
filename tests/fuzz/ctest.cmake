# Included from tests/CMakeLists.txt: the libFuzzer targets of tests/fuzz, built with clang++-14 in
# ${CMAKE_BINARY_DIR}/fuzz (fixture fuzz_build) and run for WEIR_FUZZ_SECONDS each on a copy of
# their seed corpus. Registered only when clang++-14 and its libFuzzer runtime are installed.
set(WEIR_FUZZ_SECONDS 15 CACHE STRING "Seconds each fuzz target runs in ctest (scripts/fuzz runs longer)")
find_program(WEIR_FUZZ_CXX NAMES clang++-14)
set(weir_fuzz_runtime "")
if(WEIR_FUZZ_CXX)
  execute_process(COMMAND ${WEIR_FUZZ_CXX} -print-resource-dir OUTPUT_VARIABLE weir_fuzz_resource_dir
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  file(GLOB weir_fuzz_runtime "${weir_fuzz_resource_dir}/lib/linux/libclang_rt.fuzzer-*.a")
endif()
if(NOT weir_fuzz_runtime)
  message(STATUS "clang++-14 with libFuzzer not found (Debian packages clang-14, libfuzzer-14-dev): "
                 "fuzz tests are not registered")
  return()
endif()

set(weir_fuzz_dir ${CMAKE_BINARY_DIR}/fuzz)
add_test(NAME fuzz_build
         COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}/fuzz -DBINARY_DIR=${weir_fuzz_dir}
                 -DCXX=${WEIR_FUZZ_CXX} -DGENERATOR=${CMAKE_GENERATOR} -DLAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER}
                 -P ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/build.cmake)
# The build uses every core: it runs alone under ctest -j2.
set_tests_properties(fuzz_build PROPERTIES FIXTURES_SETUP weir_fuzz RESOURCE_LOCK weir_fuzz_dir PROCESSORS 2
                                           LABELS fuzz TIMEOUT 1200)

file(GLOB weir_fuzz_targets LIST_DIRECTORIES true RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus
     ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/*)
foreach(target IN LISTS weir_fuzz_targets)
  add_test(NAME ${target}
           COMMAND ${CMAKE_COMMAND} -DFUZZER=${weir_fuzz_dir}/${target}
                   -DSEEDS=${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${target} -DWORK=${weir_fuzz_dir}/run/${target}
                   -DSECONDS=${WEIR_FUZZ_SECONDS} -P ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/run.cmake)
  math(EXPR weir_fuzz_timeout "${WEIR_FUZZ_SECONDS} + 120")
  set_tests_properties(${target} PROPERTIES FIXTURES_REQUIRED weir_fuzz LABELS fuzz TIMEOUT ${weir_fuzz_timeout})
endforeach()
