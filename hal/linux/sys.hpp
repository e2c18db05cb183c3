// The OS calls of the Linux devices, behind a table (SQLite's os_unix.c
// aSyscall): every device keeps a copy of the table it was opened with and
// makes its kernel calls through it, so a test opens a device with a table in
// which one call fails (a rename, a poll) and watches the device cope. No
// global state: each device has its own copy.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <termios.h>
#include <time.h>

#include <cstddef>

#include "loyalty/hal.h"

namespace loy::hal {

struct Sys {
	int (*open)(const char *path, int flags, mode_t mode);
	int (*close)(int fd);
	ssize_t (*read)(int fd, void *buf, size_t n);
	ssize_t (*write)(int fd, const void *buf, size_t n);
	int (*fsync)(int fd);
	int (*fchmod)(int fd, mode_t mode);
	int (*fstat)(int fd, struct stat *st);
	int (*rename)(const char *from, const char *to);
	int (*unlink)(const char *path);
	int (*mkdir)(const char *path, mode_t mode);
	int (*poll)(struct pollfd *fds, nfds_t n, int timeout_ms);
	int (*ioctl_int)(int fd, unsigned long request, int arg);
	int (*ioctl_ptr)(int fd, unsigned long request, void *arg);
	int (*tcgetattr)(int fd, struct termios *t);
	int (*tcsetattr)(int fd, int when, const struct termios *t);
	int (*tcflush)(int fd, int queue);
	int (*tcdrain)(int fd);
	int (*socket)(int domain, int type, int protocol);
	int (*bind)(int fd, const struct sockaddr *addr, socklen_t len);
	ssize_t (*send)(int fd, const void *buf, size_t n, int flags);
	ssize_t (*recv)(int fd, void *buf, size_t n, int flags);
	int (*clock_gettime)(clockid_t id, struct timespec *ts);
};

// The real calls.
const Sys &real_sys();

// Milliseconds left until `deadline_ms` on CLOCK_MONOTONIC, for poll(2):
// -1 (no limit) when deadline_ms is negative.
int64_t monotonic_now_ms(const Sys &sys);
int poll_timeout_ms(const Sys &sys, int64_t deadline_ms);
// The deadline for a time-out as read_scan() and wait_change() take it.
int64_t deadline_after(const Sys &sys, int timeout_ms);

// The open functions of include/loyalty/hal.h with the OS table to use; the
// public ones pass real_sys(). The table is copied.
int clock_open(loy_hal_clock *out, const Sys &sys);
int evdev_open(loy_hal_card_reader *out, const char *path, int grab, const Sys &sys);
int serial_open(loy_hal_card_reader *out, const char *path, int baud, const Sys &sys);
int link_open(loy_hal_link *out, const char *ifname, const Sys &sys);
int keystore_open(loy_hal_keystore *out, const char *dir, const Sys &sys);
int printer_open(loy_hal_printer *out, const char *path, unsigned flags, const Sys &sys);

} // namespace loy::hal
