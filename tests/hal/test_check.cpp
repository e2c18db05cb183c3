// loy_hal_check() on good and broken tables, loy_hal_strerror(), and tables
// filled in C (c_tables.c) called through the header's types.
#include <catch2/catch.hpp>

#include <time.h>

#include <cstdlib>
#include <string>

#include "hal/sim/sim.hpp"
#include "loyalty/hal.h"

extern "C" void hal_test_c_tables(loy_hal *hal);
extern "C" int hal_test_c_printed(int *flushes);

using loy::hal::sim::SimHal;

namespace {

std::string why_of(const loy_hal &hal)
{
	char why[128];
	int rc = loy_hal_check(&hal, why, sizeof why);
	return rc == 0 ? "ok" : why;
}

} // namespace

TEST_CASE("the simulators and absent devices pass the check")
{
	SimHal sim;
	CHECK(loy_hal_check(sim.hal(), nullptr, 0) == 0);
	loy_hal none{LOY_HAL_VERSION, nullptr, nullptr, nullptr, nullptr, nullptr};
	CHECK(why_of(none) == "ok");
}

TEST_CASE("a broken table is refused with the slot it lacks")
{
	SimHal sim;
	loy_hal_clock clock = *sim.clock.table();
	loy_hal_card_reader reader = *sim.reader.table();
	loy_hal_link link = *sim.link.table();
	loy_hal_keystore keys = *sim.keys.table();
	loy_hal_printer printer = *sim.printer.table();
	loy_hal hal{LOY_HAL_VERSION, &clock, &reader, &link, &keys, &printer};
	REQUIRE(why_of(hal) == "ok");

	struct Row {
		const char *name;
		void (*breakit)(loy_hal &, loy_hal_clock &, loy_hal_card_reader &, loy_hal_link &,
				loy_hal_keystore &, loy_hal_printer &);
		const char *why;
	};
	const Row rows[] = {
		{"hal version 0", [](auto &h, auto &, auto &, auto &, auto &, auto &) { h.version = 0; },
		 "hal: version below 1"},
		{"clock version 0", [](auto &, auto &c, auto &, auto &, auto &, auto &) { c.version = 0; },
		 "clock: version below 1"},
		{"no wall_ms", [](auto &, auto &c, auto &, auto &, auto &, auto &) { c.wall_ms = nullptr; },
		 "clock: wall_ms is NULL"},
		{"no monotonic_ms",
		 [](auto &, auto &c, auto &, auto &, auto &, auto &) { c.monotonic_ms = nullptr; },
		 "clock: monotonic_ms is NULL"},
		{"no read_scan",
		 [](auto &, auto &, auto &r, auto &, auto &, auto &) { r.read_scan = nullptr; },
		 "reader: read_scan is NULL"},
		{"reader version -1", [](auto &, auto &, auto &r, auto &, auto &, auto &) { r.version = -1; },
		 "reader: version below 1"},
		{"no is_up", [](auto &, auto &, auto &, auto &l, auto &, auto &) { l.is_up = nullptr; },
		 "link: is_up is NULL"},
		{"no wait_change",
		 [](auto &, auto &, auto &, auto &l, auto &, auto &) { l.wait_change = nullptr; },
		 "link: wait_change is NULL"},
		{"no get", [](auto &, auto &, auto &, auto &, auto &k, auto &) { k.get = nullptr; },
		 "keys: get is NULL"},
		{"no put", [](auto &, auto &, auto &, auto &, auto &k, auto &) { k.put = nullptr; },
		 "keys: put is NULL"},
		{"no erase", [](auto &, auto &, auto &, auto &, auto &k, auto &) { k.erase = nullptr; },
		 "keys: erase is NULL"},
		{"no print_line",
		 [](auto &, auto &, auto &, auto &, auto &, auto &p) { p.print_line = nullptr; },
		 "printer: print_line is NULL"},
		{"no flush", [](auto &, auto &, auto &, auto &, auto &, auto &p) { p.flush = nullptr; },
		 "printer: flush is NULL"},
	};
	for (const Row &row : rows) {
		loy_hal_clock c = clock;
		loy_hal_card_reader r = reader;
		loy_hal_link l = link;
		loy_hal_keystore k = keys;
		loy_hal_printer p = printer;
		loy_hal h{LOY_HAL_VERSION, &c, &r, &l, &k, &p};
		row.breakit(h, c, r, l, k, p);
		INFO(row.name);
		CHECK(loy_hal_check(&h, nullptr, 0) == LOY_HAL_E_ARGUMENT);
		CHECK(why_of(h) == row.why);
	}
	CHECK(loy_hal_check(nullptr, nullptr, 0) == LOY_HAL_E_ARGUMENT);
}

TEST_CASE("a table newer than the library passes: its later slots go unused")
{
	SimHal sim;
	loy_hal_clock clock = *sim.clock.table();
	clock.version = LOY_HAL_CLOCK_VERSION + 1;
	loy_hal hal{LOY_HAL_VERSION + 1, &clock, nullptr, nullptr, nullptr, nullptr};
	CHECK(why_of(hal) == "ok");
}

TEST_CASE("a message cut to the caller's buffer stays a C string")
{
	loy_hal hal{0, nullptr, nullptr, nullptr, nullptr, nullptr};
	char why[5] = "xxxx";
	CHECK(loy_hal_check(&hal, why, sizeof why) == LOY_HAL_E_ARGUMENT);
	CHECK(std::string(why) == "hal:");
}

TEST_CASE("loy_hal_strerror names every value")
{
	const std::pair<int, const char *> rows[] = {
		{0, "ok"},
		{1, "ok"},
		{LOY_HAL_E_IO, "io"},
		{LOY_HAL_E_ARGUMENT, "argument"},
		{LOY_HAL_E_NOT_FOUND, "not_found"},
		{LOY_HAL_E_TOO_BIG, "too_big"},
		{LOY_HAL_E_GONE, "gone"},
		{LOY_HAL_E_BAD_SCAN, "bad_scan"},
		{LOY_HAL_E_UNSUPPORTED, "unsupported"},
		{-1000, "unknown"},
	};
	for (auto [code, name] : rows)
		CHECK(std::string(loy_hal_strerror(code)) == name);
	// Append-only numbering: these are part of the ABI.
	CHECK(LOY_HAL_E_IO == -1);
	CHECK(LOY_HAL_E_UNSUPPORTED == -7);
}

TEST_CASE("tables filled in C are checked and called like any other")
{
	loy_hal hal;
	hal_test_c_tables(&hal);
	CHECK(why_of(hal) == "ok");
	CHECK(hal.clock->wall_ms(hal.clock->ctx) == 1'767'225'600'000);
	CHECK(hal.clock->monotonic_ms(hal.clock->ctx) == 42);
	CHECK(hal.printer->print_line(hal.printer->ctx, "Total EUR 13.50") == 0);
	CHECK(hal.printer->print_line(hal.printer->ctx, "two\nlines") == LOY_HAL_E_ARGUMENT);
	CHECK(hal.printer->flush(hal.printer->ctx) == 0);
	int flushes = 0;
	CHECK(hal_test_c_printed(&flushes) == 1);
	CHECK(flushes == 1);
}

TEST_CASE("the library's time: the clock's, else the system's")
{
	// The system's, to the second: no clock, or one that cannot be read.
	auto system_ms = [] {
		timespec ts{};
		::clock_gettime(CLOCK_REALTIME, &ts);
		return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
	};
	auto near = [&](int64_t got) { return std::llabs(got - system_ms()) < 5'000; };
	CHECK(near(loy_hal_wall_ms(nullptr)));
	CHECK(loy_hal_monotonic_ms(nullptr) >= 0);

	loy::hal::sim::SimClock clock(1'000'000, 7);
	CHECK(loy_hal_wall_ms(clock.table()) == 1'000'000);
	clock.advance_ms(250);
	CHECK(loy_hal_wall_ms(clock.table()) == 1'000'250);
	CHECK(loy_hal_monotonic_ms(clock.table()) == 257);

	clock.set_broken(true);
	CHECK(near(loy_hal_wall_ms(clock.table())));
	const int64_t m1 = loy_hal_monotonic_ms(clock.table());
	CHECK(loy_hal_monotonic_ms(clock.table()) >= m1);
}
