// Key store item names and sizes (include/loyalty/hal.h, loy_hal_keystore):
// one rule for the file store and the simulator, so that a name the simulator
// takes is one the file store takes too.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace loy::hal {

// Most '/'-separated components of a name: "tls/cert.pem" needs two; the
// limit keeps the file store's directory walk short.
inline constexpr size_t item_name_components_max = 4;

// Whether `name` is a valid item name; `why` (may be null) gets the reason.
bool valid_item_name(const char *name, std::string *why = nullptr);

// Whether an item of this (valid) name holds a raw secret key.
bool is_key_name(std::string_view name);

// 0 when `name` and `len` may be put, LOY_HAL_E_ARGUMENT otherwise.
int check_put(const char *name, const unsigned char *data, size_t len);

} // namespace loy::hal
