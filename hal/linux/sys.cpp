// The real OS calls: thin forwarders with fixed signatures, since open(2) and
// ioctl(2) are variadic and cannot be stored in a table as they are.
#include "hal/linux/sys.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>

namespace loy::hal {

namespace {

int os_open(const char *path, int flags, mode_t mode) { return ::open(path, flags, mode); }
int os_close(int fd) { return ::close(fd); }
ssize_t os_read(int fd, void *buf, size_t n) { return ::read(fd, buf, n); }
ssize_t os_write(int fd, const void *buf, size_t n) { return ::write(fd, buf, n); }
int os_fsync(int fd) { return ::fsync(fd); }
int os_fchmod(int fd, mode_t mode) { return ::fchmod(fd, mode); }
int os_fstat(int fd, struct stat *st) { return ::fstat(fd, st); }
int os_rename(const char *from, const char *to) { return ::rename(from, to); }
int os_unlink(const char *path) { return ::unlink(path); }
int os_mkdir(const char *path, mode_t mode) { return ::mkdir(path, mode); }
int os_poll(struct pollfd *fds, nfds_t n, int timeout_ms) { return ::poll(fds, n, timeout_ms); }
int os_ioctl_int(int fd, unsigned long request, int arg) { return ::ioctl(fd, request, arg); }
int os_ioctl_ptr(int fd, unsigned long request, void *arg) { return ::ioctl(fd, request, arg); }
int os_tcgetattr(int fd, struct termios *t) { return ::tcgetattr(fd, t); }
int os_tcsetattr(int fd, int when, const struct termios *t) { return ::tcsetattr(fd, when, t); }
int os_tcflush(int fd, int queue) { return ::tcflush(fd, queue); }
int os_tcdrain(int fd) { return ::tcdrain(fd); }
int os_socket(int domain, int type, int protocol) { return ::socket(domain, type, protocol); }
int os_bind(int fd, const struct sockaddr *addr, socklen_t len) { return ::bind(fd, addr, len); }
ssize_t os_send(int fd, const void *buf, size_t n, int flags) { return ::send(fd, buf, n, flags); }
ssize_t os_recv(int fd, void *buf, size_t n, int flags) { return ::recv(fd, buf, n, flags); }
int os_clock_gettime(clockid_t id, struct timespec *ts) { return ::clock_gettime(id, ts); }

// Member by member, so that a slot added to Sys cannot be filled with the
// function of its neighbour.
Sys make_real()
{
	Sys s{};
	s.open = os_open;
	s.close = os_close;
	s.read = os_read;
	s.write = os_write;
	s.fsync = os_fsync;
	s.fchmod = os_fchmod;
	s.fstat = os_fstat;
	s.rename = os_rename;
	s.unlink = os_unlink;
	s.mkdir = os_mkdir;
	s.poll = os_poll;
	s.ioctl_int = os_ioctl_int;
	s.ioctl_ptr = os_ioctl_ptr;
	s.tcgetattr = os_tcgetattr;
	s.tcsetattr = os_tcsetattr;
	s.tcflush = os_tcflush;
	s.tcdrain = os_tcdrain;
	s.socket = os_socket;
	s.bind = os_bind;
	s.send = os_send;
	s.recv = os_recv;
	s.clock_gettime = os_clock_gettime;
	return s;
}

} // namespace

const Sys &real_sys()
{
	static const Sys real = make_real();
	return real;
}

int64_t monotonic_now_ms(const Sys &sys)
{
	struct timespec ts {};
	if (sys.clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return static_cast<int64_t>(ts.tv_sec) * 1000 + static_cast<int64_t>(ts.tv_nsec) / 1000000;
}

int64_t deadline_after(const Sys &sys, int timeout_ms)
{
	return timeout_ms < 0 ? -1 : monotonic_now_ms(sys) + timeout_ms;
}

int poll_timeout_ms(const Sys &sys, int64_t deadline_ms)
{
	if (deadline_ms < 0)
		return -1;
	int64_t left = deadline_ms - monotonic_now_ms(sys);
	if (left <= 0)
		return 0;
	// deadline_after() adds an int to now, so what is left fits in an int.
	return left > INT32_MAX ? INT32_MAX : static_cast<int>(left);
}

} // namespace loy::hal
