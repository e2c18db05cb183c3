// What the Linux devices make of the bytes they read, apart from the reading,
// so that tests feed them synthetic input without /dev/input, a serial line or
// a netlink socket: key events to scans, serial bytes to scans, rtnetlink
// messages to link state.
#pragma once

#include <linux/input.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "loyalty/hal.h"

namespace loy::hal {

// What feeding one more input gives.
enum class Decoded { none, scan, bad_scan };

// Key events of a keyboard-wedge scanner to scans: characters on key presses
// (Shift held or not), Enter or keypad Enter ends a scan. A scan longer than
// LOY_HAL_SCAN_MAX - 1, or with a key that types nothing a scan holds, or
// across events the kernel dropped (SYN_DROPPED), is bad. Enter on nothing
// is ignored; a partial scan is kept across reads.
class EvdevDecoder {
public:
	Decoded feed(const struct input_event &ev);
	// The scan after Decoded::scan, until the next feed.
	const std::string &scan() const { return done_; }
	// The character a key types, 0 for none.
	static char char_of(unsigned code, bool shift);

private:
	void end_scan();

	std::string text_;
	std::string done_;
	bool left_shift_ = false, right_shift_ = false;
	bool bad_ = false;
	bool dropping_ = false; // after SYN_DROPPED, until the next SYN_REPORT
};

// Serial bytes to scans: a line of printable ASCII ended by CR, LF or both;
// empty lines are skipped. A line longer than LOY_HAL_SCAN_MAX - 1 or with
// another byte is bad.
class LineDecoder {
public:
	Decoded feed(char c);
	const std::string &scan() const { return done_; }

private:
	std::string text_;
	std::string done_;
	bool bad_ = false;
};

// The kernel's interfaces as rtnetlink messages describe them.
struct LinkInfo {
	std::string name;
	bool up = false;       // administratively up, operationally up
	bool loopback = false;
	bool seen = true;      // in the dump being read (stale ones go at its end)
};

class LinkTable {
public:
	// Interfaces tracked at most; containers may hold thousands of veths,
	// and past this many the rest are ignored.
	static constexpr size_t links_max = 1024;

	// Applies the netlink messages in buf: RTM_NEWLINK adds or updates an
	// interface, RTM_DELLINK removes one, NLMSG_DONE ends a dump (interfaces
	// it did not list are removed). \return 0, or LOY_HAL_E_IO for a
	// malformed message or an NLMSG_ERROR, after applying those before it.
	int apply(const void *buf, size_t len);
	// A dump starts: every interface is stale until listed again.
	void begin_dump();
	bool dump_done() const { return dump_done_; }

	// Whether `ifname` is up; an empty name: any interface but loopback.
	bool up(const std::string &ifname) const;
	void set(int index, LinkInfo info);
	void clear() { links_.clear(); }
	size_t size() const { return links_.size(); }
	const LinkInfo *find(const std::string &name) const;

	// The rule for "up" from an interface's flags (IFF_*) and its
	// operational state (IF_OPER_*; -1 when the message had none).
	static bool is_up(unsigned flags, int operstate);

private:
	int apply_link(uint16_t type, const unsigned char *msg, size_t len);

	std::map<int, LinkInfo> links_;
	bool dump_done_ = false;
};

} // namespace loy::hal
