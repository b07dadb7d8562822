# NCCL, the GPU-to-GPU data plane between adjacent CUDA stages. Optional: a
# CUDA build without it links every stage over gRPC.
#
# Sets LAYERPOOL_HAVE_NCCL and, when ON, the imported target lp::nccl. NCCL
# ships no CMake package; the CUDA 13 images put it beside the toolkit
# (include/nccl.h, lib/libnccl.so), Debian's libnccl-dev in the system paths.
# NCCL_ROOT points elsewhere.

set(LAYERPOOL_HAVE_NCCL OFF)
set(_lp_nccl_roots $ENV{NCCL_ROOT} ${NCCL_ROOT} ${CUDAToolkit_LIBRARY_ROOT}
    ${CUDAToolkit_TARGET_DIR} /usr/local/cuda)
find_path(NCCL_INCLUDE_DIR nccl.h
  HINTS ${CUDAToolkit_INCLUDE_DIRS}
  PATHS ${_lp_nccl_roots} PATH_SUFFIXES include)
find_library(NCCL_LIBRARY nccl
  HINTS ${CUDAToolkit_LIBRARY_DIR}
  PATHS ${_lp_nccl_roots} PATH_SUFFIXES lib lib64)

if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
  # Found files are not enough: a header from one NCCL and a library from
  # another, or a library that needs a newer CUDA runtime, fail here rather
  # than in the first build that uses them.
  include(CheckCXXSourceCompiles)
  set(CMAKE_REQUIRED_INCLUDES ${NCCL_INCLUDE_DIR} ${CUDAToolkit_INCLUDE_DIRS})
  set(CMAKE_REQUIRED_LIBRARIES ${NCCL_LIBRARY} CUDA::cudart)
  check_cxx_source_compiles([[
    #include <nccl.h>
    #if NCCL_VERSION_CODE < NCCL_VERSION(2, 7, 0)
    #error "ncclSend/ncclRecv need NCCL 2.7 or newer"
    #endif
    int main() {
      int version = 0;
      ncclUniqueId id;
      return ncclGetVersion(&version) != ncclSuccess ||
             ncclGetUniqueId(&id) != ncclSuccess;
    }]] LAYERPOOL_NCCL_LINKS)
  unset(CMAKE_REQUIRED_INCLUDES)
  unset(CMAKE_REQUIRED_LIBRARIES)
  if(LAYERPOOL_NCCL_LINKS)
    set(LAYERPOOL_HAVE_NCCL ON)
    add_library(lp::nccl UNKNOWN IMPORTED)
    set_target_properties(lp::nccl PROPERTIES
      IMPORTED_LOCATION ${NCCL_LIBRARY}
      INTERFACE_INCLUDE_DIRECTORIES ${NCCL_INCLUDE_DIR}
      INTERFACE_LINK_LIBRARIES CUDA::cudart)
  endif()
endif()
