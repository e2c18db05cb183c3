// A card reader on a serial line: the decoder of bytes to lines, and the tty
// in raw mode read with poll(2), so that a time-out needs no thread and no
// signal.
#include <fcntl.h>
#include <termios.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "hal/linux/decode.hpp"
#include "hal/linux/sys.hpp"

namespace loy::hal {

Decoded LineDecoder::feed(char c)
{
	if (c == '\r' || c == '\n') {
		// CR LF gives one scan: the LF ends an empty line, which is skipped.
		if (bad_) {
			text_.clear();
			bad_ = false;
			return Decoded::bad_scan;
		}
		if (text_.empty())
			return Decoded::none;
		done_.swap(text_);
		text_.clear();
		return Decoded::scan;
	}
	const bool printable = c >= 0x20 && c <= 0x7e;
	if (!printable || text_.size() >= LOY_HAL_SCAN_MAX - 1)
		bad_ = true;
	else if (!bad_)
		text_ += c;
	return Decoded::none;
}

namespace {

// Bytes taken from the line per read: a few scans.
constexpr size_t bytes_per_read = 256;

struct Serial {
	Sys sys;
	int fd = -1;
	struct termios saved {};
	LineDecoder decoder;
	char bytes[bytes_per_read];
	size_t count = 0, next = 0; // bytes read and not yet decoded
};

bool speed_of(int baud, speed_t *out)
{
	switch (baud) {
	case 1200: *out = B1200; return true;
	case 2400: *out = B2400; return true;
	case 4800: *out = B4800; return true;
	case 9600: *out = B9600; return true;
	case 19200: *out = B19200; return true;
	case 38400: *out = B38400; return true;
	case 57600: *out = B57600; return true;
	case 115200: *out = B115200; return true;
	case 230400: *out = B230400; return true;
	default: return false;
	}
}

int read_scan(void *ctx, char *buf, size_t size, int timeout_ms)
{
	auto *s = static_cast<Serial *>(ctx);
	if (!buf || size == 0)
		return LOY_HAL_E_ARGUMENT;
	const int64_t deadline = deadline_after(s->sys, timeout_ms);
	for (;;) {
		// Bytes after a line end belong to the next scan: they stay.
		while (s->next < s->count) {
			Decoded r = s->decoder.feed(s->bytes[s->next++]);
			if (r == Decoded::bad_scan)
				return LOY_HAL_E_BAD_SCAN;
			if (r == Decoded::scan) {
				const std::string &scan = s->decoder.scan();
				if (scan.size() >= size)
					return LOY_HAL_E_BAD_SCAN;
				std::memcpy(buf, scan.c_str(), scan.size() + 1);
				return 1;
			}
		}
		struct pollfd p = {s->fd, POLLIN, 0};
		int n = s->sys.poll(&p, 1, poll_timeout_ms(s->sys, deadline));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return LOY_HAL_E_IO;
		}
		if (n == 0)
			return 0;
		// A USB adapter unplugged, or the other end of a pty closed.
		if ((p.revents & (POLLHUP | POLLERR | POLLNVAL)) && !(p.revents & POLLIN))
			return LOY_HAL_E_GONE;
		ssize_t got = s->sys.read(s->fd, s->bytes, sizeof s->bytes);
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return errno == EIO || errno == ENODEV || errno == ENXIO ? LOY_HAL_E_GONE
										: LOY_HAL_E_IO;
		}
		if (got == 0)
			return LOY_HAL_E_GONE;
		s->count = static_cast<size_t>(got);
		s->next = 0;
	}
}

} // namespace

int serial_open(loy_hal_card_reader *out, const char *path, int baud, const Sys &sys)
{
	if (!out || !path || !*path)
		return LOY_HAL_E_ARGUMENT;
	*out = {};
	speed_t speed = B0;
	if (baud != 0 && !speed_of(baud, &speed))
		return LOY_HAL_E_ARGUMENT;
	auto *s = new (std::nothrow) Serial;
	if (!s)
		return LOY_HAL_E_IO;
	s->sys = sys;
	// O_NOCTTY: a reader must never become the process's controlling
	// terminal, or a hang-up on it would signal the terminal program.
	s->fd = sys.open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0);
	if (s->fd < 0) {
		delete s;
		return LOY_HAL_E_IO;
	}
	int rc = LOY_HAL_E_IO;
	if (sys.tcgetattr(s->fd, &s->saved) != 0) {
		// Not a tty at all.
		rc = errno == ENOTTY ? LOY_HAL_E_ARGUMENT : LOY_HAL_E_IO;
	} else {
		struct termios t = s->saved;
		cfmakeraw(&t);
		t.c_cflag |= CLOCAL | CREAD;
		t.c_cflag &= ~static_cast<tcflag_t>(CSTOPB | CRTSCTS);
		t.c_iflag &= ~static_cast<tcflag_t>(IXON | IXOFF | IXANY);
		// poll(2) does the waiting; a read takes what is there.
		t.c_cc[VMIN] = 0;
		t.c_cc[VTIME] = 0;
		const bool speed_ok =
			baud == 0 || (cfsetispeed(&t, speed) == 0 && cfsetospeed(&t, speed) == 0);
		// Bytes from before the open would start the first scan half way.
		if (!speed_ok)
			rc = LOY_HAL_E_ARGUMENT;
		else if (sys.tcsetattr(s->fd, TCSANOW, &t) == 0 &&
			 sys.tcflush(s->fd, TCIFLUSH) == 0)
			rc = 0;
	}
	if (rc != 0) {
		sys.close(s->fd);
		delete s;
		return rc;
	}
	out->version = LOY_HAL_CARD_READER_VERSION;
	out->read_scan = read_scan;
	out->ctx = s;
	return 0;
}

} // namespace loy::hal

extern "C" int loy_hal_linux_serial_open(loy_hal_card_reader *out, const char *path, int baud)
{
	return loy::hal::serial_open(out, path, baud, loy::hal::real_sys());
}

extern "C" void loy_hal_linux_serial_close(loy_hal_card_reader *reader)
{
	if (!reader || !reader->ctx)
		return;
	auto *s = static_cast<loy::hal::Serial *>(reader->ctx);
	// The line goes back as it was found: a console or a getty may use it.
	s->sys.tcsetattr(s->fd, TCSANOW, &s->saved);
	s->sys.close(s->fd);
	delete s;
	*reader = {};
}
