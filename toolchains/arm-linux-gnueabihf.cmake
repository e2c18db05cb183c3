# Cross-build for 32-bit ARM (hard-float) Linux terminals with Debian's cross
# compiler and multiarch (:armhf) libraries; tests run under qemu-user.
# Packages: toolchains/install-deps.sh armhf
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(LOYALTY_TRIPLET arm-linux-gnueabihf)
set(LOYALTY_QEMU qemu-arm)
include(${CMAKE_CURRENT_LIST_DIR}/debian-multiarch.cmake)
