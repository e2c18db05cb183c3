// The simulated link. Every change bumps a generation; wait_change() returns
// once the generation differs from the one is_up() last reported, so a flap
// between two looks is never lost.
#include <cassert>
#include <chrono>

#include "hal/sim/sim.hpp"

namespace loy::hal::sim {

SimLink::SimLink(SimClock *clock, bool up) : clock_(clock), up_(up)
{
	table_.version = LOY_HAL_LINK_VERSION;
	table_.is_up = is_up_cb;
	table_.wait_change = wait_change_cb;
	table_.ctx = this;
}

void SimLink::change_locked(bool up)
{
	up_ = up;
	generation_++;
	cv_.notify_all();
}

void SimLink::set_up(bool up)
{
	std::lock_guard lock(mu_);
	if (up != up_)
		change_locked(up);
}

void SimLink::flap()
{
	std::lock_guard lock(mu_);
	change_locked(!up_);
	change_locked(!up_);
}

void SimLink::schedule(int64_t at_ms, bool up)
{
	assert(clock_ && "a schedule needs a clock");
	{
		std::lock_guard lock(mu_);
		assert(schedule_.size() < schedule_max);
		schedule_.emplace(at_ms, up);
	}
	// A waiter with no limit and nothing scheduled sleeps for real.
	cv_.notify_all();
}

void SimLink::fail_next(int count, int code)
{
	assert(count >= 0 && code < 0);
	std::lock_guard lock(mu_);
	fail_count_ = count;
	fail_code_ = code;
}

bool SimLink::up() const
{
	std::lock_guard lock(mu_);
	return up_;
}

uint64_t SimLink::changes() const
{
	std::lock_guard lock(mu_);
	return generation_;
}

void SimLink::apply_due_locked()
{
	if (!clock_)
		return;
	int64_t now = clock_->true_ms();
	while (!schedule_.empty() && schedule_.begin()->first <= now) {
		bool up = schedule_.begin()->second;
		schedule_.erase(schedule_.begin());
		if (up != up_)
			change_locked(up);
	}
}

bool SimLink::take_failure_locked(int *code)
{
	if (fail_count_ == 0)
		return false;
	fail_count_--;
	*code = fail_code_;
	return true;
}

int SimLink::is_up()
{
	std::lock_guard lock(mu_);
	int code;
	if (take_failure_locked(&code))
		return code;
	apply_due_locked();
	reported_ = generation_;
	return up_ ? 1 : 0;
}

int SimLink::wait_change(int timeout_ms)
{
	std::unique_lock lock(mu_);
	int code;
	if (take_failure_locked(&code))
		return code;
	if (clock_) {
		const int64_t deadline = timeout_ms < 0 ? -1 : clock_->true_ms() + timeout_ms;
		for (;;) {
			apply_due_locked();
			if (generation_ != reported_)
				return 1;
			int64_t now = clock_->true_ms();
			if (!schedule_.empty() &&
			    (deadline < 0 || schedule_.begin()->first <= deadline)) {
				// Events in the past are applied already, so this moves
				// the clock forward.
				clock_->advance_ms(schedule_.begin()->first - now);
				continue;
			}
			if (deadline >= 0) {
				// Another thread may have moved the clock past it.
				if (deadline > now)
					clock_->advance_ms(deadline - now);
				return 0;
			}
			// No schedule and no limit: only a command or a new schedule
			// can end the wait.
			cv_.wait(lock, [&] { return generation_ != reported_ || !schedule_.empty(); });
		}
	}
	auto changed = [&] { return generation_ != reported_; };
	if (timeout_ms < 0) {
		cv_.wait(lock, changed);
		return 1;
	}
	return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), changed) ? 1 : 0;
}

int SimLink::is_up_cb(void *ctx) { return static_cast<SimLink *>(ctx)->is_up(); }

int SimLink::wait_change_cb(void *ctx, int timeout_ms)
{
	return static_cast<SimLink *>(ctx)->wait_change(timeout_ms);
}

} // namespace loy::hal::sim
