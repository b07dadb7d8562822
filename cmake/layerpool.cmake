# One helper per target kind, so each CMakeLists.txt reads as a dependency
# list (the abseil absl_cc_library habit).

set(LP_CXX_WARNINGS -Wall -Wextra -Wpedantic -Wno-unused-parameter)
# nvcc forwards host-compiler warnings through -Xcompiler. No -Wpedantic
# there: the host code nvcc generates uses GNU line markers, which it flags.
set(LP_CUDA_WARNINGS -Xcompiler=-Wall,-Wextra,-Wno-unused-parameter)
if(LAYERPOOL_WERROR)
  list(APPEND LP_CXX_WARNINGS -Werror)
  # nvcc's own diagnostics and the host compiler's, both as errors.
  list(APPEND LP_CUDA_WARNINGS -Werror=all-warnings -Xcompiler=-Werror)
endif()
# Each language gets its own spelling (nvcc rejects g++'s -W flags).
set(LP_WARNINGS "$<$<COMPILE_LANGUAGE:CXX>:${LP_CXX_WARNINGS}>"
                "$<$<COMPILE_LANGUAGE:CUDA>:${LP_CUDA_WARNINGS}>")

# lp_cc_library(NAME name SRCS ... HDRS ... DEPS ...)
function(lp_cc_library)
  cmake_parse_arguments(LP "" "NAME" "SRCS;HDRS;DEPS" ${ARGN})
  if(LP_SRCS)
    add_library(${LP_NAME} STATIC ${LP_SRCS} ${LP_HDRS})
    target_compile_options(${LP_NAME} PRIVATE ${LP_WARNINGS})
    target_include_directories(${LP_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
    target_link_libraries(${LP_NAME} PUBLIC ${LP_DEPS})
  else()
    add_library(${LP_NAME} INTERFACE ${LP_HDRS})
    target_include_directories(${LP_NAME} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${LP_NAME} INTERFACE ${LP_DEPS})
  endif()
endfunction()

# lp_cc_binary(NAME name SRCS ... DEPS ...)
function(lp_cc_binary)
  cmake_parse_arguments(LP "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${LP_NAME} ${LP_SRCS})
  target_compile_options(${LP_NAME} PRIVATE ${LP_WARNINGS})
  target_link_libraries(${LP_NAME} PRIVATE ${LP_DEPS})
endfunction()

# lp_cc_test(NAME name SRCS ... DEPS ... [LABELS ...])
# Every test sees LAYERPOOL_SHARED unless the caller's environment sets it.
function(lp_cc_test)
  if(LAYERPOOL_FUZZ)
    return()
  endif()
  cmake_parse_arguments(LP "" "NAME" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${LP_NAME} ${LP_SRCS})
  target_compile_options(${LP_NAME} PRIVATE ${LP_WARNINGS})
  target_link_libraries(${LP_NAME} PRIVATE ${LP_DEPS} lp_test_support
                        GTest::gtest GTest::gmock GTest::gtest_main)
  add_test(NAME ${LP_NAME} COMMAND ${LP_NAME})
  set(labels unit ${LP_LABELS})
  set_tests_properties(${LP_NAME} PROPERTIES LABELS "${labels}"
    ENVIRONMENT "LAYERPOOL_SHARED_DEFAULT=${LAYERPOOL_SHARED_DIR}"
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
endfunction()
