// POS channel requests (firmware/POS.md) answered by a real till: a
// terminal in a temporary dir with the example program, on simulated
// devices (clock, link, key store, printer). Every line gets one answer,
// a JSON object with "ok"; no exception escapes; the ledger stays whole.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz_tmpdir.hpp"

#include "firmware/till.hpp"
#include "hal/sim/sim.hpp"
#include "storage/terminal.hpp"

#ifndef LOYALTY_EXAMPLES
#error "LOYALTY_EXAMPLES: the examples dir"
#endif

namespace {

namespace sim = loy::hal::sim;

struct Rig {
	sim::SimClock clock{1'795'417'200'000}; // 2026-11-23T08:00:00+01:00
	sim::SimCardReader reader;
	sim::SimLink link{nullptr, true};
	sim::SimKeyStore keys;
	sim::SimPrinter printer;
	loy_hal hal{LOY_HAL_VERSION, clock.table(), reader.table(), link.table(), keys.table(), printer.table()};
	std::unique_ptr<loy::fw::Till> till;

	Rig()
	{
		const std::string dir = fuzz_tmpdir("pos"), data = dir + "/T1";
		loy::TerminalSetup s;
		s.terminal_id = "T1";
		s.store = "S1";
		s.tz = "Europe/Budapest";
		const int64_t now = clock.wall_ms() / 1000;
		if (!loy::Terminal::init(data, s, now, keys.table()).is_ok())
			std::abort();
		std::ifstream in(LOYALTY_EXAMPLES "/programs/cafe-rewards.json");
		std::stringstream program;
		program << in.rdbuf();
		auto t = loy::Terminal::open(data, keys.table());
		if (!t || !t.value()->program_load(program.str(), now))
			std::abort();
		loy::fw::TerminalConfig cfg;
		cfg.pos.socket = dir + "/pos.sock";
		loy::fw::SimControls controls{&clock, &reader, &link, 1};
		till = std::make_unique<loy::fw::Till>(data, cfg, &hal, controls);
		if (!till->open().is_ok())
			std::abort();
	}
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static Rig rig;
	const std::string line(reinterpret_cast<const char *>(data), size);
	if (line.find('\n') != std::string::npos)
		return 0; // the channel splits lines before the till sees them
	auto answer = nlohmann::json::parse(rig.till->answer(line), nullptr, false);
	if (!answer.is_object() || !answer.contains("ok") || !answer["ok"].is_boolean())
		__builtin_trap();
	return 0;
}
