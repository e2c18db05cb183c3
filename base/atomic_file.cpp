// write_file_atomic: temporary file, fchmod, fsync, rename, directory fsync,
// every call through a FileCalls table.
#include "base/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace loy::base {

namespace {

// Thin forwarders: open(2) is variadic and cannot be stored as it is.
int os_open(const char *path, int flags, mode_t mode) { return ::open(path, flags, mode); }
int os_close(int fd) { return ::close(fd); }
ssize_t os_write(int fd, const void *buf, size_t n) { return ::write(fd, buf, n); }
int os_fchmod(int fd, mode_t mode) { return ::fchmod(fd, mode); }
int os_fsync(int fd) { return ::fsync(fd); }
int os_rename(const char *from, const char *to) { return ::rename(from, to); }
int os_unlink(const char *path) { return ::unlink(path); }

// Member by member, so that a slot added to FileCalls cannot be filled with
// the function of its neighbour.
FileCalls make_real()
{
	FileCalls c{};
	c.open = os_open;
	c.close = os_close;
	c.write = os_write;
	c.fchmod = os_fchmod;
	c.fsync = os_fsync;
	c.rename = os_rename;
	c.unlink = os_unlink;
	return c;
}

// The directory part of `path` with its slash ("/d/" of "/d/k.key"), empty
// for a bare name.
std::string dir_prefix_of(const std::string &path)
{
	size_t slash = path.rfind('/');
	return slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
}

// The directory to sync after the rename.
std::string dir_of(const std::string &path)
{
	std::string prefix = dir_prefix_of(path);
	if (prefix.empty())
		return ".";
	if (prefix.size() > 1)
		prefix.pop_back();
	return prefix;
}

Status failed(const std::string &path, const char *step, int err)
{
	return Status(Code::storage, fmt::format("{}: {}: {}", path, step, std::strerror(err)));
}

// Writes all of `data`, retrying short writes and EINTR; errno on failure.
bool write_all(const FileCalls &calls, int fd, std::string_view data)
{
	const char *p = data.data();
	size_t n = data.size();
	while (n > 0) {
		ssize_t w = calls.write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO; // no progress on a regular file: never loop on it
			return false;
		}
		p += w;
		n -= static_cast<size_t>(w);
	}
	return true;
}

} // namespace

const FileCalls &real_file_calls()
{
	static const FileCalls real = make_real();
	return real;
}

std::string temporary_of(const std::string &path)
{
	const std::string prefix = dir_prefix_of(path);
	return prefix + "." + path.substr(prefix.size()) + "." + std::to_string(::getpid()) + ".tmp";
}

Status write_file_atomic(const std::string &path, std::string_view data, mode_t mode,
			 const FileCalls &calls)
{
	assert(calls.open && calls.close && calls.write && calls.fchmod && calls.fsync &&
	       calls.rename && calls.unlink);
	const std::string tmp = temporary_of(path);
	calls.unlink(tmp.c_str()); // a leftover of a crash of a process of the same pid
	int fd = calls.open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return Status(Code::storage, fmt::format("{}: cannot create the temporary file {}: {}", path,
							 tmp, std::strerror(errno)));
	// fchmod too: the mode of open(2) passes through the umask.
	const char *step = nullptr;
	if (!write_all(calls, fd, data))
		step = "write";
	else if (calls.fchmod(fd, mode) != 0)
		step = "fchmod";
	else if (calls.fsync(fd) != 0)
		step = "fsync";
	int err = errno;
	if (calls.close(fd) != 0 && !step) {
		step = "close";
		err = errno;
	}
	if (!step && calls.rename(tmp.c_str(), path.c_str()) != 0) {
		step = "rename";
		err = errno;
	}
	if (step) {
		calls.unlink(tmp.c_str());
		return failed(path, step, err);
	}

	// The rename is durable once the directory holding it is synced.
	const std::string dir = dir_of(path);
	int dfd = calls.open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (dfd < 0)
		return Status(Code::storage, fmt::format("{}: replaced, but its directory {} cannot be opened "
							 "to sync it: {}",
							 path, dir, std::strerror(errno)));
	bool synced = calls.fsync(dfd) == 0;
	err = errno;
	if (calls.close(dfd) != 0 && synced) {
		synced = false;
		err = errno;
	}
	if (!synced)
		return Status(Code::storage, fmt::format("{}: replaced, but the fsync of its directory {} "
							 "failed: {}",
							 path, dir, std::strerror(err)));
	return Status::ok();
}

} // namespace loy::base
