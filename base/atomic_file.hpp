// The one durable atomic replace of a whole file (key files, the test PKI,
// the key store's items): a crash leaves the old content or the new one,
// never part of one, and once it returns ok the new one survives a power cut.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.hpp"

namespace loy::base {

// The system calls of a write, with the signatures of hal/linux/sys.hpp's
// Sys table, so that the key store passes its table on and a test makes one
// of them fail (SQLite's os_unix.c aSyscall). Every slot must be set.
struct FileCalls {
	int (*open)(const char *path, int flags, mode_t mode);
	int (*close)(int fd);
	ssize_t (*write)(int fd, const void *buf, size_t n);
	int (*fchmod)(int fd, mode_t mode);
	int (*fsync)(int fd);
	int (*rename)(const char *from, const char *to);
	int (*unlink)(const char *path);
};

// The real calls.
const FileCalls &real_file_calls();

// The temporary file a write of `path` goes through: in the same directory
// (a rename does not cross file systems), hidden (".name.<pid>.tmp"), and
// per process, so that two processes writing one file never share it.
std::string temporary_of(const std::string &path);

// Replaces `path` by `data` with mode `mode` (whatever the umask and the old
// file's mode): writes a temporary file (temporary_of), fchmod, fsync,
// rename over `path`, fsync of the directory. On a failure before the rename
// the old file is untouched and the temporary removed; a failed directory
// fsync comes after the rename, so the file is new but its durability is
// unknown, and the error says so. Errors are Code::storage and name the path
// and the step ("/d/ca.pem: fsync: Input/output error").
Status write_file_atomic(const std::string &path, std::string_view data, mode_t mode,
			 const FileCalls &calls = real_file_calls());

} // namespace loy::base
