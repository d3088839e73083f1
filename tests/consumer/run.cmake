# Installs the built zeropoint into a scratch prefix, then configures, builds and runs the
# consumer against it (MODE=install), or against the source tree (MODE=subdirectory).
# cmake -DMODE=... -DBUILD_DIR=... -DSOURCE_DIR=... -DCONSUMER_DIR=... -DWORK_DIR=... -P run.cmake
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
if(MODE STREQUAL "install")
  run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
  run(${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/build -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix
      -DCMAKE_BUILD_TYPE=Release)
else()
  # This checks the build wiring, not the kernels (the main build tests those on every
  # instruction set): Highway's static target alone, unoptimized and without debug information,
  # keeps the rebuild of the library quick. Clang, when there (scripts/setup installs it for the
  # fuzz targets), compiles the library unoptimized in 60% of GCC's time, and builds the whole
  # library with a second compiler; with it, precompiled headers save another third.
  find_program(CLANGXX clang++)
  set(compiler)
  if(CLANGXX)
    set(compiler -DCMAKE_CXX_COMPILER=${CLANGXX} -DZEROPOINT_PRECOMPILE_HEADERS=ON)
  endif()
  run(${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/build -DZEROPOINT_SOURCE_DIR=${SOURCE_DIR} ${compiler}
      -DCMAKE_BUILD_TYPE=None "-DCMAKE_CXX_FLAGS=-O0 -DHWY_COMPILE_ONLY_STATIC=1")
endif()
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build --parallel 2)
run(${WORK_DIR}/build/consumer)
