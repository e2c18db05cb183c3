// The scripted card reader. In simulated time a wait moves the clock to the
// moment the next item is due (or by the time-out) instead of sleeping; in
// real time it sleeps on a condition variable that push() signals.
#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstring>

#include "hal/sim/sim.hpp"

namespace loy::hal::sim {

namespace {

int64_t steady_ms()
{
	using namespace std::chrono;
	return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

} // namespace

SimCardReader::SimCardReader(SimClock *clock) : clock_(clock)
{
	table_.version = LOY_HAL_CARD_READER_VERSION;
	table_.read_scan = read_scan_cb;
	table_.ctx = this;
}

int64_t SimCardReader::now_ms() const { return clock_ ? clock_->true_ms() : steady_ms(); }

void SimCardReader::push_item(Item item)
{
	assert(item.delay_ms >= 0);
	{
		std::lock_guard lock(mu_);
		assert(script_.size() < script_max);
		if (script_.empty())
			head_since_ms_ = now_ms();
		script_.push_back(std::move(item));
	}
	cv_.notify_all();
}

void SimCardReader::push(std::string scan, int64_t delay_ms)
{
	push_item(Item{std::move(scan), 1, delay_ms});
}

void SimCardReader::push_error(int code, int64_t delay_ms)
{
	assert(code < 0);
	push_item(Item{std::string(), code, delay_ms});
}

size_t SimCardReader::pending() const
{
	std::lock_guard lock(mu_);
	return script_.size();
}

size_t SimCardReader::reads() const
{
	std::lock_guard lock(mu_);
	return reads_;
}

// Takes the head of the script; mu_ is held and the head is due.
int SimCardReader::deliver(char *buf, size_t size)
{
	Item item = std::move(script_.front());
	script_.pop_front();
	head_since_ms_ = now_ms();
	if (item.code != 1)
		return item.code;
	// Too long for the caller: dropped, as a real reader drops a scan
	// longer than its buffer.
	if (item.scan.size() >= size)
		return LOY_HAL_E_BAD_SCAN;
	std::memcpy(buf, item.scan.c_str(), item.scan.size() + 1);
	return 1;
}

int SimCardReader::read_scan(char *buf, size_t size, int timeout_ms)
{
	if (!buf || size == 0)
		return LOY_HAL_E_ARGUMENT;
	std::unique_lock lock(mu_);
	reads_++;
	if (clock_) {
		// Simulated time: nothing sleeps unless the script is empty and
		// the caller waits without limit; then only a push can help.
		for (;;) {
			if (script_.empty()) {
				if (timeout_ms >= 0) {
					clock_->advance_ms(timeout_ms);
					return 0;
				}
				cv_.wait(lock, [&] { return !script_.empty(); });
				continue;
			}
			int64_t now = clock_->true_ms();
			int64_t due = head_since_ms_ + script_.front().delay_ms;
			if (due <= now)
				return deliver(buf, size);
			if (timeout_ms >= 0 && due > now + timeout_ms) {
				clock_->advance_ms(timeout_ms);
				return 0;
			}
			clock_->advance_ms(due - now);
		}
	}
	const int64_t deadline = timeout_ms < 0 ? -1 : steady_ms() + timeout_ms;
	for (;;) {
		int64_t now = steady_ms();
		int64_t wake = deadline;
		if (!script_.empty()) {
			int64_t due = head_since_ms_ + script_.front().delay_ms;
			if (due <= now)
				return deliver(buf, size);
			wake = deadline < 0 ? due : std::min(due, deadline);
		}
		if (deadline >= 0 && now >= deadline)
			return 0;
		if (wake < 0)
			cv_.wait(lock);
		else
			cv_.wait_for(lock, std::chrono::milliseconds(wake - now));
	}
}

int SimCardReader::read_scan_cb(void *ctx, char *buf, size_t size, int timeout_ms)
{
	// Nothing C++ crosses the table: a failed allocation is an I/O error.
	try {
		return static_cast<SimCardReader *>(ctx)->read_scan(buf, size, timeout_ms);
	} catch (...) {
		return LOY_HAL_E_IO;
	}
}

} // namespace loy::hal::sim
