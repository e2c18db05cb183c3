// Simulated devices behind the C tables of include/loyalty/hal.h, for tests
// and for running the terminal without hardware: a clock that jumps and
// drifts, a scripted card reader, a link that drops and returns, an in-memory
// key store and a printer that captures lines. Each can be told to fail.
//
// Time. A SimClock keeps the simulation's true time (true_ms()) and the
// device's wall and monotonic clocks, which run fast or slow by the drift.
// A reader or a link given a clock runs in simulated time: its delays and
// schedules are in true milliseconds, and a wait does not sleep but moves the
// clock on (to the next scripted event or by the time-out), so that a test of
// an hour of link flaps takes microseconds; only a wait without limit on an
// empty script (or schedule) sleeps, in real time, until another thread adds
// to it. Without a clock they run in real time and a wait sleeps until another
// thread pushes a scan or flips the link, or the time-out.
//
// Every class is thread-safe: a test drives one from a second thread while
// the code under test waits in read_scan() or wait_change(). The C tables
// live as long as their object, which must not move (no copies, no moves).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "loyalty/hal.h"

namespace loy::hal::sim {

// A simulated clock. Starts at wall time `wall_ms`, monotonic time
// `monotonic_ms`, true time 0, no drift.
class SimClock {
public:
	// Crystals are within ±100 ppm; ten per cent is far past any clock that
	// still works, and keeps the drift arithmetic far from overflow.
	static constexpr int64_t drift_ppm_max = 100'000;
	// The longest single step: ten years. Scaled by 1'000'000 + drift it
	// stays far below int64's limit.
	static constexpr int64_t step_ms_max = int64_t{10} * 366 * 86'400'000;

	explicit SimClock(int64_t wall_ms = 1'767'225'600'000 /* 2026-01-01T00:00:00Z */,
			  int64_t monotonic_ms = 0);
	SimClock(const SimClock &) = delete;
	SimClock &operator=(const SimClock &) = delete;

	const loy_hal_clock *table() const { return &table_; }

	// True time passes: wall and monotonic time advance by `ms` scaled by
	// the drift. 0 <= ms <= step_ms_max.
	void advance_ms(int64_t ms);
	// Wall time is set (NTP, a cashier): a jump forward or back. Monotonic
	// time does not move.
	void set_wall_ms(int64_t wall_ms);
	// Wall time jumps by `delta_ms`, forward or back.
	void jump_ms(int64_t delta_ms);
	// From now on the device runs fast (ppm > 0) or slow (ppm < 0):
	// after 1'000'000 true ms it has counted 1'000'000 + ppm.
	void set_drift_ppm(int64_t ppm);
	// A dead clock answers LOY_HAL_TIME_INVALID until repaired.
	void set_broken(bool broken);

	int64_t wall_ms() const;
	int64_t monotonic_ms() const;
	int64_t true_ms() const;

private:
	static int64_t wall_cb(void *ctx);
	static int64_t monotonic_cb(void *ctx);

	mutable std::mutex mu_;
	int64_t true_ms_ = 0;
	int64_t wall_ms_;
	int64_t monotonic_ms_;
	int64_t drift_ppm_ = 0;
	// Device microseconds counted but not yet a whole millisecond, times
	// 1000 (so in millionths of a ms): drift never loses a fraction.
	int64_t carry_ = 0;
	bool broken_ = false;
	loy_hal_clock table_{};
};

// A card reader that delivers a script: scans and failures in order, each
// `delay_ms` after it became the next in line (after the one before it was
// read, or when it was pushed into an empty script).
class SimCardReader {
public:
	// Longest script: a test that pushes more is broken.
	static constexpr size_t script_max = 4096;

	explicit SimCardReader(SimClock *clock = nullptr);
	SimCardReader(const SimCardReader &) = delete;
	SimCardReader &operator=(const SimCardReader &) = delete;

	const loy_hal_card_reader *table() const { return &table_; }

	void push(std::string scan, int64_t delay_ms = 0);
	// read_scan() returns `code` (< 0) in its turn: LOY_HAL_E_GONE,
	// LOY_HAL_E_BAD_SCAN, LOY_HAL_E_IO.
	void push_error(int code, int64_t delay_ms = 0);
	// Scans and failures not yet delivered.
	size_t pending() const;
	// Calls of read_scan() so far.
	size_t reads() const;

private:
	struct Item {
		std::string scan;
		int code; // 1 for a scan
		int64_t delay_ms;
	};
	static int read_scan_cb(void *ctx, char *buf, size_t size, int timeout_ms);
	int read_scan(char *buf, size_t size, int timeout_ms);
	int deliver(char *buf, size_t size);
	int64_t now_ms() const;
	void push_item(Item item);

	SimClock *clock_;
	mutable std::mutex mu_;
	std::condition_variable cv_;
	std::deque<Item> script_;
	int64_t head_since_ms_ = 0; // when script_.front() became the next in line
	size_t reads_ = 0;
	loy_hal_card_reader table_{};
};

// A link that drops and returns: on command (set_up, drop, restore, flap),
// or on a schedule in true time (needs a clock).
class SimLink {
public:
	static constexpr size_t schedule_max = 4096;

	explicit SimLink(SimClock *clock = nullptr, bool up = true);
	SimLink(const SimLink &) = delete;
	SimLink &operator=(const SimLink &) = delete;

	const loy_hal_link *table() const { return &table_; }

	void set_up(bool up);
	void drop() { set_up(false); }
	void restore() { set_up(true); }
	// Down and up again at once: the state is the same, but a waiter sees a
	// change (a connection made before it is broken).
	void flap();
	// At true time `at_ms` the link goes up or down. Needs a clock.
	void schedule(int64_t at_ms, bool up);
	// The next `count` calls of is_up() or wait_change() return `code`.
	void fail_next(int count, int code = LOY_HAL_E_IO);

	bool up() const;
	// Changes of state so far, a flap counting two.
	uint64_t changes() const;

private:
	static int is_up_cb(void *ctx);
	static int wait_change_cb(void *ctx, int timeout_ms);
	int is_up();
	int wait_change(int timeout_ms);
	void change_locked(bool up);
	void apply_due_locked();
	bool take_failure_locked(int *code);

	SimClock *clock_;
	mutable std::mutex mu_;
	std::condition_variable cv_;
	bool up_;
	uint64_t generation_ = 0; // bumped by every change
	uint64_t reported_ = 0;   // generation_ when is_up() last answered
	std::multimap<int64_t, bool> schedule_;
	int fail_count_ = 0;
	int fail_code_ = LOY_HAL_E_IO;
	loy_hal_link table_{};
};

// A key store in memory, with the names and sizes of the file store.
class SimKeyStore {
public:
	// Items held at most: the terminal needs five.
	static constexpr size_t items_max = 64;

	SimKeyStore();
	SimKeyStore(const SimKeyStore &) = delete;
	SimKeyStore &operator=(const SimKeyStore &) = delete;

	const loy_hal_keystore *table() const { return &table_; }

	// The next `count` puts (or erases) fail with `code` and change
	// nothing, as a full disk or a crash before the rename would.
	void fail_puts(int count, int code = LOY_HAL_E_IO);
	// The next `count` gets fail with `code`.
	void fail_gets(int count, int code = LOY_HAL_E_IO);

	std::optional<std::vector<unsigned char>> item(const std::string &name) const;
	size_t size() const;
	// Puts that changed the store so far.
	size_t puts() const;

private:
	static int get_cb(void *ctx, const char *name, unsigned char *buf, size_t size, size_t *len);
	static int put_cb(void *ctx, const char *name, const unsigned char *data, size_t len);
	static int erase_cb(void *ctx, const char *name);

	mutable std::mutex mu_;
	std::map<std::string, std::vector<unsigned char>> items_;
	int put_fail_count_ = 0, put_fail_code_ = LOY_HAL_E_IO;
	int get_fail_count_ = 0, get_fail_code_ = LOY_HAL_E_IO;
	size_t puts_ = 0;
	loy_hal_keystore table_{};
};

// A printer that keeps what it prints.
class SimPrinter {
public:
	// Lines kept at most: a day of receipts; a test that prints more is broken.
	static constexpr size_t lines_max = 100'000;

	SimPrinter();
	SimPrinter(const SimPrinter &) = delete;
	SimPrinter &operator=(const SimPrinter &) = delete;

	const loy_hal_printer *table() const { return &table_; }

	// Every line printed, flushed or not.
	std::vector<std::string> lines() const;
	// The lines of each flushed receipt.
	std::vector<std::vector<std::string>> receipts() const;
	// Lines printed since the last flush.
	std::vector<std::string> unflushed() const;
	size_t flushes() const;
	void clear();
	// The next `count` calls of print_line() or flush() fail with `code`
	// (out of paper, cover open) and print nothing.
	void fail_next(int count, int code = LOY_HAL_E_IO);

private:
	static int print_line_cb(void *ctx, const char *line);
	static int flush_cb(void *ctx);
	bool take_failure_locked(int *code);

	mutable std::mutex mu_;
	std::vector<std::string> lines_;
	std::vector<size_t> flush_marks_; // lines_.size() at each flush
	int fail_count_ = 0, fail_code_ = LOY_HAL_E_IO;
	loy_hal_printer table_{};
};

// All five on one simulated clock, and the loy_hal that lists them.
class SimHal {
public:
	SimHal() : reader(&clock), link(&clock) {}
	SimHal(const SimHal &) = delete;
	SimHal &operator=(const SimHal &) = delete;

	const loy_hal *hal() const { return &hal_; }

	SimClock clock;
	SimCardReader reader;
	SimLink link;
	SimKeyStore keys;
	SimPrinter printer;

private:
	loy_hal hal_{LOY_HAL_VERSION, clock.table(), reader.table(), link.table(), keys.table(),
		     printer.table()};
};

} // namespace loy::hal::sim
