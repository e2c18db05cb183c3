// The capturing printer: the rules of a real one for what a line may hold,
// and every line kept for the test to read.
#include <cassert>
#include <cstring>

#include "hal/sim/sim.hpp"

namespace loy::hal::sim {

SimPrinter::SimPrinter()
{
	table_.version = LOY_HAL_PRINTER_VERSION;
	table_.print_line = print_line_cb;
	table_.flush = flush_cb;
	table_.ctx = this;
}

std::vector<std::string> SimPrinter::lines() const
{
	std::lock_guard lock(mu_);
	return lines_;
}

std::vector<std::vector<std::string>> SimPrinter::receipts() const
{
	std::lock_guard lock(mu_);
	std::vector<std::vector<std::string>> out;
	size_t from = 0;
	for (size_t mark : flush_marks_) {
		out.emplace_back(lines_.begin() + static_cast<std::ptrdiff_t>(from),
				 lines_.begin() + static_cast<std::ptrdiff_t>(mark));
		from = mark;
	}
	return out;
}

std::vector<std::string> SimPrinter::unflushed() const
{
	std::lock_guard lock(mu_);
	size_t from = flush_marks_.empty() ? 0 : flush_marks_.back();
	return {lines_.begin() + static_cast<std::ptrdiff_t>(from), lines_.end()};
}

size_t SimPrinter::flushes() const
{
	std::lock_guard lock(mu_);
	return flush_marks_.size();
}

void SimPrinter::clear()
{
	std::lock_guard lock(mu_);
	lines_.clear();
	flush_marks_.clear();
}

void SimPrinter::fail_next(int count, int code)
{
	assert(count >= 0 && code < 0);
	std::lock_guard lock(mu_);
	fail_count_ = count;
	fail_code_ = code;
}

bool SimPrinter::take_failure_locked(int *code)
{
	if (fail_count_ == 0)
		return false;
	fail_count_--;
	*code = fail_code_;
	return true;
}

int SimPrinter::print_line_cb(void *ctx, const char *line)
{
	auto *self = static_cast<SimPrinter *>(ctx);
	if (!line)
		return LOY_HAL_E_ARGUMENT;
	size_t len = strnlen(line, LOY_HAL_LINE_MAX);
	if (len >= LOY_HAL_LINE_MAX || std::memchr(line, '\n', len) || std::memchr(line, '\r', len))
		return LOY_HAL_E_ARGUMENT;
	try {
		std::lock_guard lock(self->mu_);
		int code;
		if (self->take_failure_locked(&code))
			return code;
		assert(self->lines_.size() < lines_max);
		self->lines_.emplace_back(line, len);
		return 0;
	} catch (...) {
		return LOY_HAL_E_IO;
	}
}

int SimPrinter::flush_cb(void *ctx)
{
	auto *self = static_cast<SimPrinter *>(ctx);
	try {
		std::lock_guard lock(self->mu_);
		int code;
		if (self->take_failure_locked(&code))
			return code;
		self->flush_marks_.push_back(self->lines_.size());
		return 0;
	} catch (...) {
		return LOY_HAL_E_IO;
	}
}

} // namespace loy::hal::sim
