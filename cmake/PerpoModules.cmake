# perpo_module(NAME TORCH DEPS...): the static library perpo_NAME from src/NAME/*.cpp, with
# include/ public. TORCH is YES for modules that use LibTorch; the others must compile without it
# (LibTorch is not even on their include path), which keeps them fast to build and honest.

set(PERPO_MODULE_TARGETS "")
set(PERPO_TORCH_MODULES "")

# Compile options shared by every perpo target; WITH_TORCH adds LibTorch and the shared PCH.
function(perpo_target_defaults target with_torch)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 14)
    # GCC 12/13 report std::string concatenation at -O2 as out of bounds (a known false positive).
    target_compile_options(${target} PRIVATE -Wno-array-bounds)
  endif()
  if(PERPO_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(with_torch)
    target_link_libraries(${target} PRIVATE torch)
    if(PERPO_USE_PCH AND TARGET perpo_torch_pch)
      target_precompile_headers(${target} REUSE_FROM perpo_torch_pch)
    endif()
  endif()
endfunction()

# One object of LibTorch headers, compiled once; every torch target reuses it.
if(PERPO_USE_PCH AND PERPO_WITH_TORCH)
  add_library(perpo_torch_pch STATIC ${PROJECT_SOURCE_DIR}/cmake/pch_anchor.cpp)
  target_link_libraries(perpo_torch_pch PRIVATE torch)
  target_compile_options(perpo_torch_pch PRIVATE -Wall -Wextra -Wno-unused-parameter)
  target_precompile_headers(perpo_torch_pch PRIVATE <torch/torch.h>)
endif()

function(perpo_module name torch)
  if(torch AND NOT PERPO_WITH_TORCH)
    return()  # -DPERPO_WITH_TORCH=OFF: only the modules without LibTorch
  endif()
  file(GLOB sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.cpp)
  set(target perpo_${name})
  set(deps "")
  foreach(dep ${ARGN})
    list(APPEND deps perpo_${dep})
  endforeach()
  if(sources)
    add_library(${target} STATIC ${sources})
    target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/include)
    target_link_libraries(${target} PUBLIC ${deps} nlohmann_json::nlohmann_json Threads::Threads)
    perpo_target_defaults(${target} ${torch})
    if(torch)
      target_link_libraries(${target} PUBLIC torch)
    endif()
  else()
    # A module with no sources yet: headers only.
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE ${PROJECT_SOURCE_DIR}/include)
    target_link_libraries(${target} INTERFACE ${deps})
  endif()
  set(PERPO_MODULE_TARGETS ${PERPO_MODULE_TARGETS} ${target} PARENT_SCOPE)
  if(torch)
    set(PERPO_TORCH_MODULES ${PERPO_TORCH_MODULES} ${name} PARENT_SCOPE)
  endif()
endfunction()

# perpo_module_link(NAME LIBS...): extra libraries a module needs (works before it has sources).
function(perpo_module_link name)
  if(NOT TARGET perpo_${name})
    return()  # a LibTorch module left out by -DPERPO_WITH_TORCH=OFF
  endif()
  get_target_property(type perpo_${name} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    target_link_libraries(perpo_${name} INTERFACE ${ARGN})
  else()
    target_link_libraries(perpo_${name} PUBLIC ${ARGN})
  endif()
endfunction()
