// What every HAL table shares: the names of the return values, and the check
// the library runs on the tables it is given before it calls any of them.
#include <time.h>

#include <cstdio>
#include <cstring>

#include "loyalty/hal.h"

namespace {

int say(char *why, size_t size, const char *device, const char *what)
{
	if (why && size > 0)
		std::snprintf(why, size, "%s: %s", device, what);
	return LOY_HAL_E_ARGUMENT;
}

int64_t system_ms(clockid_t id)
{
	timespec ts{};
	::clock_gettime(id, &ts);
	return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

} // namespace

extern "C" int64_t loy_hal_wall_ms(const loy_hal_clock *clock)
{
	int64_t ms = clock ? clock->wall_ms(clock->ctx) : LOY_HAL_TIME_INVALID;
	return ms != LOY_HAL_TIME_INVALID ? ms : system_ms(CLOCK_REALTIME);
}

extern "C" int64_t loy_hal_monotonic_ms(const loy_hal_clock *clock)
{
	int64_t ms = clock ? clock->monotonic_ms(clock->ctx) : LOY_HAL_TIME_INVALID;
	return ms != LOY_HAL_TIME_INVALID ? ms : system_ms(CLOCK_MONOTONIC);
}

extern "C" const char *loy_hal_strerror(int code)
{
	if (code >= 0)
		return "ok";
	switch (code) {
	case LOY_HAL_E_IO: return "io";
	case LOY_HAL_E_ARGUMENT: return "argument";
	case LOY_HAL_E_NOT_FOUND: return "not_found";
	case LOY_HAL_E_TOO_BIG: return "too_big";
	case LOY_HAL_E_GONE: return "gone";
	case LOY_HAL_E_BAD_SCAN: return "bad_scan";
	case LOY_HAL_E_UNSUPPORTED: return "unsupported";
	default: return "unknown";
	}
}

// The slots of version 1 of each table. A slot added by version N is checked
// under `version >= N`; a table newer than this library passes on what it
// knows.
extern "C" int loy_hal_check(const loy_hal *hal, char *why, size_t size)
{
	if (why && size > 0)
		why[0] = '\0';
	if (!hal)
		return say(why, size, "hal", "NULL");
	if (hal->version < 1)
		return say(why, size, "hal", "version below 1");
	if (const loy_hal_clock *c = hal->clock) {
		if (c->version < 1)
			return say(why, size, "clock", "version below 1");
		if (!c->wall_ms)
			return say(why, size, "clock", "wall_ms is NULL");
		if (!c->monotonic_ms)
			return say(why, size, "clock", "monotonic_ms is NULL");
	}
	if (const loy_hal_card_reader *r = hal->reader) {
		if (r->version < 1)
			return say(why, size, "reader", "version below 1");
		if (!r->read_scan)
			return say(why, size, "reader", "read_scan is NULL");
	}
	if (const loy_hal_link *l = hal->link) {
		if (l->version < 1)
			return say(why, size, "link", "version below 1");
		if (!l->is_up)
			return say(why, size, "link", "is_up is NULL");
		if (!l->wait_change)
			return say(why, size, "link", "wait_change is NULL");
	}
	if (const loy_hal_keystore *k = hal->keys) {
		if (k->version < 1)
			return say(why, size, "keys", "version below 1");
		if (!k->get)
			return say(why, size, "keys", "get is NULL");
		if (!k->put)
			return say(why, size, "keys", "put is NULL");
		if (!k->erase)
			return say(why, size, "keys", "erase is NULL");
	}
	if (const loy_hal_printer *p = hal->printer) {
		if (p->version < 1)
			return say(why, size, "printer", "version below 1");
		if (!p->print_line)
			return say(why, size, "printer", "print_line is NULL");
		if (!p->flush)
			return say(why, size, "printer", "flush is NULL");
	}
	return 0;
}
