// Status and Result<T>: recoverable failures as values, one code per reason.
// The codes are the public C API's loy_status values (include/loyalty/loyalty.h),
// so that the boundary maps them one to one.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace loy {

// Append only: add new codes last, never renumber or remove one. The numbers
// are part of the C ABI (loy_status) and of what terminals record.
enum class Code : int {
	ok = 0,
	internal = 1,          // a broken invariant or an unexpected failure
	bad_argument = 2,      // a caller passed something unusable (null, bad flag)
	bad_json = 3,          // text that is not JSON
	bad_program = 4,       // a program document that does not match the spec
	bad_basket = 5,        // a basket that does not match the spec
	bad_card = 6,          // a card scan that is not a valid card number
	overflow = 7,          // an amount too large to compute exactly
	unknown_reward = 8,    // --reward names no reward of the program
	unknown_receipt = 9,   // a refund names a receipt this terminal never made
	receipt_conflict = 10, // a receipt id reused with a different basket
	bad_refund = 11,       // more units returned than sold, unknown sku
	no_program = 12,       // no program installed yet
	declined_blocked = 13,
	declined_balance_unknown = 14,
	declined_min_points = 15,
	declined_max_pct = 16,
	declined_reward_not_in_basket = 17,
	declined_insufficient_points = 18,
	declined_daily_cap = 19,
	declined_already_refunded = 20,
	storage = 21,          // the ledger could not be read or written
	network = 22,          // the central server could not be reached
	old_program = 23,      // a program version older than (or equal to) the one in force
	unknown_charity = 24,  // a donation names no charity of the program
	unknown_stamp_card = 25, // --stamp-card names no stamp card of the program
	declined_insufficient_stamps = 26,
	declined_stamp_daily_limit = 27,
};

// What a code means to a caller deciding what to do next; the CLI's exit code.
enum class Kind : int { ok = 0, other = 1, bad_input = 2, declined = 3, storage = 4, network = 5 };

Kind kind_of(Code code) noexcept;

// The stable name of a code: "declined_insufficient_points" and so on.
const char *code_name(Code code) noexcept;

class [[nodiscard]] Status {
public:
	Status() = default;
	Status(Code code, std::string message) : code_(code), message_(std::move(message))
	{
		assert(code != Code::ok);
	}

	static Status ok() { return {}; }

	bool is_ok() const noexcept { return code_ == Code::ok; }
	explicit operator bool() const noexcept { return is_ok(); }
	Code code() const noexcept { return code_; }
	Kind kind() const noexcept { return kind_of(code_); }
	const std::string &message() const noexcept { return message_; }
	// So that LOY_TRY takes a Status and a Result alike.
	const Status &status() const noexcept { return *this; }

	// "basket: " + "line 3: qty must be positive" and so on: errors found deep
	// inside a document are named from the document's root on their way out.
	Status prefixed(const std::string &where) const
	{
		return is_ok() ? *this : Status(code_, where + message_);
	}

private:
	Code code_ = Code::ok;
	std::string message_;
};

template <class T> class [[nodiscard]] Result {
public:
	Result(T value) : v_(std::move(value)) {}
	Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).is_ok()); }

	bool is_ok() const noexcept { return v_.index() == 0; }
	explicit operator bool() const noexcept { return is_ok(); }

	const T &value() const &
	{
		assert(is_ok());
		return std::get<T>(v_);
	}
	T &value() &
	{
		assert(is_ok());
		return std::get<T>(v_);
	}
	T &&value() &&
	{
		assert(is_ok());
		return std::get<T>(std::move(v_));
	}
	const T &operator*() const & { return value(); }
	const T *operator->() const { return &value(); }

	Status status() const { return is_ok() ? Status() : std::get<Status>(v_); }

private:
	std::variant<T, Status> v_;
};

} // namespace loy

// Early return of a failed Status or Result from a function returning Status
// or Result<U>.
#define LOY_TRY(expr)                                                                              \
	do {                                                                                       \
		auto loy_try_status_ = (expr);                                                     \
		if (!loy_try_status_.is_ok())                                                      \
			return loy_try_status_.status();                                           \
	} while (0)
