// The scripted card reader through its C table: the scans of the CLI contract
// delivered as they are, delays and time-outs in simulated time (no sleeping)
// and in real time, injected failures in their turn, buffers too small, and a
// second thread pushing while the first waits.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <thread>

#include "hal/sim/sim.hpp"
#include "tmp.hpp"

using hal_test::read_scan;
using loy::hal::sim::SimCardReader;
using loy::hal::sim::SimClock;

namespace {

int64_t steady_ms()
{
	using namespace std::chrono;
	return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

} // namespace

TEST_CASE("sim reader: scans of the CLI contract come out as they went in")
{
	const char *const scans[] = {
		"6280001234567895",
		"6280 0012 3456 7895",
		"6280-0012-3456-7895",
		";6280001234567895=2812?",
		"LOYALTY:6280001234567895",
	};
	SimClock clock;
	SimCardReader reader(&clock);
	const loy_hal_card_reader *t = reader.table();
	CHECK(t->version == LOY_HAL_CARD_READER_VERSION);
	for (const char *s : scans)
		reader.push(s);
	for (const char *s : scans) {
		auto got = read_scan(t, 0);
		CHECK(got.rc == 1);
		CHECK(got.text == s);
	}
	CHECK(read_scan(t, 0).rc == 0);
	CHECK(reader.pending() == 0);
	CHECK(reader.reads() == 6);
	CHECK(clock.true_ms() == 0);
}

TEST_CASE("sim reader: delays and time-outs move simulated time, nothing sleeps")
{
	SimClock clock;
	SimCardReader reader(&clock);
	const loy_hal_card_reader *t = reader.table();
	const int64_t start = steady_ms();

	SECTION("an empty script times out after exactly the time-out")
	{
		CHECK(read_scan(t, 1500).rc == 0);
		CHECK(clock.true_ms() == 1500);
		CHECK(read_scan(t, 0).rc == 0);
		CHECK(clock.true_ms() == 1500);
	}
	SECTION("a scan is due its delay after the one before it was read")
	{
		reader.push("6280001234567895", 2000);
		reader.push(";6280001234567895=2812?", 30'000);
		CHECK(read_scan(t, 0).rc == 0);       // not due yet
		CHECK(read_scan(t, 1999).rc == 0);    // one millisecond short
		CHECK(clock.true_ms() == 1999);
		auto first = read_scan(t, 60'000);
		CHECK(first.rc == 1);
		CHECK(first.text == "6280001234567895");
		CHECK(clock.true_ms() == 2000);       // woke when it was due
		clock.advance_ms(10'000);             // the cashier rings up the basket
		auto second = read_scan(t, -1);
		CHECK(second.rc == 1);
		CHECK(second.text == ";6280001234567895=2812?");
		CHECK(clock.true_ms() == 32'000);
	}
	SECTION("a scan already due is delivered by a look (time-out 0)")
	{
		reader.push("6280001234567895", 100);
		clock.advance_ms(100);
		CHECK(read_scan(t, 0).rc == 1);
	}
	// A day of simulated waiting takes no real time.
	CHECK(steady_ms() - start < 1000);
}

TEST_CASE("sim reader: injected failures come in their turn")
{
	SimClock clock;
	SimCardReader reader(&clock);
	const loy_hal_card_reader *t = reader.table();
	reader.push("6280001234567895");
	reader.push_error(LOY_HAL_E_BAD_SCAN);
	reader.push("LOYALTY:6280001234567895", 500);
	reader.push_error(LOY_HAL_E_GONE, 100);
	CHECK(read_scan(t, 0).rc == 1);
	CHECK(read_scan(t, 0).rc == LOY_HAL_E_BAD_SCAN);
	CHECK(read_scan(t, 1000).text == "LOYALTY:6280001234567895");
	CHECK(read_scan(t, 1000).rc == LOY_HAL_E_GONE);
	CHECK(clock.true_ms() == 600);
}

TEST_CASE("sim reader: a buffer too small drops the scan; bad arguments")
{
	SimCardReader reader;
	const loy_hal_card_reader *t = reader.table();
	reader.push("6280001234567895"); // 16 bytes and the NUL
	reader.push("6280001234567895");
	reader.push("6280001234567895");
	CHECK(read_scan(t, 0, 16).rc == LOY_HAL_E_BAD_SCAN);
	auto fits = read_scan(t, 0, 17);
	CHECK(fits.rc == 1);
	CHECK(fits.text == "6280001234567895");
	char buf[LOY_HAL_SCAN_MAX];
	CHECK(t->read_scan(t->ctx, nullptr, sizeof buf, 0) == LOY_HAL_E_ARGUMENT);
	CHECK(t->read_scan(t->ctx, buf, 0, 0) == LOY_HAL_E_ARGUMENT);
	CHECK(reader.pending() == 1);
}

TEST_CASE("sim reader: in real time a delay and a time-out take real time")
{
	SimCardReader reader;
	const loy_hal_card_reader *t = reader.table();
	int64_t start = steady_ms();
	CHECK(read_scan(t, 30).rc == 0);
	CHECK(steady_ms() - start >= 30);

	reader.push("6280001234567895", 40);
	CHECK(read_scan(t, 0).rc == 0);
	start = steady_ms();
	auto got = read_scan(t, 5000);
	CHECK(got.rc == 1);
	CHECK(steady_ms() - start < 4000);
}

TEST_CASE("sim reader: a scan pushed from another thread wakes a waiting read")
{
	SECTION("in real time")
	{
		SimCardReader reader;
		std::thread cashier([&] {
			std::this_thread::sleep_for(std::chrono::milliseconds(20));
			reader.push(";6280001234567895=2812?");
		});
		const int64_t start = steady_ms();
		auto got = read_scan(reader.table(), 10'000);
		cashier.join();
		CHECK(got.rc == 1);
		CHECK(got.text == ";6280001234567895=2812?");
		CHECK(steady_ms() - start < 5000);
	}
	SECTION("in simulated time, waiting without limit on an empty script")
	{
		SimClock clock;
		SimCardReader reader(&clock);
		std::thread cashier([&] {
			std::this_thread::sleep_for(std::chrono::milliseconds(20));
			reader.push("6280001234567895", 700);
		});
		auto got = read_scan(reader.table(), -1);
		cashier.join();
		CHECK(got.rc == 1);
		CHECK(clock.true_ms() == 700);
	}
	SECTION("many scans from one thread, read by another, none lost or reordered")
	{
		SimCardReader reader;
		constexpr int scans = 500;
		std::thread cashier([&] {
			for (int i = 0; i < scans; i++)
				reader.push(std::to_string(i));
		});
		int next = 0;
		while (next < scans) {
			auto got = read_scan(reader.table(), 10'000);
			REQUIRE(got.rc == 1);
			REQUIRE(got.text == std::to_string(next));
			next++;
		}
		cashier.join();
	}
}
