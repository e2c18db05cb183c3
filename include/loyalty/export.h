/*
 * LOY_API marks the functions the library exports. The library is built
 * with every other symbol hidden (and its shared object with a version
 * script allowing loy_* alone), so that a POS application, a JNI or
 * P/Invoke binding sees the C API and nothing of the C++ inside.
 */
#ifndef LOYALTY_EXPORT_H
#define LOYALTY_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define LOY_API __attribute__((visibility("default")))
#else
#define LOY_API
#endif

#endif
