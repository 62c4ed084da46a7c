# Included from tests/CMakeLists.txt: a separate project (tests/consumer) uses Weir each way a user
# can: find_package after cmake --install (and pkg-config), add_subdirectory, and the libweir-dev
# package unpacked with dpkg -x. Each configures, builds and runs it with this build's compiler and
# flags (so sanitizer builds link), compiling a little of Weir, so they run one at a time and alone.
find_program(WEIR_PKG_CONFIG NAMES pkgconf pkg-config)
find_program(WEIR_DPKG dpkg)
find_program(WEIR_APT_GET apt-get)

set(weir_consumer_modes subdir)
if(WEIR_INSTALL)
  list(APPEND weir_consumer_modes install)
  if(WEIR_DPKG)
    list(APPEND weir_consumer_modes deb)
  else()
    message(STATUS "dpkg not found: the libweir-dev consumer test is not registered")
  endif()
endif()

foreach(mode ${weir_consumer_modes})
  add_test(NAME consumer_${mode}
           COMMAND ${CMAKE_COMMAND} -DMODE=${mode} -DWEIR_SOURCE_DIR=${PROJECT_SOURCE_DIR}
                   -DWEIR_BINARY_DIR=${PROJECT_BINARY_DIR} -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/consumer/${mode}
                   -DGENERATOR=${CMAKE_GENERATOR} -DMAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}
                   -DCXX_COMPILER=${CMAKE_CXX_COMPILER} "-DCXX_FLAGS=${CMAKE_CXX_FLAGS}"
                   "-DEXE_LINKER_FLAGS=${CMAKE_EXE_LINKER_FLAGS}" -DCOMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER}
                   -DPKG_CONFIG=${WEIR_PKG_CONFIG} -DAPT_GET=${WEIR_APT_GET}
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/consumer/check_consumer.cmake)
  set_tests_properties(consumer_${mode} PROPERTIES LABELS consumer RUN_SERIAL TRUE TIMEOUT 600)
endforeach()
