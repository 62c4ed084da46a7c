# The layering check: every library file may include headers of its own layer and of the layers below
# it, never of a layer above.
#
#   core <- resilience, operators <- builder          core <- telemetry
#
# cmake -DROOT=<source dir> -P check_layers.cmake
# Each #include of a Weir header ("weir/..." or <weir/...>) is looked up in the layers' include/
# folders; the layer that holds it must be one the including file's layer may see. A Weir include
# that no layer holds fails too (a stale path), and so does a library CMakeLists.txt that exports
# another folder's headers. LAYERS may be set to check another layout: a list of
# name=folder[,folder...] in order, lowest first (folders relative to ROOT).

cmake_minimum_required(VERSION 3.25)

if(NOT ROOT)
  message(FATAL_ERROR "usage: cmake -DROOT=<source dir> -P check_layers.cmake")
endif()
if(NOT LAYERS)
  set(LAYERS "core=core" "resilience=resilience" "operators=operators" "builder=builder"
             "telemetry=telemetry")
endif()
# What each layer may include besides itself.
set(may_core "")
set(may_resilience core)
set(may_operators core)
set(may_builder core resilience operators)
set(may_telemetry core)

set(layer_names "")
foreach(entry IN LISTS LAYERS)
  string(REPLACE "=" ";" parts "${entry}")
  list(GET parts 0 name)
  list(GET parts 1 folders)
  string(REPLACE "," ";" folders "${folders}")
  list(APPEND layer_names ${name})
  set(folders_${name} ${folders})
endforeach()

# The layer whose folder holds `path` (relative to ROOT), or "" when none does.
function(layer_of_file path out)
  set(result "")
  foreach(name IN LISTS layer_names)
    foreach(folder IN LISTS folders_${name})
      if(path MATCHES "^${folder}/")
        set(result ${name})
      endif()
    endforeach()
  endforeach()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

# The layer whose include folders hold header `header` ("weir/x.hpp"), or "" when none does.
function(layer_of_header header out)
  set(result "")
  foreach(name IN LISTS layer_names)
    foreach(folder IN LISTS folders_${name})
      file(GLOB_RECURSE dirs LIST_DIRECTORIES true "${ROOT}/${folder}/*/include")
      list(APPEND dirs "${ROOT}/${folder}/include")
      foreach(dir IN LISTS dirs)
        if(IS_DIRECTORY "${dir}" AND EXISTS "${dir}/${header}")
          set(result ${name})
        endif()
      endforeach()
    endforeach()
  endforeach()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

set(violations "")
set(checked 0)
foreach(name IN LISTS layer_names)
  foreach(folder IN LISTS folders_${name})
    file(GLOB_RECURSE files RELATIVE "${ROOT}" "${ROOT}/${folder}/*.hpp" "${ROOT}/${folder}/*.cpp"
         "${ROOT}/${folder}/*.h")
    foreach(file IN LISTS files)
      layer_of_file("${file}" own)
      if(NOT own STREQUAL name)
        continue()  # a folder nested in another layer's (telemetry/prometheus is telemetry's own)
      endif()
      math(EXPR checked "${checked} + 1")
      file(STRINGS "${ROOT}/${file}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]weir/")
      foreach(line IN LISTS lines)
        string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[<\"](weir/[^>\"]+)[>\"].*$" "\\1" header "${line}")
        layer_of_header("${header}" theirs)
        if(theirs STREQUAL "")
          list(APPEND violations "${file}: includes ${header}, which no layer holds")
        elseif(NOT theirs STREQUAL own AND NOT theirs IN_LIST may_${own})
          list(APPEND violations "${file} (${own}) includes ${header} (${theirs}, a layer above)")
        endif()
      endforeach()
    endforeach()
    # A library exports its own include folder only.
    file(GLOB_RECURSE lists "${ROOT}/${folder}/CMakeLists.txt")
    foreach(cml IN LISTS lists)
      file(STRINGS "${cml}" exports REGEX "PROJECT_SOURCE_DIR}/[a-z_/]*include")
      foreach(line IN LISTS exports)
        list(APPEND violations "${cml}: exports another folder's headers: ${line}")
      endforeach()
    endforeach()
  endforeach()
endforeach()

if(checked EQUAL 0)
  message(FATAL_ERROR "no library files found under ${ROOT} (layers: ${LAYERS})")
endif()
list(LENGTH violations count)
if(count GREATER 0)
  list(JOIN violations "\n  " text)
  message(FATAL_ERROR "${count} include(s) against the layers:\n  ${text}")
endif()
message(STATUS "layers respected: ${checked} files checked")
