// The cashier loop of `loyalty-terminal run`: a card scanned at the reader
// shows the member; the POS application sends baskets, refunds and lookups
// over the POS channel (firmware/POS.md); receipts go to the printer; and a
// sync runs by itself on its own thread and its own ledger handle, so that a
// checkout never waits for the network.
//
// Threads: the loop (POS requests, scans, printing: the main ledger handle),
// the reader (blocks in read_scan), the link watcher (blocks in
// wait_change), the syncer (the scheduler and the sync handle). They talk
// through queues; only the loop touches the POS clients and the printer.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "base/status.hpp"
#include "firmware/config.hpp"
#include "firmware/devices.hpp"
#include "loyalty/hal.h"

namespace loy::fw {

class Till {
public:
	// `hal` and the simulators behind `sim` must outlive the till. The
	// data dir must hold an initialised terminal whose keys are in hal->keys.
	Till(std::string data_dir, TerminalConfig config, const loy_hal *hal, SimControls sim);
	~Till();
	Till(const Till &) = delete;
	Till &operator=(const Till &) = delete;

	// Opens both ledger handles and the POS socket; starts nothing yet.
	Status open();
	// Runs until `stop` is set (a signal handler, a test); checked at least
	// every 200 ms. Returns when every thread has stopped.
	void run(const std::atomic<bool> &stop);

	// One POS request line answered as the loop answers it, on the calling
	// thread and without the socket, for the fuzz target: an exception from
	// inside is not turned into an answer here (the loop does that), so
	// that a fuzzer sees it. Not while run() is running.
	std::string answer(const std::string &line);

private:
	struct Impl;
	std::unique_ptr<Impl> impl_;
};

} // namespace loy::fw
