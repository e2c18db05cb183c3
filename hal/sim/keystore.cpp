// The in-memory key store: the file store's rules for names and sizes, and
// failures on demand that change nothing, as a failed rename leaves the old
// file.
#include <cassert>
#include <cstring>

#include "hal/names.hpp"
#include "hal/sim/sim.hpp"

namespace loy::hal::sim {

SimKeyStore::SimKeyStore()
{
	table_.version = LOY_HAL_KEYSTORE_VERSION;
	table_.get = get_cb;
	table_.put = put_cb;
	table_.erase = erase_cb;
	table_.ctx = this;
}

void SimKeyStore::fail_puts(int count, int code)
{
	assert(count >= 0 && code < 0);
	std::lock_guard lock(mu_);
	put_fail_count_ = count;
	put_fail_code_ = code;
}

void SimKeyStore::fail_gets(int count, int code)
{
	assert(count >= 0 && code < 0);
	std::lock_guard lock(mu_);
	get_fail_count_ = count;
	get_fail_code_ = code;
}

std::optional<std::vector<unsigned char>> SimKeyStore::item(const std::string &name) const
{
	std::lock_guard lock(mu_);
	auto it = items_.find(name);
	if (it == items_.end())
		return std::nullopt;
	return it->second;
}

size_t SimKeyStore::size() const
{
	std::lock_guard lock(mu_);
	return items_.size();
}

size_t SimKeyStore::puts() const
{
	std::lock_guard lock(mu_);
	return puts_;
}

int SimKeyStore::get_cb(void *ctx, const char *name, unsigned char *buf, size_t size, size_t *len)
{
	auto *self = static_cast<SimKeyStore *>(ctx);
	if (!valid_item_name(name) || !len || (!buf && size > 0))
		return LOY_HAL_E_ARGUMENT;
	std::lock_guard lock(self->mu_);
	if (self->get_fail_count_ > 0) {
		self->get_fail_count_--;
		return self->get_fail_code_;
	}
	auto it = self->items_.find(name);
	if (it == self->items_.end())
		return LOY_HAL_E_NOT_FOUND;
	*len = it->second.size();
	if (it->second.size() > size)
		return LOY_HAL_E_TOO_BIG;
	if (!it->second.empty())
		std::memcpy(buf, it->second.data(), it->second.size());
	return 0;
}

int SimKeyStore::put_cb(void *ctx, const char *name, const unsigned char *data, size_t len)
{
	auto *self = static_cast<SimKeyStore *>(ctx);
	if (int rc = check_put(name, data, len); rc != 0)
		return rc;
	try {
		std::lock_guard lock(self->mu_);
		if (self->put_fail_count_ > 0) {
			self->put_fail_count_--;
			return self->put_fail_code_;
		}
		auto it = self->items_.find(name);
		if (it == self->items_.end() && self->items_.size() >= items_max)
			return LOY_HAL_E_IO;
		std::vector<unsigned char> value(data, data + len);
		self->items_[name] = std::move(value);
		self->puts_++;
		return 0;
	} catch (...) {
		return LOY_HAL_E_IO;
	}
}

int SimKeyStore::erase_cb(void *ctx, const char *name)
{
	auto *self = static_cast<SimKeyStore *>(ctx);
	if (!valid_item_name(name))
		return LOY_HAL_E_ARGUMENT;
	std::lock_guard lock(self->mu_);
	if (self->put_fail_count_ > 0) {
		self->put_fail_count_--;
		return self->put_fail_code_;
	}
	return self->items_.erase(name) == 1 ? 0 : LOY_HAL_E_NOT_FOUND;
}

} // namespace loy::hal::sim
