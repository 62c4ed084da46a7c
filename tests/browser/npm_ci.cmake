# Installs the browser tests' npm packages (package-lock.json) into DIR, unless the same lock file was
# installed there already.
#   cmake -DNPM=<npm> -DDIR=<dir with package.json and package-lock.json> -P npm_ci.cmake
file(SHA256 "${DIR}/package-lock.json" lock)
set(stamp "${DIR}/node_modules/.weir-lock-sha256")
if(EXISTS "${stamp}")
  file(READ "${stamp}" installed)
  if(installed STREQUAL lock)
    message(STATUS "npm packages up to date in ${DIR}")
    return()
  endif()
endif()
execute_process(COMMAND "${NPM}" ci --no-audit --no-fund --ignore-scripts
                WORKING_DIRECTORY "${DIR}" RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "npm ci failed in ${DIR} (status ${status})")
endif()
file(WRITE "${stamp}" "${lock}")
