# ctest entry fuzz_<target>: runs one fuzz target for SECONDS on a fresh copy of its seed corpus
# (new inputs go to the copy, never to the source tree), then prints the executions and, on a
# crash, leak or timeout, the fuzzer's report and the saved input. Run as
#   cmake -DFUZZER=build/fuzz/fuzz_x -DSEEDS=tests/fuzz/corpus/fuzz_x -DWORK=DIR -DSECONDS=15 -P run.cmake
foreach(var FUZZER SEEDS WORK SECONDS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run.cmake: ${var} is not set")
  endif()
endforeach()
foreach(var FUZZER SEEDS WORK)
  get_filename_component(${var} ${${var}} ABSOLUTE)
endforeach()
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/artifacts)
file(COPY ${SEEDS}/ DESTINATION ${WORK}/corpus)

set(ENV{ASAN_OPTIONS} "detect_leaks=1:abort_on_error=1")
set(ENV{UBSAN_OPTIONS} "print_stacktrace=1:halt_on_error=1")
find_program(symbolizer NAMES llvm-symbolizer-14 llvm-symbolizer)
if(symbolizer)
  set(ENV{ASAN_SYMBOLIZER_PATH} ${symbolizer})
endif()
execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -rss_limit_mb=2048 -timeout=10 -seed=1
          -print_final_stats=1 -artifact_prefix=${WORK}/artifacts/ ${WORK}/corpus
  WORKING_DIRECTORY ${WORK}
  OUTPUT_FILE ${WORK}/fuzz.log ERROR_FILE ${WORK}/fuzz.log
  RESULT_VARIABLE status)
file(STRINGS ${WORK}/fuzz.log executions REGEX "^stat::number_of_executed_units")
string(REGEX REPLACE "[^0-9]" "" executions "${executions}")
get_filename_component(name ${FUZZER} NAME)
if(status EQUAL 0)
  message(STATUS "${name}: ${executions} executions in ${SECONDS} s, no crash, leak or timeout")
  return()
endif()
file(READ ${WORK}/fuzz.log log)
string(LENGTH "${log}" length)
if(length GREATER 12000)
  math(EXPR from "${length} - 12000")
  string(SUBSTRING "${log}" ${from} -1 log)
endif()
file(GLOB saved ${WORK}/artifacts/*)
if(NOT executions)
  set(executions "?")
endif()
message(FATAL_ERROR "${name} failed (${status}) after ${executions} executions; the input: ${saved}\n"
                    "reproduce: ${FUZZER} ${saved}\n${log}")
