#include "firmware/devices.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

namespace loy::fw {

namespace {

Status device_error(const char *device, const std::string &detail, int rc)
{
	return Status(Code::bad_argument, fmt::format("{}: cannot open {}: {}", device, detail, loy_hal_strerror(rc)));
}

// The printer on standard output: the receipt a cashier sees in a terminal
// window, and what a supervisor (systemd) logs.
int stdout_print_line(void *, const char *line)
{
	if (!line || std::strchr(line, '\n') || std::strchr(line, '\r') || std::strlen(line) >= LOY_HAL_LINE_MAX)
		return LOY_HAL_E_ARGUMENT;
	return std::printf("| %s\n", line) < 0 ? LOY_HAL_E_IO : 0;
}

int stdout_flush(void *)
{
	if (std::printf("+\n") < 0 || std::fflush(stdout) != 0)
		return LOY_HAL_E_IO;
	return 0;
}

// A link that is always up: for a terminal that cannot see its link; syncs
// then come from the schedule and the retries alone.
int always_up(void *) { return 1; }
int never_changes(void *, int timeout_ms)
{
	if (timeout_ms > 0)
		std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
	return 0;
}

} // namespace

Result<std::unique_ptr<Devices>> Devices::open(const TerminalConfig &c, const std::string &data_dir,
					       int64_t clock_offset_s)
{
	std::unique_ptr<Devices> d(new Devices());

	if (c.clock.type == ClockType::sim) {
		int64_t start = c.clock.start ? c.clock.start->utc_s * 1000
					      : (static_cast<int64_t>(std::time(nullptr)) + clock_offset_s) * 1000;
		d->sim_clock_ = std::make_unique<hal::sim::SimClock>(start);
		d->sim_.clock = d->sim_clock_.get();
		d->sim_.speed = c.clock.speed;
		d->clock_ = *d->sim_clock_->table();
	} else if (clock_offset_s == 0) {
		loy_hal_linux_clock_open(&d->clock_);
		d->linux_clock_ = true;
	} else {
		loy_hal_linux_clock_open(&d->inner_clock_);
		d->linux_clock_ = true;
		d->clock_offset_ms_ = clock_offset_s * 1000;
		d->clock_.version = LOY_HAL_CLOCK_VERSION;
		d->clock_.ctx = d.get();
		d->clock_.wall_ms = [](void *ctx) {
			auto *self = static_cast<Devices *>(ctx);
			int64_t ms = self->inner_clock_.wall_ms(self->inner_clock_.ctx);
			return ms == LOY_HAL_TIME_INVALID ? ms : ms + self->clock_offset_ms_;
		};
		d->clock_.monotonic_ms = [](void *ctx) {
			auto *self = static_cast<Devices *>(ctx);
			return self->inner_clock_.monotonic_ms(self->inner_clock_.ctx);
		};
	}

	d->reader_type_ = c.reader.type;
	switch (c.reader.type) {
	case ReaderType::none:
		break;
	case ReaderType::evdev:
		if (int rc = loy_hal_linux_evdev_open(&d->reader_, c.reader.device.c_str(), c.reader.grab); rc < 0)
			return device_error("reader", c.reader.device, rc);
		break;
	case ReaderType::serial:
		if (int rc = loy_hal_linux_serial_open(&d->reader_, c.reader.device.c_str(), c.reader.baud); rc < 0)
			return device_error("reader", c.reader.device, rc);
		break;
	case ReaderType::sim:
		// In real time: scans arrive when pushed ("sim.scan").
		d->sim_reader_ = std::make_unique<hal::sim::SimCardReader>();
		d->sim_.reader = d->sim_reader_.get();
		d->reader_ = *d->sim_reader_->table();
		break;
	}

	switch (c.link.type) {
	case LinkType::kernel:
		if (int rc = loy_hal_linux_link_open(&d->link_, c.link.interface.empty() ? nullptr
											: c.link.interface.c_str());
		    rc < 0)
			return device_error("link", c.link.interface.empty() ? "the kernel's links" : c.link.interface, rc);
		d->linux_link_ = true;
		break;
	case LinkType::up:
		d->link_ = loy_hal_link{LOY_HAL_LINK_VERSION, nullptr, always_up, never_changes};
		break;
	case LinkType::sim:
		d->sim_link_ = std::make_unique<hal::sim::SimLink>(nullptr, true);
		d->sim_.link = d->sim_link_.get();
		d->link_ = *d->sim_link_->table();
		break;
	}

	if (int rc = loy_hal_linux_keystore_open(&d->keys_, data_dir.c_str()); rc < 0)
		return device_error("key store", data_dir, rc);

	switch (c.printer.type) {
	case PrinterType::standard_output:
		d->printer_ = loy_hal_printer{LOY_HAL_PRINTER_VERSION, nullptr, stdout_print_line, stdout_flush};
		break;
	case PrinterType::file:
		if (int rc = loy_hal_linux_printer_open(&d->printer_, c.printer.path.c_str(),
							c.printer.fsync ? LOY_HAL_PRINTER_FSYNC : 0u);
		    rc < 0)
			return device_error("printer", c.printer.path, rc);
		d->linux_printer_ = true;
		break;
	case PrinterType::none:
		break;
	case PrinterType::sim:
		d->sim_printer_ = std::make_unique<hal::sim::SimPrinter>();
		d->printer_ = *d->sim_printer_->table();
		break;
	}

	d->hal_.version = LOY_HAL_VERSION;
	d->hal_.clock = &d->clock_;
	d->hal_.reader = c.reader.type == ReaderType::none ? nullptr : &d->reader_;
	d->hal_.link = &d->link_;
	d->hal_.keys = &d->keys_;
	d->hal_.printer = c.printer.type == PrinterType::none ? nullptr : &d->printer_;

	if (d->sim_clock_) {
		Devices *self = d.get();
		d->ticker_ = std::thread([self] {
			using namespace std::chrono;
			auto last = steady_clock::now();
			while (!self->stop_.load()) {
				std::this_thread::sleep_for(milliseconds(20));
				auto now = steady_clock::now();
				int64_t ms = duration_cast<milliseconds>(now - last).count();
				last += milliseconds(ms);
				self->sim_clock_->advance_ms(ms * self->sim_.speed);
			}
		});
	}
	return d;
}

Devices::~Devices()
{
	stop_ = true;
	if (ticker_.joinable())
		ticker_.join();
	if (linux_clock_)
		loy_hal_linux_clock_close(clock_offset_ms_ != 0 ? &inner_clock_ : &clock_);
	if (reader_type_ == ReaderType::evdev)
		loy_hal_linux_evdev_close(&reader_);
	else if (reader_type_ == ReaderType::serial)
		loy_hal_linux_serial_close(&reader_);
	if (linux_link_)
		loy_hal_linux_link_close(&link_);
	loy_hal_linux_keystore_close(&keys_);
	if (linux_printer_)
		loy_hal_linux_printer_close(&printer_);
}

} // namespace loy::fw
