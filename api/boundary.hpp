// What every C API handle shares: an error buffer of fixed size, statuses
// mapped one to one, and no exception crossing into C.
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "base/status.hpp"
#include "base/utf8.hpp"
#include "loyalty/loyalty.h"

namespace loy::capi {

inline loy_status to_c(Code code) { return static_cast<loy_status>(code); }

// Keeps the message in the handle's buffer, cut to fit, and never inside a
// UTF-8 character: a message is JSON text for some callers, and half a
// character is not.
template <size_t N> loy_status fail(char (&errmsg)[N], Code code, const char *message)
{
	const size_t n = utf8_prefix(message, N - 1);
	std::memcpy(errmsg, message, n);
	errmsg[n] = '\0';
	return to_c(code);
}

template <size_t N> loy_status fail(char (&errmsg)[N], const Status &s)
{
	return fail(errmsg, s.code(), s.message().c_str());
}

template <size_t N> loy_status succeed(char (&errmsg)[N])
{
	errmsg[0] = '\0';
	return LOY_OK;
}

// Runs `body`, turning any exception into LOY_E_INTERNAL.
template <size_t N, class F> loy_status guarded(char (&errmsg)[N], F &&body) noexcept
{
	try {
		return body();
	} catch (const std::bad_alloc &) {
		return fail(errmsg, Code::internal, "out of memory");
	} catch (const std::exception &e) {
		return fail(errmsg, Code::internal, e.what());
	} catch (...) {
		return fail(errmsg, Code::internal, "unknown exception");
	}
}

// A caller's versioned struct (its size first, include/loyalty/loyalty.h)
// read into the library's: what the caller's version has, zero past it.
// `v1` is the size of the struct's first version: a size below it is no
// struct of this library (a caller that left it 0, most likely). NULL
// reads as all zero. Empty string when fine, else the problem.
template <class T> std::string read_versioned(const T *in, size_t v1, const char *name, T *out)
{
	*out = T{};
	out->size = sizeof(T);
	if (!in)
		return std::string();
	if (in->size < v1)
		return std::string(name) + ".size is " + std::to_string(in->size) + ": set it with LOY_INIT(" + name +
		       ")";
	std::memcpy(static_cast<void *>(out), in, in->size < sizeof(T) ? in->size : sizeof(T));
	out->size = sizeof(T);
	return std::string();
}

// The library's struct written into a caller's: as much as the caller's
// version has room for, its size left as the caller set it.
template <class T> std::string write_versioned(const T &value, size_t v1, const char *name, T *out)
{
	if (out->size < v1)
		return std::string(name) + ".size is " + std::to_string(out->size) + ": set it with LOY_INIT(" + name +
		       ")";
	const size_t size = out->size;
	std::memcpy(static_cast<void *>(out), &value, size < sizeof(T) ? size : sizeof(T));
	out->size = size;
	return std::string();
}

// The first versions' sizes: frozen here when a field is appended.
inline constexpr size_t member_v1 = offsetof(loy_member, redeemed_today) + sizeof(int64_t);
inline constexpr size_t redemption_v1 = offsetof(loy_redemption, reward) + sizeof(const char *);
inline constexpr size_t checkout_v1 = offsetof(loy_checkout, tier) + LOY_NAME_MAX;
inline constexpr size_t setup_v1 = offsetof(loy_terminal_setup, token_key) + sizeof(const char *);

} // namespace loy::capi
