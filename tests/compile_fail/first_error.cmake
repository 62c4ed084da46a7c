# Builds the compile-fail target TARGET in BUILD_DIR and prints what a person reads first: the
# compiler's output up to and including its first error line, then a line "---", then the rest.
# A compile-fail test matches its expected message against this, so the message must be the first
# error, not one somewhere in the output.
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET} OUTPUT_VARIABLE out
                ERROR_VARIABLE out RESULT_VARIABLE rc)
if(rc EQUAL 0)
  message("${TARGET} compiled, but it must not")
  return()
endif()
string(FIND "${out}" "error:" at)
if(at LESS 0)
  message("${out}\n---\nno error line")
  return()
endif()
string(SUBSTRING "${out}" ${at} -1 tail)
string(FIND "${tail}" "\n" eol)
if(eol LESS 0)
  string(LENGTH "${tail}" eol)
endif()
math(EXPR cut "${at} + ${eol}")
string(SUBSTRING "${out}" 0 ${cut} head)
string(SUBSTRING "${out}" ${cut} -1 rest)
message("${head}\n---${rest}")
