// The terminal's configuration file (DATA_DIR/terminal.conf or --config FILE):
// which devices the cashier loop opens, where the POS socket is, when it
// syncs. INI-like text; firmware/terminal.conf is the documented example and
// is exactly format_config(TerminalConfig{}), so the two cannot drift apart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.hpp"
#include "loyalty/schedule.h"
#include "base/timeutil.hpp"

namespace loy::fw {

// A configuration file is a page of text; anything larger is not one.
inline constexpr size_t config_bytes_max = 64 * 1024;
// sun_path holds 108 bytes with its NUL.
inline constexpr size_t socket_path_bytes_max = 107;
// PATH_MAX less its NUL: longer paths cannot be opened anyway.
inline constexpr size_t path_bytes_max = 4095;
// IFNAMSIZ less its NUL.
inline constexpr size_t interface_bytes_max = 15;
// No wait of the terminal is meant to be longer than a week; past that a
// value is a typo (a missing unit or a digit too many).
inline constexpr int64_t duration_ms_max = int64_t{7} * 24 * 3600 * 1000;

enum class ReaderType { none, evdev, serial, sim };
// "stdout" is a macro of <cstdio>, hence the longer name.
enum class PrinterType { standard_output, file, none, sim };
enum class LinkType { kernel, up, sim };
enum class ClockType { system, sim };

// The words the file uses for them: "none", "evdev", "stdout", ...
const char *type_name(ReaderType t) noexcept;
const char *type_name(PrinterType t) noexcept;
const char *type_name(LinkType t) noexcept;
const char *type_name(ClockType t) noexcept;

struct ReaderConfig {
	ReaderType type = ReaderType::none; // none: scans come from the POS channel only
	std::string device;                 // evdev and serial: an absolute path
	bool grab = true;                   // evdev: EVIOCGRAB
	int baud = 0;                       // serial: a standard rate; 0 keeps the line's
};

struct PrinterConfig {
	PrinterType type = PrinterType::standard_output;
	std::string path; // file: an absolute path to a file or a tty
	bool fsync = false; // file: LOY_HAL_PRINTER_FSYNC
};

struct LinkConfig {
	LinkType type = LinkType::kernel;
	std::string interface; // kernel: empty = any interface but loopback
};

struct ClockConfig {
	ClockType type = ClockType::system;
	std::optional<Timestamp> start; // sim: unset = the system time at start
	int speed = 1;                  // sim: simulated seconds per real second
};

struct PosConfig {
	// Relative to the data dir until load_config() resolves it.
	std::string socket = "pos.sock";
	unsigned mode = 0660;
};

struct SyncConfig {
	// When: the library's schedule (include/loyalty/schedule.h), with its
	// defaults. Its nightly_minute is the chain's; the till adds its own
	// minute of the spread.
	loy_schedule_config schedule = schedule_defaults();
	// Each terminal syncs at its own fixed moment within this window after
	// the nightly minute (from its id), so a chain does not arrive at once.
	int64_t nightly_spread_ms = 30 * 60'000; // 0 = off
	int64_t connect_timeout_ms = 5'000;
	int64_t io_timeout_ms = 60'000;

	static loy_schedule_config schedule_defaults()
	{
		loy_schedule_config c;
		loy_schedule_defaults(&c);
		return c;
	}
};

struct DisplayConfig {
	int width = 40; // columns of a receipt line
};

struct TerminalConfig {
	ReaderConfig reader;
	PrinterConfig printer;
	LinkConfig link;
	ClockConfig clock;
	PosConfig pos;
	SyncConfig sync;
	DisplayConfig display;
};

bool operator==(const ReaderConfig &a, const ReaderConfig &b) noexcept;
bool operator==(const PrinterConfig &a, const PrinterConfig &b) noexcept;
bool operator==(const LinkConfig &a, const LinkConfig &b) noexcept;
bool operator==(const ClockConfig &a, const ClockConfig &b) noexcept;
bool operator==(const PosConfig &a, const PosConfig &b) noexcept;
bool operator==(const SyncConfig &a, const SyncConfig &b) noexcept;
bool operator==(const DisplayConfig &a, const DisplayConfig &b) noexcept;
bool operator==(const TerminalConfig &a, const TerminalConfig &b) noexcept;
inline bool operator!=(const ReaderConfig &a, const ReaderConfig &b) noexcept { return !(a == b); }
inline bool operator!=(const PrinterConfig &a, const PrinterConfig &b) noexcept { return !(a == b); }
inline bool operator!=(const LinkConfig &a, const LinkConfig &b) noexcept { return !(a == b); }
inline bool operator!=(const ClockConfig &a, const ClockConfig &b) noexcept { return !(a == b); }
inline bool operator!=(const PosConfig &a, const PosConfig &b) noexcept { return !(a == b); }
inline bool operator!=(const SyncConfig &a, const SyncConfig &b) noexcept { return !(a == b); }
inline bool operator!=(const DisplayConfig &a, const DisplayConfig &b) noexcept { return !(a == b); }
inline bool operator!=(const TerminalConfig &a, const TerminalConfig &b) noexcept { return !(a == b); }

// text: the file's contents; name: what messages call it ("terminal.conf").
// All or nothing: the first error, as "NAME line N: [section] key: what is
// wrong", and no configuration.
Result<TerminalConfig> parse_config(std::string_view text, const std::string &name);

// Reads and parses `path`; a missing file gives the defaults when missing_ok,
// else an error naming the path. Also resolves pos.socket against data_dir.
Result<TerminalConfig> load_config(const std::string &path, bool missing_ok,
				   const std::string &data_dir);

// The effective configuration as a config file (every key, defaults
// included), for `loyalty-terminal run --print-config` and the docs. Keys the
// chosen type does not use, and unset ones, are written commented out, so
// that parse_config() gives back `c`.
std::string format_config(const TerminalConfig &c);

} // namespace loy::fw
