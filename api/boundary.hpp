// What every C API handle shares: an error buffer of fixed size, statuses
// mapped one to one, and no exception crossing into C.
#pragma once

#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

#include "core/status.hpp"
#include "core/utf8.hpp"
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

} // namespace loy::capi
