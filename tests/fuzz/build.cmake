# ctest fixture (fuzz_build): configures and builds the fuzz targets with clang++-14 in a tree of
# their own. Run as
#   cmake -DSOURCE_DIR=tests/fuzz -DBINARY_DIR=DIR -DCXX=clang++-14 [-DGENERATOR=Ninja]
#         [-DLAUNCHER=ccache] -P build.cmake
foreach(var SOURCE_DIR BINARY_DIR CXX)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "build.cmake: ${var} is not set")
  endif()
endforeach()
set(configure ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR} -DCMAKE_CXX_COMPILER=${CXX})
if(GENERATOR)
  list(APPEND configure -G ${GENERATOR})
endif()
if(LAUNCHER)
  list(APPEND configure -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
execute_process(COMMAND ${configure} RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "configuring the fuzz targets failed (${status})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY_DIR} RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "building the fuzz targets failed (${status})")
endif()
