// The file key store: one file per item under a directory. A ".key" item is
// kept in the format of base/crypto.hpp's key files (64 hex digits and a
// newline), so a terminal's data dir is a key store as it stands. A put is
// base::write_file_atomic (temporary file, fchmod 0600, fsync, rename, fsync
// of the directory) with the calls of the store's Sys table: a test that
// fails the rename is how "a crash between write and rename leaves the old
// key" is shown.
#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>
#include <string_view>

#include "base/atomic_file.hpp"
#include "base/crypto.hpp"
#include "hal/linux/sys.hpp"
#include "hal/names.hpp"

namespace loy::hal {

namespace {

static_assert(LOY_HAL_KEY_BYTES == crypto::key_bytes, "a .key item is a crypto::Key");

// A key file is 65 bytes; room for CR LF and trailing blanks a hand-made one
// may have, as crypto::read_key_file accepts them.
constexpr size_t key_file_bytes_max = 256;

struct FileStore {
	Sys sys;
	std::string dir;
};

std::string path_of(const FileStore *s, const char *name) { return s->dir + "/" + name; }

// The directory holding `path`.
std::string parent_of(const std::string &path) { return path.substr(0, path.rfind('/')); }

// A rename is durable once the directory holding it is synced.
bool sync_dir(const Sys &sys, const std::string &dir)
{
	int fd = sys.open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool ok = sys.fsync(fd) == 0;
	return sys.close(fd) == 0 && ok;
}

// Makes the directories of a name with '/' ("tls/cert.pem" needs "tls").
bool make_parents(const FileStore *s, const char *name)
{
	std::string_view rest(name);
	std::string path = s->dir;
	for (size_t slash; (slash = rest.find('/')) != std::string_view::npos;) {
		path += '/';
		path.append(rest.substr(0, slash));
		rest.remove_prefix(slash + 1);
		if (s->sys.mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
			return false;
	}
	return true;
}

// The calls of a put: the store's own table, so that its faults reach them.
base::FileCalls file_calls(const Sys &sys)
{
	base::FileCalls c{};
	c.open = sys.open;
	c.close = sys.close;
	c.write = sys.write;
	c.fchmod = sys.fchmod;
	c.fsync = sys.fsync;
	c.rename = sys.rename;
	c.unlink = sys.unlink;
	return c;
}

int put_(FileStore *s, const char *name, const unsigned char *data, size_t len)
{
	if (int rc = check_put(name, data, len); rc != 0)
		return rc;
	std::string text = is_key_name(name) ? crypto::to_hex(data, len) + "\n"
					     : std::string(reinterpret_cast<const char *>(data), len);
	if (!make_parents(s, name))
		return LOY_HAL_E_IO;
	// The temporary file is hidden (names cannot start with '.') and per
	// process: out of reach of names, and never shared by two processes on
	// one data dir.
	return base::write_file_atomic(path_of(s, name), text, 0600, file_calls(s->sys)).is_ok()
		       ? 0
		       : LOY_HAL_E_IO;
}

int get_(FileStore *s, const char *name, unsigned char *buf, size_t size, size_t *len)
{
	if (!valid_item_name(name) || !len || (!buf && size > 0))
		return LOY_HAL_E_ARGUMENT;
	const bool key = is_key_name(name);
	const size_t limit = key ? key_file_bytes_max : LOY_HAL_ITEM_MAX;
	int fd = s->sys.open(path_of(s, name).c_str(), O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? LOY_HAL_E_NOT_FOUND : LOY_HAL_E_IO;
	struct stat st;
	std::string text;
	bool ok = s->sys.fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	if (ok) {
		// One byte past the limit tells a file that is too big.
		text.resize(limit + 1);
		size_t got = 0;
		while (got < text.size()) {
			ssize_t n = s->sys.read(fd, &text[got], text.size() - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				ok = n == 0;
				break;
			}
			got += static_cast<size_t>(n);
		}
		text.resize(got);
		ok = ok && got <= limit;
	}
	s->sys.close(fd);
	if (!ok)
		return LOY_HAL_E_IO;
	if (key) {
		// crypto::read_key_file's reading of a key file.
		std::string_view hex(text);
		while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r' || hex.back() == ' '))
			hex.remove_suffix(1);
		crypto::Key k;
		if (!crypto::from_hex(hex, k.data(), k.size()))
			return LOY_HAL_E_IO;
		text.assign(reinterpret_cast<const char *>(k.data()), k.size());
	}
	*len = text.size();
	if (text.size() > size)
		return LOY_HAL_E_TOO_BIG;
	if (!text.empty())
		std::memcpy(buf, text.data(), text.size());
	return 0;
}

int erase_(FileStore *s, const char *name)
{
	if (!valid_item_name(name))
		return LOY_HAL_E_ARGUMENT;
	const std::string path = path_of(s, name);
	if (s->sys.unlink(path.c_str()) != 0)
		return errno == ENOENT || errno == ENOTDIR ? LOY_HAL_E_NOT_FOUND : LOY_HAL_E_IO;
	return sync_dir(s->sys, parent_of(path)) ? 0 : LOY_HAL_E_IO;
}

// Nothing C++ crosses the table: a failed allocation is an I/O error.
int get(void *ctx, const char *name, unsigned char *buf, size_t size, size_t *len)
{
	try {
		return get_(static_cast<FileStore *>(ctx), name, buf, size, len);
	} catch (...) {
		return LOY_HAL_E_IO;
	}
}

int put(void *ctx, const char *name, const unsigned char *data, size_t len)
{
	try {
		return put_(static_cast<FileStore *>(ctx), name, data, len);
	} catch (...) {
		return LOY_HAL_E_IO;
	}
}

int erase(void *ctx, const char *name)
{
	try {
		return erase_(static_cast<FileStore *>(ctx), name);
	} catch (...) {
		return LOY_HAL_E_IO;
	}
}

} // namespace

int keystore_open(loy_hal_keystore *out, const char *dir, const Sys &sys)
{
	if (!out || !dir || !*dir)
		return LOY_HAL_E_ARGUMENT;
	*out = {};
	FileStore *s = nullptr;
	try {
		s = new FileStore{sys, dir};
	} catch (...) {
		return LOY_HAL_E_IO;
	}
	while (s->dir.size() > 1 && s->dir.back() == '/')
		s->dir.pop_back();
	int fd = sys.open(s->dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0) {
		delete s;
		return LOY_HAL_E_IO;
	}
	sys.close(fd);
	out->version = LOY_HAL_KEYSTORE_VERSION;
	out->get = get;
	out->put = put;
	out->erase = erase;
	out->ctx = s;
	return 0;
}

} // namespace loy::hal

extern "C" int loy_hal_linux_keystore_open(loy_hal_keystore *out, const char *dir)
{
	return loy::hal::keystore_open(out, dir, loy::hal::real_sys());
}

extern "C" void loy_hal_linux_keystore_close(loy_hal_keystore *keys)
{
	if (!keys || !keys->ctx)
		return;
	delete static_cast<loy::hal::FileStore *>(keys->ctx);
	*keys = {};
}
