# Finds moodycamel's concurrentqueue headers (Debian: libconcurrentqueue-dev), which ship without a
# CMake config, and sets WEIR_CONCURRENTQUEUE_INCLUDE_DIR to the folder that holds
# blockingconcurrentqueue.h, the name Weir's headers include. Used by Weir's build and by the
# installed WeirConfig.cmake.
find_path(WEIR_CONCURRENTQUEUE_INCLUDE_DIR NAMES blockingconcurrentqueue.h
          PATH_SUFFIXES concurrentqueue concurrentqueue/moodycamel
          DOC "moodycamel concurrentqueue headers: the folder with blockingconcurrentqueue.h")
