// The keyboard-wedge reader: its decoder on synthetic struct input_event
// sequences (the scans of the CLI contract typed with either Shift, keypad
// digits, repeats, keys no scan holds, scans too long, events the kernel
// dropped, a seeded random mix), and the device's read loop on a pipe that
// stands in for /dev/input/eventN through the Sys table.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/input.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <string>
#include <vector>

#include "hal/linux/decode.hpp"
#include "hal/linux/sys.hpp"
#include "loyalty/hal.h"
#include "tmp.hpp"

using hal_test::read_scan;
using loy::hal::Decoded;
using loy::hal::EvdevDecoder;
using Events = std::vector<struct input_event>;

namespace {

struct input_event ev(unsigned type, unsigned code, int value)
{
	struct input_event e {};
	e.type = static_cast<uint16_t>(type);
	e.code = static_cast<uint16_t>(code);
	e.value = value;
	return e;
}

void key(Events &out, unsigned code)
{
	out.push_back(ev(EV_MSC, MSC_SCAN, 0x70000 + static_cast<int>(code))); // as keyboards send
	out.push_back(ev(EV_KEY, code, 1));
	out.push_back(ev(EV_SYN, SYN_REPORT, 0));
	out.push_back(ev(EV_KEY, code, 0));
	out.push_back(ev(EV_SYN, SYN_REPORT, 0));
}

// How a scanner types `c`: a key, and whether Shift is held. Main keys first.
bool key_for(char c, unsigned *code, bool *shift)
{
	for (unsigned k = 0; k < 256; k++) {
		for (bool s : {false, true}) {
			if (EvdevDecoder::char_of(k, s) == c) {
				*code = k;
				*shift = s;
				return true;
			}
		}
	}
	return false;
}

// `text` typed and Enter, with the left Shift key (or the right one).
Events typed(const std::string &text, unsigned shift_key = KEY_LEFTSHIFT, unsigned enter = KEY_ENTER)
{
	Events out;
	for (char c : text) {
		unsigned code = 0;
		bool shift = false;
		REQUIRE(key_for(c, &code, &shift));
		if (shift)
			out.push_back(ev(EV_KEY, shift_key, 1));
		key(out, code);
		if (shift)
			out.push_back(ev(EV_KEY, shift_key, 0));
	}
	key(out, enter);
	return out;
}

// Every scan and failure the decoder makes of `events`.
std::vector<std::string> decode(const Events &events)
{
	EvdevDecoder d;
	std::vector<std::string> out;
	for (const auto &e : events) {
		Decoded r = d.feed(e);
		if (r == Decoded::scan)
			out.push_back(d.scan());
		else if (r == Decoded::bad_scan)
			out.push_back("<bad>");
	}
	return out;
}

Events operator+(Events a, const Events &b)
{
	a.insert(a.end(), b.begin(), b.end());
	return a;
}

} // namespace

TEST_CASE("evdev decoder: the scans of the CLI contract")
{
	using V = std::vector<std::string>;
	const char *const scans[] = {
		"6280001234567895",
		"6280 0012 3456 7895",
		"6280-0012-3456-7895",
		";6280001234567895=2812?",
		"LOYALTY:6280001234567895",
		"loyalty:6280001234567895", // lower case without Shift
	};
	for (const char *s : scans) {
		INFO(s);
		CHECK(decode(typed(s)) == V{s});
		CHECK(decode(typed(s, KEY_RIGHTSHIFT)) == V{s});
		CHECK(decode(typed(s, KEY_LEFTSHIFT, KEY_KPENTER)) == V{s});
	}
	// Each letter of "LOYALTY" and the others a QR payload may hold.
	const std::string letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	CHECK(decode(typed(letters)) == V{letters});
	CHECK(decode(typed("./:;=?- ")) == V{"./:;=?- "});
}

TEST_CASE("evdev decoder: keypad digits, modifiers and noise")
{
	using V = std::vector<std::string>;
	Events e;
	e.push_back(ev(EV_KEY, KEY_NUMLOCK, 1));
	e.push_back(ev(EV_KEY, KEY_NUMLOCK, 0));
	e.push_back(ev(EV_LED, LED_NUML, 1));
	static const unsigned keypad[] = {KEY_KP6, KEY_KP2, KEY_KP8, KEY_KP0, KEY_KPMINUS, KEY_KP9};
	for (unsigned k : keypad)
		key(e, k);
	key(e, KEY_KPENTER);
	CHECK(decode(e) == V{"6280-9"});

	// Auto-repeat of a key held down types nothing more.
	Events r;
	r.push_back(ev(EV_KEY, KEY_1, 1));
	r.push_back(ev(EV_KEY, KEY_1, 2));
	r.push_back(ev(EV_KEY, KEY_1, 2));
	r.push_back(ev(EV_KEY, KEY_1, 0));
	key(r, KEY_ENTER);
	CHECK(decode(r) == V{"1"});

	// Enter alone is no scan; Ctrl and Alt type nothing.
	Events m;
	key(m, KEY_ENTER);
	key(m, KEY_KPENTER);
	m.push_back(ev(EV_KEY, KEY_LEFTCTRL, 1));
	key(m, KEY_7);
	m.push_back(ev(EV_KEY, KEY_LEFTCTRL, 0));
	key(m, KEY_ENTER);
	CHECK(decode(m) == V{"7"});
}

TEST_CASE("evdev decoder: bad scans are reported once and dropped")
{
	using V = std::vector<std::string>;
	struct Row {
		const char *name;
		Events events;
		V scans;
	};
	Events f1;
	key(f1, KEY_6);
	key(f1, KEY_F1); // a key no scan holds
	key(f1, KEY_2);
	key(f1, KEY_ENTER);

	Events shifted_digit;
	shifted_digit.push_back(ev(EV_KEY, KEY_LEFTSHIFT, 1));
	key(shifted_digit, KEY_1); // '!'
	shifted_digit.push_back(ev(EV_KEY, KEY_LEFTSHIFT, 0));
	key(shifted_digit, KEY_ENTER);

	// Events lost in the middle of a scan: the scan is unreliable.
	Events dropped;
	key(dropped, KEY_6);
	dropped.push_back(ev(EV_SYN, SYN_DROPPED, 0));
	dropped.push_back(ev(EV_KEY, KEY_2, 1)); // discarded up to the SYN_REPORT
	dropped.push_back(ev(EV_SYN, SYN_REPORT, 0));
	key(dropped, KEY_8);
	key(dropped, KEY_ENTER);

	// Shift is released as far as the decoder knows after a drop.
	Events shift_lost;
	shift_lost.push_back(ev(EV_KEY, KEY_LEFTSHIFT, 1));
	shift_lost.push_back(ev(EV_SYN, SYN_DROPPED, 0));
	shift_lost.push_back(ev(EV_SYN, SYN_REPORT, 0));

	const Row rows[] = {
		{"an F1 key", f1 + typed("1"), V{"<bad>", "1"}},
		{"Shift and a digit", shifted_digit + typed("2"), V{"<bad>", "2"}},
		{"the longest scan", typed(std::string(LOY_HAL_SCAN_MAX - 1, '9')),
		 V{std::string(LOY_HAL_SCAN_MAX - 1, '9')}},
		{"one key too many", typed(std::string(LOY_HAL_SCAN_MAX, '9')) + typed("3"),
		 V{"<bad>", "3"}},
		{"events dropped", dropped + typed("4"), V{"<bad>", "4"}},
		{"Shift lost in a drop", shift_lost + typed("5") + typed("a"), V{"<bad>", "a"}},
	};
	for (const Row &row : rows) {
		INFO(row.name);
		CHECK(decode(row.events) == row.scans);
	}
}

TEST_CASE("evdev decoder: random scans with random Shift keys and noise")
{
	const unsigned seed = Catch::rngSeed();
	INFO("replay with --rng-seed " << seed);
	std::seed_seq seq{seed, 0xe7du};
	std::mt19937 rng(seq);
	const std::string alphabet = "0123456789 -;=?:LOYALTYloyalty";
	std::vector<std::string> want;
	Events all;
	for (int i = 0; i < 300; i++) {
		std::string s;
		size_t len = 1 + rng() % (LOY_HAL_SCAN_MAX - 1);
		for (size_t j = 0; j < len; j++)
			s += alphabet[rng() % alphabet.size()];
		want.push_back(s);
		// Keypad digits and either Shift, chosen per character.
		for (char c : s) {
			if (c >= '0' && c <= '9' && rng() % 2) {
				static const unsigned kp[] = {KEY_KP0, KEY_KP1, KEY_KP2, KEY_KP3, KEY_KP4,
							      KEY_KP5, KEY_KP6, KEY_KP7, KEY_KP8, KEY_KP9};
				key(all, kp[c - '0']);
				continue;
			}
			unsigned code = 0;
			bool shift = false;
			REQUIRE(key_for(c, &code, &shift));
			unsigned shift_key = rng() % 2 ? KEY_LEFTSHIFT : KEY_RIGHTSHIFT;
			if (shift)
				all.push_back(ev(EV_KEY, shift_key, 1));
			if (rng() % 8 == 0)
				all.push_back(ev(EV_MSC, MSC_SCAN, 0x7001e));
			key(all, code);
			if (shift)
				all.push_back(ev(EV_KEY, shift_key, 0));
		}
		key(all, rng() % 2 ? KEY_ENTER : KEY_KPENTER);
		if (rng() % 4 == 0)
			key(all, KEY_ENTER); // an empty line between scans
	}
	CHECK(decode(all) == want);
}

namespace {

// The pipe that stands in for the event device: its read end is what the
// fake open() returns.
int pipe_read = -1;
int grabs = 0;

loy::hal::Sys pipe_sys()
{
	loy::hal::Sys sys = loy::hal::real_sys();
	sys.open = [](const char *, int, mode_t) { return ::fcntl(pipe_read, F_DUPFD_CLOEXEC, 0); };
	sys.ioctl_ptr = [](int, unsigned long request, void *arg) {
		if (request != EVIOCGVERSION)
			return -1;
		*static_cast<int *>(arg) = EV_VERSION;
		return 0;
	};
	sys.ioctl_int = [](int, unsigned long request, int arg) {
		if (request != EVIOCGRAB)
			return -1;
		grabs += arg ? 1 : -1;
		return 0;
	};
	return sys;
}

struct FakeDevice {
	int write_end = -1;
	loy_hal_card_reader reader{};
	explicit FakeDevice(int grab = 0, loy::hal::Sys sys = pipe_sys())
	{
		int fds[2];
		REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
		pipe_read = fds[0];
		write_end = fds[1];
		REQUIRE(loy::hal::evdev_open(&reader, "/dev/input/event-fake", grab, sys) == 0);
		::close(pipe_read);
	}
	~FakeDevice()
	{
		loy_hal_linux_evdev_close(&reader);
		if (write_end >= 0)
			::close(write_end);
	}
	void send(const Events &e) const
	{
		const size_t bytes = e.size() * sizeof(struct input_event);
		REQUIRE(::write(write_end, e.data(), bytes) == static_cast<ssize_t>(bytes));
	}
};

} // namespace

TEST_CASE("evdev reader: scans through the device's read loop")
{
	FakeDevice dev;
	const loy_hal_card_reader *r = &dev.reader;
	CHECK(r->version == LOY_HAL_CARD_READER_VERSION);
	CHECK(read_scan(r, 0).rc == 0);
	CHECK(read_scan(r, 20).rc == 0);
	// Two scans in one read: the second waits for the next call.
	dev.send(typed(";6280001234567895=2812?") + typed("LOYALTY:6280001234567895"));
	CHECK(read_scan(r, 1000).text == ";6280001234567895=2812?");
	CHECK(read_scan(r, 0).text == "LOYALTY:6280001234567895");
	CHECK(read_scan(r, 0).rc == 0);
	// A scan split across reads.
	Events e = typed("6280001234567895");
	dev.send(Events(e.begin(), e.begin() + 20));
	CHECK(read_scan(r, 20).rc == 0);
	dev.send(Events(e.begin() + 20, e.end()));
	CHECK(read_scan(r, 1000).text == "6280001234567895");
	// More events than one read takes.
	Events many;
	for (int i = 0; i < 10; i++)
		many = many + typed(std::to_string(1000 + i));
	REQUIRE(many.size() > 64);
	dev.send(many);
	for (int i = 0; i < 10; i++)
		CHECK(read_scan(r, 1000).text == std::to_string(1000 + i));
	// Bad scans, and a buffer too small.
	Events f1;
	key(f1, KEY_F1);
	key(f1, KEY_ENTER);
	dev.send(f1 + typed("6280001234567895"));
	CHECK(read_scan(r, 1000).rc == LOY_HAL_E_BAD_SCAN);
	CHECK(read_scan(r, 1000, 16).rc == LOY_HAL_E_BAD_SCAN);
	char buf[4];
	CHECK(r->read_scan(r->ctx, buf, 0, 0) == LOY_HAL_E_ARGUMENT);
	CHECK(r->read_scan(r->ctx, nullptr, 4, 0) == LOY_HAL_E_ARGUMENT);
}

TEST_CASE("evdev reader: a device unplugged, a torn event, a failed poll")
{
	SECTION("the other end goes away: LOY_HAL_E_GONE")
	{
		FakeDevice dev;
		::close(dev.write_end);
		dev.write_end = -1;
		CHECK(read_scan(&dev.reader, 1000).rc == LOY_HAL_E_GONE);
	}
	SECTION("read says ENODEV: LOY_HAL_E_GONE")
	{
		loy::hal::Sys sys = pipe_sys();
		sys.read = [](int, void *, size_t) -> ssize_t {
			errno = ENODEV;
			return -1;
		};
		FakeDevice dev(0, sys);
		dev.send(typed("1"));
		CHECK(read_scan(&dev.reader, 1000).rc == LOY_HAL_E_GONE);
	}
	SECTION("part of an event is not an evdev device: LOY_HAL_E_IO")
	{
		FakeDevice dev;
		REQUIRE(::write(dev.write_end, "0123456789", 10) == 10);
		CHECK(read_scan(&dev.reader, 1000).rc == LOY_HAL_E_IO);
	}
	SECTION("poll fails: LOY_HAL_E_IO")
	{
		loy::hal::Sys sys = pipe_sys();
		sys.poll = [](struct pollfd *, nfds_t, int) {
			errno = ENOMEM;
			return -1;
		};
		FakeDevice dev(0, sys);
		CHECK(read_scan(&dev.reader, 1000).rc == LOY_HAL_E_IO);
	}
	SECTION("poll interrupted by a signal: the wait goes on")
	{
		loy::hal::Sys sys = pipe_sys();
		sys.poll = [](struct pollfd *fds, nfds_t n, int timeout_ms) {
			static int calls;
			if (calls++ == 0) {
				errno = EINTR;
				return -1;
			}
			return ::poll(fds, n, timeout_ms);
		};
		FakeDevice dev(0, sys);
		dev.send(typed("42"));
		CHECK(read_scan(&dev.reader, 1000).text == "42");
	}
}

TEST_CASE("evdev reader: grab on open, release on close; bad opens")
{
	grabs = 0;
	{
		FakeDevice dev(1);
		CHECK(grabs == 1);
	}
	CHECK(grabs == 0);
	loy_hal_card_reader r;
	// /dev/null answers no evdev ioctl.
	CHECK(loy_hal_linux_evdev_open(&r, "/dev/null", 0) == LOY_HAL_E_IO);
	CHECK(loy_hal_linux_evdev_open(&r, "/dev/input/no-such-event", 0) == LOY_HAL_E_IO);
	CHECK(loy_hal_linux_evdev_open(&r, "", 0) == LOY_HAL_E_ARGUMENT);
	CHECK(loy_hal_linux_evdev_open(nullptr, "/dev/null", 0) == LOY_HAL_E_ARGUMENT);
	loy_hal_linux_evdev_close(nullptr);
}
