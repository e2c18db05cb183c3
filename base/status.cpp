// Names and kinds of the status codes.
#include "base/status.hpp"

namespace loy {

Kind kind_of(Code code) noexcept
{
	switch (code) {
	case Code::ok:
		return Kind::ok;
	case Code::bad_argument:
	case Code::bad_json:
	case Code::bad_program:
	case Code::bad_basket:
	case Code::bad_card:
	case Code::overflow:
	case Code::unknown_reward:
	case Code::unknown_receipt:
	case Code::receipt_conflict:
	case Code::bad_refund:
	case Code::no_program:
	case Code::old_program:
	case Code::unknown_charity:
	case Code::unknown_stamp_card:
		return Kind::bad_input;
	case Code::declined_blocked:
	case Code::declined_balance_unknown:
	case Code::declined_min_points:
	case Code::declined_max_pct:
	case Code::declined_reward_not_in_basket:
	case Code::declined_insufficient_points:
	case Code::declined_daily_cap:
	case Code::declined_already_refunded:
	case Code::declined_insufficient_stamps:
	case Code::declined_stamp_daily_limit:
		return Kind::declined;
	case Code::storage:
		return Kind::storage;
	case Code::network:
		return Kind::network;
	case Code::internal:
		return Kind::other;
	}
	return Kind::other;
}

const char *code_name(Code code) noexcept
{
	switch (code) {
	case Code::ok: return "ok";
	case Code::internal: return "internal";
	case Code::bad_argument: return "bad_argument";
	case Code::bad_json: return "bad_json";
	case Code::bad_program: return "bad_program";
	case Code::bad_basket: return "bad_basket";
	case Code::bad_card: return "bad_card";
	case Code::overflow: return "overflow";
	case Code::unknown_reward: return "unknown_reward";
	case Code::unknown_receipt: return "unknown_receipt";
	case Code::receipt_conflict: return "receipt_conflict";
	case Code::bad_refund: return "bad_refund";
	case Code::no_program: return "no_program";
	case Code::declined_blocked: return "blocked_card";
	case Code::declined_balance_unknown: return "balance_unknown";
	case Code::declined_min_points: return "below_min_points";
	case Code::declined_max_pct: return "over_max_pct";
	case Code::declined_reward_not_in_basket: return "reward_not_in_basket";
	case Code::declined_insufficient_points: return "insufficient_points";
	case Code::declined_daily_cap: return "daily_cap";
	case Code::declined_already_refunded: return "already_refunded";
	case Code::storage: return "storage";
	case Code::network: return "network";
	case Code::old_program: return "old_program";
	case Code::unknown_charity: return "unknown_charity";
	case Code::unknown_stamp_card: return "unknown_stamp_card";
	case Code::declined_insufficient_stamps: return "insufficient_stamps";
	case Code::declined_stamp_daily_limit: return "stamp_daily_limit";
	}
	return "unknown";
}

} // namespace loy
