# Install rules and packaging, included from the top-level CMakeLists.txt.
#
# cmake --install <build> [--prefix P] installs the public headers (include/weir/), the static
# libraries, the CMake package (WeirConfig.cmake, WeirConfigVersion.cmake, the exported weir::
# targets) under <libdir>/cmake/Weir, and weir.pc / weir-prometheus.pc for pkg-config.
# cpack -G DEB turns the same files into libweir-dev.

option(WEIR_INSTALL "Generate Weir's install rules (and, at top level, its CPack package)"
       ${PROJECT_IS_TOP_LEVEL})
if(NOT WEIR_INSTALL)
  return()
endif()

include(CMakePackageConfigHelpers)

set(WEIR_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/Weir CACHE STRING
    "Where the CMake package (WeirConfig.cmake) goes, relative to the prefix")

# Headers: every file under the libraries' include/ folders (detail/ too: the public headers include
# it), nothing from tests, examples or benchmarks.
foreach(dir core/include resilience/include operators/include builder/include telemetry/include
           telemetry/prometheus/include)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
          FILES_MATCHING PATTERN "*.hpp")
endforeach()

install(TARGETS weir_concurrentqueue weir_core weir_resilience weir_operators weir_builder weir_telemetry
                weir_telemetry_prometheus weir_weir
        EXPORT WeirTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT WeirTargets NAMESPACE weir:: FILE WeirTargets.cmake DESTINATION ${WEIR_INSTALL_CMAKEDIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/WeirConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/weir-package/WeirConfig.cmake
                              INSTALL_DESTINATION ${WEIR_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/weir-package/WeirConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
# find_package(weir) looks for weir-config.cmake: forward it to WeirConfig.cmake.
file(WRITE ${PROJECT_BINARY_DIR}/weir-package/weir-config.cmake
     "include(\"\${CMAKE_CURRENT_LIST_DIR}/WeirConfig.cmake\")\n")
file(WRITE ${PROJECT_BINARY_DIR}/weir-package/weir-config-version.cmake
     "include(\"\${CMAKE_CURRENT_LIST_DIR}/WeirConfigVersion.cmake\")\n")
install(FILES ${PROJECT_BINARY_DIR}/weir-package/WeirConfig.cmake
              ${PROJECT_BINARY_DIR}/weir-package/WeirConfigVersion.cmake
              ${PROJECT_BINARY_DIR}/weir-package/weir-config.cmake
              ${PROJECT_BINARY_DIR}/weir-package/weir-config-version.cmake
              ${CMAKE_CURRENT_LIST_DIR}/WeirConcurrentQueue.cmake
        DESTINATION ${WEIR_INSTALL_CMAKEDIR})

# pkg-config: weir.pc (what weir::weir links) and weir-prometheus.pc (weir::telemetry_prometheus).
# They name the prefix given at install time (cmake --install --prefix, or /usr in the .deb), so
# they are written when installing.
if(WEIR_TELEMETRY)
  set(WEIR_PC_DEFINES " -DWEIR_TELEMETRY=1")
else()
  set(WEIR_PC_DEFINES "")
endif()
foreach(pc weir weir-prometheus)
  install(CODE "
    set(WEIR_VERSION \"${PROJECT_VERSION}\")
    set(WEIR_PC_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
    set(WEIR_PC_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
    set(WEIR_PC_DEFINES \"${WEIR_PC_DEFINES}\")
    set(WEIR_PC_CONCURRENTQUEUE \"${WEIR_CONCURRENTQUEUE_INCLUDE_DIR}\")
    configure_file(\"${CMAKE_CURRENT_LIST_DIR}/${pc}.pc.in\" \"${PROJECT_BINARY_DIR}/weir-package/${pc}.pc\" @ONLY)")
  install(FILES ${PROJECT_BINARY_DIR}/weir-package/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()

if(NOT PROJECT_IS_TOP_LEVEL)
  return()
endif()

# cpack -G DEB: libweir-dev. Depends names the Debian packages of the headers Weir's headers include
# and of the libraries its static libraries call; spdlog and fmt are pinned to the series the
# libraries were compiled against (their symbols carry the version).
string(REGEX MATCH "^[0-9]+\\.[0-9]+" WEIR_SPDLOG_SERIES "${spdlog_VERSION}")
math(EXPR WEIR_SPDLOG_NEXT_MINOR "${spdlog_VERSION_MINOR} + 1")
math(EXPR WEIR_FMT_NEXT_MAJOR "${fmt_VERSION_MAJOR} + 1")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME libweir-dev)
set(CPACK_PACKAGE_VENDOR Weir)
set(CPACK_PACKAGE_CONTACT "Weir maintainers <weir@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "embedded streaming dataflow engine for C++20 - development files")
set(CPACK_PACKAGE_DESCRIPTION
    "Weir moves batches of items between operators on oneTBB flow graphs, with keyed windows, joins,\n\
per-stage error policies and telemetry built in (Prometheus, tracing, events). This package holds the\n\
headers, the static libraries, the CMake package (find_package(Weir)) and the pkg-config files.")
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libtbb-dev (>= 2021.5), libconcurrentqueue-dev, nlohmann-json3-dev (>= 3.9), \
libspdlog-dev (>= 1:${WEIR_SPDLOG_SERIES}), libspdlog-dev (<< 1:${spdlog_VERSION_MAJOR}.${WEIR_SPDLOG_NEXT_MINOR}), \
libfmt-dev (>= ${fmt_VERSION_MAJOR}), libfmt-dev (<< ${WEIR_FMT_NEXT_MAJOR}), \
libcurl4-openssl-dev | libcurl-dev, prometheus-cpp-dev (>= 1.0), libcivetweb-dev")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "cmake, pkg-config")
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/package)
include(CPack)
