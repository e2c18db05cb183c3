# Cross-build for 64-bit ARM Linux terminals with Debian's cross compiler and
# multiarch (:arm64) libraries; tests run under qemu-user.
# Packages: toolchains/install-deps.sh aarch64
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(LOYALTY_TRIPLET aarch64-linux-gnu)
set(LOYALTY_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-multiarch.cmake)
