# Builds and runs the consumer project (tests/consumer) against Weir one way, as a separate project
# would. Run with cmake -P; ctest does (tests/consumer/consumer_tests.cmake).
#
#   MODE          install: cmake --install of WEIR_BINARY_DIR into a staged prefix, find_package(Weir),
#                          then pkg-config (weir.pc) and a build with its flags alone
#                 subdir:  add_subdirectory of WEIR_SOURCE_DIR (only Weir's libraries are built)
#                 deb:     cpack -G DEB in WEIR_BINARY_DIR, the package unpacked with dpkg -x into a
#                          scratch root, find_package(Weir) from there, its Depends checked with apt
#   WEIR_SOURCE_DIR, WEIR_BINARY_DIR, WORK_DIR (emptied first)
#   GENERATOR, MAKE_PROGRAM, CXX_COMPILER, CXX_FLAGS, EXE_LINKER_FLAGS, COMPILER_LAUNCHER: the build's own,
#   so the consumer links with a sanitizer build's libraries; PKG_CONFIG, APT_GET: the tools (empty:
#   that step is skipped)
cmake_minimum_required(VERSION 3.25)

foreach(var MODE WEIR_SOURCE_DIR WEIR_BINARY_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "check_consumer.cmake: ${var} is not set")
  endif()
endforeach()

set(consumer_source ${CMAKE_CURRENT_LIST_DIR})
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

# step(<name> <command>...): runs the command, prints how long it took, stops on failure.
function(step name)
  string(TIMESTAMP t0 "%s")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  string(TIMESTAMP t1 "%s")
  math(EXPR seconds "${t1} - ${t0}")
  message(STATUS "${MODE}: ${name}: ${seconds} s")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${MODE}: ${name} failed (${rc}):\n${ARGN}\n${out}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

# consumer(<cmake args>...): configures, builds and runs the consumer project.
function(consumer)
  set(args -S ${consumer_source} -B ${WORK_DIR}/consumer -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
           "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${EXE_LINKER_FLAGS}")
  if(MAKE_PROGRAM)
    list(APPEND args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
  endif()
  if(COMPILER_LAUNCHER)
    list(APPEND args -DCMAKE_CXX_COMPILER_LAUNCHER=${COMPILER_LAUNCHER})
  endif()
  step("configure the consumer" ${CMAKE_COMMAND} ${args} ${ARGN})
  step("build the consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/consumer --parallel 2)
  step("run the consumer" ${WORK_DIR}/consumer/weir_consumer)
  message(STATUS "${step_output}")
endfunction()

# pkg_config_flags(<out> <pc dir> <extra pkg-config args>...): the flags of weir-prometheus (which
# requires weir), as a list.
function(pkg_config_flags out pc_dirs)
  string(REPLACE ";" ":" path "${pc_dirs}")
  set(ENV{PKG_CONFIG_PATH} "${path}")
  step("pkg-config --cflags --libs weir-prometheus" ${PKG_CONFIG} ${ARGN} --cflags --libs weir-prometheus)
  string(STRIP "${step_output}" flags)
  message(STATUS "${MODE}: pkg-config: ${flags}")
  separate_arguments(flags UNIX_COMMAND "${flags}")
  set(${out} ${flags} PARENT_SCOPE)
endfunction()

# expect_flags(<flags> <expected>...): each expected flag is among the flags.
function(expect_flags flags)
  foreach(f ${ARGN})
    if(NOT f IN_LIST flags)
      message(FATAL_ERROR "${MODE}: pkg-config flags lack ${f}: ${flags}")
    endif()
  endforeach()
endfunction()

if(MODE STREQUAL "install")
  set(prefix ${WORK_DIR}/prefix)
  step("cmake --install --prefix" ${CMAKE_COMMAND} --install ${WEIR_BINARY_DIR} --prefix ${prefix})
  # Only the libraries' headers are installed: nothing from tests, examples or benchmarks.
  file(GLOB_RECURSE installed RELATIVE ${prefix} ${prefix}/*)
  list(LENGTH installed count)
  message(STATUS "${MODE}: ${count} files installed")
  foreach(f ${installed})
    if(NOT f MATCHES "^include/weir/.*\\.hpp$" AND NOT f MATCHES "^lib[^/]*/(libweir_[a-z_]+\\.a|cmake/Weir/[A-Za-z_-]+\\.cmake|pkgconfig/weir(-prometheus)?\\.pc)$")
      message(FATAL_ERROR "${MODE}: unexpected file installed: ${f}")
    endif()
  endforeach()
  foreach(f include/weir/weir.hpp include/weir/telemetry/prometheus.hpp)
    if(NOT f IN_LIST installed)
      message(FATAL_ERROR "${MODE}: ${f} was not installed")
    endif()
  endforeach()
  consumer(-DCMAKE_PREFIX_PATH=${prefix})

  if(PKG_CONFIG)
    file(GLOB pc_dir LIST_DIRECTORIES true ${prefix}/lib*/pkgconfig)
    pkg_config_flags(flags "${pc_dir}")
    file(GLOB libdir LIST_DIRECTORIES true ${prefix}/lib*)
    expect_flags("${flags}" -I${prefix}/include -L${libdir} -lweir_telemetry_prometheus -lweir_core)
    # A build with the compiler and pkg-config's flags alone, no CMake package.
    separate_arguments(cxx_flags UNIX_COMMAND "${CXX_FLAGS}")
    separate_arguments(ld_flags UNIX_COMMAND "${EXE_LINKER_FLAGS}")
    step("build the consumer with pkg-config's flags" ${COMPILER_LAUNCHER} ${CXX_COMPILER} -std=c++20 ${cxx_flags}
         ${consumer_source}/main.cpp -o ${WORK_DIR}/weir_consumer_pkg_config ${flags} ${ld_flags})
    step("run the consumer built with pkg-config's flags" ${WORK_DIR}/weir_consumer_pkg_config)
  endif()

elseif(MODE STREQUAL "subdir")
  # This build compiles Weir's libraries with the consumer, so it needs none of the build's flags
  # (sanitizers, -O1) to link, and compiles faster without them.
  set(CXX_FLAGS "")
  set(EXE_LINKER_FLAGS "")
  consumer(-DWEIR_SOURCE_DIR=${WEIR_SOURCE_DIR})
  # As a subproject Weir builds its libraries only, and needs none of the test, example and
  # benchmark dependencies.
  file(STRINGS ${WORK_DIR}/consumer/CMakeCache.txt cache)
  foreach(entry WEIR_BUILD_TESTS:BOOL=OFF WEIR_BUILD_EXAMPLES:BOOL=OFF WEIR_BUILD_BENCHMARKS:BOOL=OFF)
    if(NOT entry IN_LIST cache)
      message(FATAL_ERROR "${MODE}: expected ${entry} in the consumer's cache")
    endif()
  endforeach()
  foreach(dep doctest CLI11 simdjson)
    if(cache MATCHES "(^|;)${dep}_DIR:")
      message(FATAL_ERROR "${MODE}: Weir looked for ${dep} as a subproject")
    endif()
  endforeach()

elseif(MODE STREQUAL "deb")
  step("cpack -G DEB" ${CMAKE_COMMAND} -E env --unset=DESTDIR
       ${CMAKE_CPACK_COMMAND} -G DEB --config ${WEIR_BINARY_DIR}/CPackConfig.cmake -B ${WORK_DIR}/package)
  file(GLOB deb ${WORK_DIR}/package/libweir-dev_*.deb)
  if(NOT deb)
    message(FATAL_ERROR "${MODE}: cpack made no libweir-dev package")
  endif()
  step("dpkg-deb --field Depends" dpkg-deb --field ${deb} Depends)
  message(STATUS "${MODE}: Depends: ${step_output}")
  # The system this runs on built Weir from the packages named in Depends: apt must find every one
  # of them installed, in a version the constraints accept, and want to install nothing else.
  if(APT_GET)
    step("apt-get --simulate install" ${APT_GET} --simulate --no-install-recommends install ${deb})
    if(NOT step_output MATCHES "0 upgraded, 1 newly installed, 0 to remove")
      message(FATAL_ERROR "${MODE}: the package's Depends are not met by the installed packages:\n${step_output}")
    endif()
  endif()
  set(root ${WORK_DIR}/root)
  step("dpkg -x" dpkg -x ${deb} ${root})
  consumer(-DCMAKE_PREFIX_PATH=${root}/usr)

  if(PKG_CONFIG)
    file(GLOB pc_dir LIST_DIRECTORIES true ${root}/usr/lib*/pkgconfig ${root}/usr/lib/*/pkgconfig)
    pkg_config_flags(flags "${pc_dir}" --define-variable=prefix=${root}/usr)
    expect_flags("${flags}" -I${root}/usr/include -lweir_telemetry_prometheus -lweir_core)
  endif()

else()
  message(FATAL_ERROR "check_consumer.cmake: unknown MODE ${MODE}")
endif()
