# Checking builds; both are off in the regular build (tools/build.sh).
#
#   -DPERPO_SANITIZE=address,undefined   every perpo target (libraries, tests, executables) compiled
#                                        and linked with these sanitizers (tools/sanitize.sh)
#   -DPERPO_BUILD_FUZZ=ON                 the libFuzzer targets in fuzz/; needs clang, and adds
#                                        coverage instrumentation to every perpo library
#                                        (tools/fuzz.sh)
#
# Dependencies (LibTorch, yaml-cpp, SentencePiece, ...) are not instrumented: a bug inside them is
# only seen where our code touches its memory.

if(PERPO_SANITIZE)
  # -fno-sanitize-recover: an undefined-behaviour report fails the test instead of scrolling by.
  add_compile_options(-fsanitize=${PERPO_SANITIZE} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all -g)
  add_link_options(-fsanitize=${PERPO_SANITIZE})
  message(STATUS "perpo: sanitizers ${PERPO_SANITIZE}")
endif()

if(PERPO_BUILD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "PERPO_BUILD_FUZZ needs clang (libFuzzer): configure with "
                        "-DCMAKE_CXX_COMPILER=clang++ (tools/fuzz.sh does)")
  endif()
  # Coverage feedback from every library; the fuzz executables link libFuzzer's main
  # (fuzz/CMakeLists.txt).
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
