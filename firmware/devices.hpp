// The terminal's devices as its configuration names them: the Linux
// implementations of hal/linux/, or the simulators of hal/sim/ (for a demo
// or a test without hardware), gathered into the loy_hal the library takes.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "base/status.hpp"
#include "firmware/config.hpp"
#include "hal/sim/sim.hpp"
#include "loyalty/hal.h"

namespace loy::fw {

// The simulated devices a POS request may drive ("sim.scan", "sim.link",
// "sim.clock"); NULL where the device is real.
struct SimControls {
	hal::sim::SimClock *clock = nullptr;
	hal::sim::SimCardReader *reader = nullptr;
	hal::sim::SimLink *link = nullptr;
	int speed = 1; // simulated ms per real ms of the clock's ticker
};

class Devices {
public:
	// Opens every device of `config`; the key store is the data dir's files.
	// The wall clock runs `clock_offset_s` ahead of the configured one
	// (LOYALTY_CLOCK_OFFSET_S), for tests and demos of another day.
	static Result<std::unique_ptr<Devices>> open(const TerminalConfig &config, const std::string &data_dir,
						     int64_t clock_offset_s = 0);
	~Devices();
	Devices(const Devices &) = delete;
	Devices &operator=(const Devices &) = delete;

	const loy_hal *hal() const { return &hal_; }
	const SimControls &sim() const { return sim_; }

private:
	Devices() = default;

	loy_hal_clock clock_{};       // the one the library takes
	loy_hal_clock inner_clock_{}; // the Linux clock behind an offset
	int64_t clock_offset_ms_ = 0;
	loy_hal_card_reader reader_{};
	loy_hal_link link_{};
	loy_hal_keystore keys_{};
	loy_hal_printer printer_{};
	ReaderType reader_type_ = ReaderType::none;
	bool linux_clock_ = false, linux_link_ = false, linux_printer_ = false;

	std::unique_ptr<hal::sim::SimClock> sim_clock_;
	std::unique_ptr<hal::sim::SimCardReader> sim_reader_;
	std::unique_ptr<hal::sim::SimLink> sim_link_;
	std::unique_ptr<hal::sim::SimPrinter> sim_printer_;
	SimControls sim_;
	// A simulated clock runs `speed` times real time, moved on by a ticker.
	std::atomic<bool> stop_{false};
	std::thread ticker_;

	loy_hal hal_{};
};

} // namespace loy::fw
