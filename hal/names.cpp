// Key store names: relative, short, of a small alphabet, so that a name can
// never leave the store's directory or collide with its temporary files.
#include "hal/names.hpp"

#include <cstring>

#include "loyalty/hal.h"

namespace loy::hal {

namespace {

bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '_';
}

bool fail(std::string *why, std::string text)
{
	if (why)
		*why = std::move(text);
	return false;
}

} // namespace

bool valid_item_name(const char *name, std::string *why)
{
	if (!name)
		return fail(why, "no name");
	size_t len = std::strlen(name);
	if (len == 0)
		return fail(why, "empty name");
	if (len >= LOY_HAL_KEY_NAME_MAX)
		return fail(why, "name longer than " + std::to_string(LOY_HAL_KEY_NAME_MAX - 1) +
					 " bytes");
	if (name[0] == '/')
		return fail(why, "absolute path");
	std::string_view rest(name, len);
	size_t components = 0;
	for (;;) {
		size_t slash = rest.find('/');
		std::string_view part = rest.substr(0, slash);
		components++;
		if (part.empty())
			return fail(why, "empty component");
		// Covers "." and "..", and keeps the store's hidden temporary
		// files out of reach.
		if (part[0] == '.')
			return fail(why, "component \"" + std::string(part) + "\" starts with '.'");
		for (char c : part)
			if (!name_char(c))
				return fail(why, "character " + std::to_string(static_cast<unsigned char>(c)) +
							 " not allowed");
		if (slash == std::string_view::npos)
			break;
		rest.remove_prefix(slash + 1);
	}
	if (components > item_name_components_max)
		return fail(why, "more than " + std::to_string(item_name_components_max) +
					 " components");
	return true;
}

bool is_key_name(std::string_view name)
{
	constexpr std::string_view suffix = ".key";
	return name.size() >= suffix.size() &&
	       name.substr(name.size() - suffix.size()) == suffix;
}

int check_put(const char *name, const unsigned char *data, size_t len)
{
	if (!valid_item_name(name))
		return LOY_HAL_E_ARGUMENT;
	if (!data && len > 0)
		return LOY_HAL_E_ARGUMENT;
	if (is_key_name(name) ? len != LOY_HAL_KEY_BYTES : len > LOY_HAL_ITEM_MAX)
		return LOY_HAL_E_ARGUMENT;
	return 0;
}

} // namespace loy::hal
