# Shared part of the Debian cross toolchain files: the compilers of
# ${LOYALTY_TRIPLET}, libraries and CMake packages from /usr/lib/<triplet>
# (Debian multiarch, so no sysroot), and qemu-user to run what was built.
set(CMAKE_C_COMPILER ${LOYALTY_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${LOYALTY_TRIPLET}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${LOYALTY_TRIPLET})

# Multiarch keeps the target's libraries beside the host's under /usr, so
# the search stays rooted at / and CMAKE_LIBRARY_ARCHITECTURE picks the
# target's directory. Programs (the compiler, qemu) are the host's.
set(CMAKE_FIND_ROOT_PATH /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# pkg-config must answer for the target, not the host.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${LOYALTY_TRIPLET}/pkgconfig:/usr/share/pkgconfig)

# The target's loader and libraries come from the multiarch packages
# (libc6:<arch>), so qemu needs no -L prefix.
find_program(LOYALTY_QEMU_PATH ${LOYALTY_QEMU} REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${LOYALTY_QEMU_PATH})
