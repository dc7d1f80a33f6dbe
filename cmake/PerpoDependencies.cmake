# Finds the dependencies listed in ../shared/docs/environment.md. tools/setup.sh installs them.

# LibTorch: yours through PERPO_LIBTORCH / Torch_DIR / CMAKE_PREFIX_PATH, else the project's .venv.
# Not looked for with -DPERPO_WITH_TORCH=OFF (the modules without LibTorch only).
if(PERPO_WITH_TORCH)
  if(DEFINED ENV{PERPO_LIBTORCH} AND NOT Torch_DIR)
    set(_perpo_libtorch "$ENV{PERPO_LIBTORCH}")
    if(EXISTS "${_perpo_libtorch}/share/cmake/Torch")
      set(Torch_DIR "${_perpo_libtorch}/share/cmake/Torch")
    else()
      set(Torch_DIR "${_perpo_libtorch}")
    endif()
  endif()
  if(NOT Torch_DIR)
    foreach(_python "${PROJECT_SOURCE_DIR}/.venv/bin/python" python3)
      execute_process(
        COMMAND ${_python} -c "import torch; print(torch.utils.cmake_prefix_path)"
        OUTPUT_VARIABLE _torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET
        RESULT_VARIABLE _torch_rc)
      if(_torch_rc EQUAL 0 AND _torch_prefix)
        list(APPEND CMAKE_PREFIX_PATH "${_torch_prefix}")
        break()
      endif()
    endforeach()
  endif()
  # TorchConfig.cmake warns about kineto/CUDA pieces it does not find; they do not matter here.
  find_package(Torch REQUIRED)
  message(STATUS "perpo: LibTorch ${Torch_VERSION} from ${Torch_DIR}")
endif()

find_package(nlohmann_json 3.10 REQUIRED)
find_package(spdlog REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(CLI11 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
find_path(STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb REQUIRED)
add_library(perpo_stb INTERFACE)
target_include_directories(perpo_stb SYSTEM INTERFACE ${STB_INCLUDE_DIR})
if(TARGET yaml-cpp::yaml-cpp)
  set(PERPO_YAML_TARGET yaml-cpp::yaml-cpp)
else()
  set(PERPO_YAML_TARGET yaml-cpp)
endif()
find_package(Threads REQUIRED)
