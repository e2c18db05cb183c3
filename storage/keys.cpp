#include "storage/keys.hpp"

#include <vector>

#include <fmt/format.h>

namespace loy {

namespace {

Status failed(const char *what, const char *name, int code)
{
	return Status(Code::storage, fmt::format("key store: {} {}: {}", what, name, loy_hal_strerror(code)));
}

} // namespace

Result<std::unique_ptr<KeyStore>> KeyStore::open(const loy_hal_keystore *table, const std::string &dir)
{
	std::unique_ptr<KeyStore> k(new KeyStore());
	if (table) {
		if (table->version < 1 || !table->get || !table->put || !table->erase)
			return Status(Code::bad_argument, "key store: a table of an unknown version or with a NULL function");
		k->table_ = table;
		return k;
	}
	int rc = loy_hal_linux_keystore_open(&k->owned_, dir.c_str());
	if (rc < 0)
		return Status(Code::storage, fmt::format("key store: cannot open the data dir {}: {}", dir,
							 loy_hal_strerror(rc)));
	k->table_ = &k->owned_;
	return k;
}

KeyStore::~KeyStore() { loy_hal_linux_keystore_close(&owned_); }

Result<crypto::Key> KeyStore::key(const char *name) const
{
	crypto::Key key{};
	size_t len = 0;
	int rc = table_->get(table_->ctx, name, key.data(), key.size(), &len);
	if (rc == LOY_HAL_E_NOT_FOUND)
		return Status(Code::storage, fmt::format("key store: {} is missing", name));
	if (rc < 0)
		return failed("reading", name, rc);
	if (len != key.size())
		return Status(Code::storage, fmt::format("key store: {} holds {} bytes, not {}", name, len,
							 key.size()));
	return key;
}

Status KeyStore::put_key(const char *name, const crypto::Key &key) const
{
	int rc = table_->put(table_->ctx, name, key.data(), key.size());
	return rc < 0 ? failed("writing", name, rc) : Status::ok();
}

Result<std::string> KeyStore::item(const char *name) const
{
	size_t len = 0;
	int rc = table_->get(table_->ctx, name, nullptr, 0, &len);
	if (rc == LOY_HAL_E_NOT_FOUND)
		return Status(Code::storage, fmt::format("key store: {} is missing", name));
	if (rc < 0 && rc != LOY_HAL_E_TOO_BIG)
		return failed("reading", name, rc);
	// The item may change between the two calls: ask again when it grew.
	for (int attempt = 0; attempt < 3; attempt++) {
		std::vector<unsigned char> buf(len);
		size_t got = 0;
		rc = table_->get(table_->ctx, name, buf.data(), buf.size(), &got);
		if (rc == LOY_HAL_E_TOO_BIG) {
			len = got;
			continue;
		}
		if (rc == LOY_HAL_E_NOT_FOUND)
			return Status(Code::storage, fmt::format("key store: {} is missing", name));
		if (rc < 0)
			return failed("reading", name, rc);
		return std::string(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(got));
	}
	return Status(Code::storage, fmt::format("key store: {} keeps changing size", name));
}

Status KeyStore::put_item(const char *name, const std::string &data) const
{
	int rc = table_->put(table_->ctx, name, reinterpret_cast<const unsigned char *>(data.data()),
			     data.size());
	return rc < 0 ? failed("writing", name, rc) : Status::ok();
}

Result<bool> KeyStore::has(const char *name) const
{
	size_t len = 0;
	int rc = table_->get(table_->ctx, name, nullptr, 0, &len);
	if (rc == LOY_HAL_E_NOT_FOUND)
		return false;
	if (rc < 0 && rc != LOY_HAL_E_TOO_BIG)
		return failed("reading", name, rc);
	return true;
}

} // namespace loy
