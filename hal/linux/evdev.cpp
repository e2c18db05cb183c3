// A keyboard-wedge scanner through evdev: the decoder of key events to scans,
// and the device that reads struct input_event from /dev/input/eventN.
// Reading evdev rather than a terminal means the scanner works with no
// console and no focus, and (grabbed) its keystrokes reach nothing else.
#include <fcntl.h>
#include <linux/input.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <new>

#include "hal/linux/decode.hpp"
#include "hal/linux/sys.hpp"

namespace loy::hal {

// US layout, which is what scanners emulate unless configured otherwise.
char EvdevDecoder::char_of(unsigned code, bool shift)
{
	static const char digits[] = "1234567890"; // KEY_1 .. KEY_0 are consecutive
	if (code >= KEY_1 && code <= KEY_0)
		return shift ? 0 : digits[code - KEY_1];
	switch (code) {
	case KEY_KP0: return '0';
	case KEY_KP1: return '1';
	case KEY_KP2: return '2';
	case KEY_KP3: return '3';
	case KEY_KP4: return '4';
	case KEY_KP5: return '5';
	case KEY_KP6: return '6';
	case KEY_KP7: return '7';
	case KEY_KP8: return '8';
	case KEY_KP9: return '9';
	case KEY_KPMINUS: return '-';
	case KEY_MINUS: return shift ? 0 : '-';
	case KEY_EQUAL: return shift ? 0 : '=';
	case KEY_SEMICOLON: return shift ? ':' : ';';
	case KEY_SLASH: return shift ? '?' : '/';
	case KEY_DOT: return shift ? 0 : '.';
	case KEY_SPACE: return ' ';
	default: break;
	}
	// Letter keys follow the keyboard's rows, not the alphabet.
	static const struct {
		unsigned short code;
		char letter;
	} letters[] = {
		{KEY_A, 'a'}, {KEY_B, 'b'}, {KEY_C, 'c'}, {KEY_D, 'd'}, {KEY_E, 'e'}, {KEY_F, 'f'},
		{KEY_G, 'g'}, {KEY_H, 'h'}, {KEY_I, 'i'}, {KEY_J, 'j'}, {KEY_K, 'k'}, {KEY_L, 'l'},
		{KEY_M, 'm'}, {KEY_N, 'n'}, {KEY_O, 'o'}, {KEY_P, 'p'}, {KEY_Q, 'q'}, {KEY_R, 'r'},
		{KEY_S, 's'}, {KEY_T, 't'}, {KEY_U, 'u'}, {KEY_V, 'v'}, {KEY_W, 'w'}, {KEY_X, 'x'},
		{KEY_Y, 'y'}, {KEY_Z, 'z'},
	};
	for (const auto &l : letters)
		if (l.code == code)
			return shift ? static_cast<char>(l.letter - 'a' + 'A') : l.letter;
	return 0;
}

void EvdevDecoder::end_scan()
{
	text_.clear();
	bad_ = false;
}

Decoded EvdevDecoder::feed(const struct input_event &ev)
{
	if (ev.type == EV_SYN) {
		if (ev.code == SYN_DROPPED) {
			// Keys of this scan were lost, and which Shift is down is
			// unknown until the keys are seen again.
			dropping_ = true;
			bad_ = bad_ || !text_.empty();
			left_shift_ = right_shift_ = false;
		} else if (ev.code == SYN_REPORT && dropping_) {
			dropping_ = false;
			// The lost events may have held the start of a scan.
			bad_ = true;
		}
		return Decoded::none;
	}
	if (dropping_ || ev.type != EV_KEY)
		return Decoded::none;
	const bool pressed = ev.value != 0; // 1 press, 2 auto-repeat, 0 release
	switch (ev.code) {
	case KEY_LEFTSHIFT: left_shift_ = pressed; return Decoded::none;
	case KEY_RIGHTSHIFT: right_shift_ = pressed; return Decoded::none;
	// Some scanners wrap keypad digits in Num Lock or Alt; they type
	// nothing themselves.
	case KEY_LEFTCTRL: case KEY_RIGHTCTRL: case KEY_LEFTALT: case KEY_RIGHTALT:
	case KEY_LEFTMETA: case KEY_RIGHTMETA: case KEY_CAPSLOCK: case KEY_NUMLOCK:
		return Decoded::none;
	default: break;
	}
	// A scanner does not hold keys down: a repeat is a person leaning on
	// the keyboard, and typing it twice would change the number.
	if (ev.value != 1)
		return Decoded::none;
	if (ev.code == KEY_ENTER || ev.code == KEY_KPENTER) {
		if (bad_) {
			end_scan();
			return Decoded::bad_scan;
		}
		if (text_.empty())
			return Decoded::none;
		done_.swap(text_);
		end_scan();
		return Decoded::scan;
	}
	char c = char_of(ev.code, left_shift_ || right_shift_);
	if (c == 0 || text_.size() >= LOY_HAL_SCAN_MAX - 1)
		bad_ = true;
	else if (!bad_)
		text_ += c;
	return Decoded::none;
}

namespace {

// A read takes the events of a few scans at most; more wait in the kernel.
constexpr size_t events_per_read = 64;

struct Evdev {
	Sys sys;
	int fd = -1;
	bool grabbed = false;
	EvdevDecoder decoder;
	struct input_event events[events_per_read];
	size_t count = 0, next = 0; // events read and not yet decoded
};

int deliver(const std::string &scan, char *buf, size_t size)
{
	if (scan.size() >= size)
		return LOY_HAL_E_BAD_SCAN;
	std::memcpy(buf, scan.c_str(), scan.size() + 1);
	return 1;
}

int read_scan(void *ctx, char *buf, size_t size, int timeout_ms)
{
	auto *d = static_cast<Evdev *>(ctx);
	if (!buf || size == 0)
		return LOY_HAL_E_ARGUMENT;
	const int64_t deadline = deadline_after(d->sys, timeout_ms);
	for (;;) {
		// Events after an Enter belong to the next scan: they stay.
		while (d->next < d->count) {
			Decoded r = d->decoder.feed(d->events[d->next++]);
			if (r == Decoded::scan)
				return deliver(d->decoder.scan(), buf, size);
			if (r == Decoded::bad_scan)
				return LOY_HAL_E_BAD_SCAN;
		}
		struct pollfd p = {d->fd, POLLIN, 0};
		int n = d->sys.poll(&p, 1, poll_timeout_ms(d->sys, deadline));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return LOY_HAL_E_IO;
		}
		if (n == 0)
			return 0;
		if ((p.revents & (POLLERR | POLLHUP | POLLNVAL)) && !(p.revents & POLLIN))
			return LOY_HAL_E_GONE;
		ssize_t got = d->sys.read(d->fd, d->events, sizeof d->events);
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return errno == ENODEV ? LOY_HAL_E_GONE : LOY_HAL_E_IO;
		}
		// The kernel hands out whole events only; anything else is not an
		// evdev device.
		if (got == 0 || static_cast<size_t>(got) % sizeof(struct input_event) != 0)
			return LOY_HAL_E_IO;
		d->count = static_cast<size_t>(got) / sizeof(struct input_event);
		d->next = 0;
	}
}

} // namespace

int evdev_open(loy_hal_card_reader *out, const char *path, int grab, const Sys &sys)
{
	if (!out || !path || !*path)
		return LOY_HAL_E_ARGUMENT;
	*out = {};
	auto *d = new (std::nothrow) Evdev;
	if (!d)
		return LOY_HAL_E_IO;
	d->sys = sys;
	d->fd = sys.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
	if (d->fd < 0) {
		delete d;
		return LOY_HAL_E_IO;
	}
	// EVIOCGVERSION answers only on an evdev node: a wrong path fails here,
	// not at the first scan.
	int version = 0;
	if (sys.ioctl_ptr(d->fd, EVIOCGVERSION, &version) != 0 ||
	    (grab && sys.ioctl_int(d->fd, EVIOCGRAB, 1) != 0)) {
		sys.close(d->fd);
		delete d;
		return LOY_HAL_E_IO;
	}
	d->grabbed = grab != 0;
	out->version = LOY_HAL_CARD_READER_VERSION;
	out->read_scan = read_scan;
	out->ctx = d;
	return 0;
}

} // namespace loy::hal

extern "C" int loy_hal_linux_evdev_open(loy_hal_card_reader *out, const char *path, int grab)
{
	return loy::hal::evdev_open(out, path, grab, loy::hal::real_sys());
}

extern "C" void loy_hal_linux_evdev_close(loy_hal_card_reader *reader)
{
	if (!reader || !reader->ctx)
		return;
	auto *d = static_cast<loy::hal::Evdev *>(reader->ctx);
	if (d->grabbed)
		d->sys.ioctl_int(d->fd, EVIOCGRAB, 0);
	d->sys.close(d->fd);
	delete d;
	*reader = {};
}
