// A printer on a file or a tty. Each line goes out in one write(2) with its
// newline, so that a receipt journal shared with another process never holds
// half a line (O_APPEND writes of a regular file are atomic with respect to
// one another), and a serial printer sees whole lines.
#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "hal/linux/sys.hpp"

namespace loy::hal {

namespace {

struct FilePrinter {
	Sys sys;
	int fd = -1;
	unsigned flags = 0;
	bool tty = false;
	bool regular = false;
};

int print_line(void *ctx, const char *line)
{
	auto *p = static_cast<FilePrinter *>(ctx);
	if (!line)
		return LOY_HAL_E_ARGUMENT;
	size_t len = strnlen(line, LOY_HAL_LINE_MAX);
	if (len >= LOY_HAL_LINE_MAX || std::memchr(line, '\n', len) || std::memchr(line, '\r', len))
		return LOY_HAL_E_ARGUMENT;
	char out[LOY_HAL_LINE_MAX + 1];
	std::memcpy(out, line, len);
	out[len++] = '\n';
	size_t done = 0;
	while (done < len) {
		ssize_t n = p->sys.write(p->fd, out + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return LOY_HAL_E_IO;
		}
		done += static_cast<size_t>(n);
	}
	return 0;
}

int flush(void *ctx)
{
	auto *p = static_cast<FilePrinter *>(ctx);
	if (p->tty)
		return p->sys.tcdrain(p->fd) == 0 ? 0 : LOY_HAL_E_IO;
	if (p->regular && (p->flags & LOY_HAL_PRINTER_FSYNC))
		return p->sys.fsync(p->fd) == 0 ? 0 : LOY_HAL_E_IO;
	return 0;
}

} // namespace

int printer_open(loy_hal_printer *out, const char *path, unsigned flags, const Sys &sys)
{
	if (!out || !path || !*path || (flags & ~LOY_HAL_PRINTER_FSYNC) != 0)
		return LOY_HAL_E_ARGUMENT;
	*out = {};
	auto *p = new (std::nothrow) FilePrinter;
	if (!p)
		return LOY_HAL_E_IO;
	p->sys = sys;
	p->flags = flags;
	// O_NOCTTY: a printer's tty must never become the controlling terminal.
	p->fd = sys.open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOCTTY | O_CLOEXEC, 0640);
	struct stat st;
	if (p->fd < 0 || sys.fstat(p->fd, &st) != 0) {
		if (p->fd >= 0)
			sys.close(p->fd);
		delete p;
		return LOY_HAL_E_IO;
	}
	struct termios t;
	p->tty = S_ISCHR(st.st_mode) && sys.tcgetattr(p->fd, &t) == 0;
	p->regular = S_ISREG(st.st_mode);
	out->version = LOY_HAL_PRINTER_VERSION;
	out->print_line = print_line;
	out->flush = flush;
	out->ctx = p;
	return 0;
}

} // namespace loy::hal

extern "C" int loy_hal_linux_printer_open(loy_hal_printer *out, const char *path, unsigned flags)
{
	return loy::hal::printer_open(out, path, flags, loy::hal::real_sys());
}

extern "C" void loy_hal_linux_printer_close(loy_hal_printer *printer)
{
	if (!printer || !printer->ctx)
		return;
	auto *p = static_cast<loy::hal::FilePrinter *>(printer->ctx);
	p->sys.close(p->fd);
	delete p;
	*printer = {};
}
