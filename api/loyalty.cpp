// The C API over the engine: handles, status codes and a per-handle error
// message. Nothing C++ crosses this boundary and no exception leaves it.
#include "loyalty/loyalty.h"

#include <cstring>
#include <exception>
#include <memory>
#include <new>

#include <fmt/format.h>

#include "api/boundary.hpp"
#include "core/card.hpp"
#include "core/engine.hpp"
#include "core/receipt_json.hpp"

static_assert(static_cast<int>(loy::Code::old_program) == LOY_E_OLD_PROGRAM,
	      "loy::Code and loy_status must stay one to one");
static_assert(static_cast<int>(loy::Code::unknown_charity) == LOY_E_UNKNOWN_CHARITY,
	      "loy::Code and loy_status must stay one to one");
static_assert(static_cast<int>(loy::Code::declined_stamp_daily_limit) == LOY_D_STAMP_DAILY_LIMIT,
	      "loy::Code and loy_status must stay one to one");
static_assert(static_cast<int>(loy::Code::declined_already_refunded) == LOY_D_ALREADY_REFUNDED,
	      "loy::Code and loy_status must stay one to one");
static_assert(static_cast<int>(loy::Kind::network) == LOY_KIND_NETWORK,
	      "loy::Kind and loy_kind must stay one to one");

struct loy_engine {
	std::unique_ptr<loy::Program> program;
	std::string result_json;
	std::vector<loy::Part> breakdown; // of the last checkout
	// Set or cleared by every call that returns a status, the const ones
	// (program_info, format_money, breakdown_part) included.
	mutable char errmsg[LOY_ERRMSG_MAX] = "";
};

namespace {

using loy::capi::to_c;

loy_status fail(const loy_engine *e, const loy::Status &s) { return loy::capi::fail(e->errmsg, s); }

loy_status fail(const loy_engine *e, loy::Code code, const char *message)
{
	return loy::capi::fail(e->errmsg, code, message);
}

loy_status succeed(const loy_engine *e) { return loy::capi::succeed(e->errmsg); }

template <class F> loy_status guarded(loy_engine *e, F &&body)
{
	return loy::capi::guarded(e->errmsg, std::forward<F>(body));
}

void copy_name(char *to, size_t size, const std::string &from)
{
	std::snprintf(to, size, "%s", from.c_str());
}

} // namespace

extern "C" {

const char *loy_version(void) { return LOY_VERSION_STR; }

unsigned loy_version_num(void) { return LOY_VERSION_NUM; }

const char *loy_errstr(loy_status status) { return loy::code_name(static_cast<loy::Code>(status)); }

loy_kind loy_status_kind(loy_status status)
{
	return static_cast<loy_kind>(loy::kind_of(static_cast<loy::Code>(status)));
}

loy_status loy_engine_new(loy_engine **out)
{
	if (!out)
		return LOY_E_BAD_ARGUMENT;
	*out = new (std::nothrow) loy_engine();
	return *out ? LOY_OK : LOY_E_INTERNAL;
}

void loy_engine_free(loy_engine *engine) { delete engine; }

const char *loy_engine_errmsg(const loy_engine *engine)
{
	return engine ? engine->errmsg : "no engine (NULL handle)";
}

loy_status loy_engine_program_load(loy_engine *e, const char *json, size_t len)
{
	if (!e)
		return LOY_E_BAD_ARGUMENT;
	if (!json)
		return fail(e, loy::Code::bad_argument, "program: no document (NULL)");
	return guarded(e, [&] {
		auto p = loy::parse_program(std::string_view(json, len));
		if (!p)
			return fail(e, p.status());
		if (e->program && e->program->id == p->id && p->version < e->program->version)
			return fail(e, loy::Code::old_program,
				    fmt::format("program {} v{} is older than v{} in force", p->id,
						p->version, e->program->version)
					    .c_str());
		e->program = std::make_unique<loy::Program>(std::move(p).value());
		return succeed(e);
	});
}

loy_status loy_engine_program_info(const loy_engine *e, const char **id, int64_t *version)
{
	if (!e)
		return LOY_E_BAD_ARGUMENT;
	if (!e->program)
		return fail(e, loy::Code::no_program, "no program loaded");
	if (id)
		*id = e->program->id.c_str();
	if (version)
		*version = e->program->version;
	return succeed(e);
}

loy_status loy_format_money(const char *currency, int64_t amount, char *buf, size_t size)
{
	if (!currency || !buf)
		return LOY_E_BAD_ARGUMENT;
	std::string text = loy::format_money(amount, currency);
	if (text.size() >= size)
		return LOY_E_BAD_ARGUMENT;
	std::memcpy(buf, text.c_str(), text.size() + 1);
	return LOY_OK;
}

loy_status loy_engine_format_money(const loy_engine *e, int64_t amount, char *buf, size_t size)
{
	if (!e)
		return LOY_E_BAD_ARGUMENT;
	if (!buf)
		return fail(e, loy::Code::bad_argument, "money: no buffer (NULL)");
	if (!e->program)
		return fail(e, loy::Code::no_program, "no program loaded");
	if (loy_format_money(e->program->currency.c_str(), amount, buf, size) != LOY_OK)
		return fail(e, loy::Code::bad_argument,
			    fmt::format("money: buf holds {} bytes, LOY_MONEY_MAX ({}) are always enough", size,
					LOY_MONEY_MAX)
				    .c_str());
	return succeed(e);
}

loy_status loy_engine_card_check(loy_engine *e, const char *scan, char *masked, size_t size)
{
	if (!e)
		return LOY_E_BAD_ARGUMENT;
	if (!scan)
		return fail(e, loy::Code::bad_argument, "card: no scan (NULL)");
	if (!e->program)
		return fail(e, loy::Code::no_program, "no program loaded");
	return guarded(e, [&] {
		auto digits = loy::parse_card_scan(scan, e->program->card);
		if (!digits)
			return fail(e, digits.status());
		const std::string shown = loy::mask_card(*digits);
		if (masked && size < shown.size() + 1)
			return fail(e, loy::Code::bad_argument,
				    fmt::format("card: masked holds {} bytes, the masked card needs {}", size,
						shown.size() + 1)
					    .c_str());
		if (masked)
			copy_name(masked, size, shown);
		return succeed(e);
	});
}

loy_status loy_engine_checkout(loy_engine *e, const char *basket_json, size_t len,
			       const loy_member *member, const loy_redemption *redemption,
			       loy_checkout *out)
{
	if (!e)
		return LOY_E_BAD_ARGUMENT;
	if (!basket_json)
		return fail(e, loy::Code::bad_argument, "basket: no document (NULL)");
	if (!e->program)
		return fail(e, loy::Code::no_program, "no program loaded");
	return guarded(e, [&] {
		auto basket = loy::parse_basket(std::string_view(basket_json, len));
		if (!basket)
			return fail(e, basket.status());
		loy_member mm;
		loy_redemption rr;
		for (const std::string &bad :
		     {loy::capi::read_versioned(member, loy::capi::member_v1, "loy_member", &mm),
		      loy::capi::read_versioned(redemption, loy::capi::redemption_v1, "loy_redemption", &rr)})
			if (!bad.empty())
				return fail(e, loy::Code::bad_argument, bad.c_str());
		if (out && out->size < loy::capi::checkout_v1)
			return fail(e, loy::Code::bad_argument,
				    fmt::format("loy_checkout.size is {}: set it with LOY_INIT(loy_checkout)", out->size)
					    .c_str());
		loy::Member m;
		if (member) {
			m.known = mm.known != 0;
			m.blocked = mm.blocked != 0;
			m.balance = mm.balance;
			m.qualifying_spend = mm.qualifying_spend;
			m.redeemed_today = mm.redeemed_today;
		}
		loy::Redemption r;
		if (rr.kind == LOY_REDEEM_POINTS) {
			r = loy::Redemption::of_points(rr.points);
		} else if (rr.kind == LOY_REDEEM_REWARD) {
			if (!rr.reward)
				return fail(e, loy::Code::bad_argument, "reward: no id (NULL)");
			r = loy::Redemption::of_reward(rr.reward);
		} else if (rr.kind == LOY_REDEEM_STAMP_CARD) {
			if (!rr.reward)
				return fail(e, loy::Code::bad_argument, "stamp card: no id (NULL)");
			r = loy::Redemption::of_stamp_card(rr.reward);
		} else if (rr.kind != LOY_REDEEM_NONE) {
			return fail(e, loy::Code::bad_argument, "redemption: unknown kind");
		}
		auto c = loy::checkout(*e->program, *basket, m, r);
		if (!c)
			return fail(e, c.status());
		auto receipt = loy::make_receipt(*basket, *c, m, r);
		e->result_json = fmt::format(R"({{"checkout":{},"receipt":{}}})", loy::checkout_json(*c),
					     loy::receipt_to_json(receipt));
		e->breakdown = c->breakdown;
		if (out) {
			loy_checkout co = LOY_INIT(loy_checkout);
			co.earned = c->earned;
			co.redeemed = c->redeemed;
			co.discount = c->discount;
			co.eligible_spend = c->eligible;
			copy_name(co.tier, sizeof co.tier, c->tier);
			loy::capi::write_versioned(co, loy::capi::checkout_v1, "loy_checkout", out);
		}
		return succeed(e);
	});
}

loy_status loy_engine_refund(loy_engine *e, const char *receipt_json, size_t len,
			     const loy_return_line *lines, size_t n, int64_t *reversed,
			     int64_t *returned)
{
	if (!e)
		return LOY_E_BAD_ARGUMENT;
	if (!receipt_json || (n > 0 && !lines))
		return fail(e, loy::Code::bad_argument, "refund: no receipt or lines (NULL)");
	if (!e->program)
		return fail(e, loy::Code::no_program, "no program loaded");
	return guarded(e, [&] {
		auto receipt = loy::receipt_from_json(std::string_view(receipt_json, len));
		if (!receipt)
			return fail(e, receipt.status());
		std::vector<loy::ReturnLine> units;
		for (size_t i = 0; i < n; i++) {
			if (!lines[i].sku)
				return fail(e, loy::Code::bad_argument, "refund: line without sku");
			units.push_back(loy::ReturnLine{lines[i].sku, lines[i].qty});
		}
		auto f = loy::refund(*e->program, *receipt, units);
		if (!f)
			return fail(e, f.status());
		loy::Receipt after = std::move(receipt).value();
		loy::apply_refund(after, *f);
		e->result_json = fmt::format(
			R"({{"points_reversed":{},"points_returned":{},"complete":{},"receipt":{}}})",
			f->points_reversed, f->points_returned, f->complete ? "true" : "false",
			loy::receipt_to_json(after));
		if (reversed)
			*reversed = f->points_reversed;
		if (returned)
			*returned = f->points_returned;
		return succeed(e);
	});
}

size_t loy_engine_breakdown_count(const loy_engine *e) { return e ? e->breakdown.size() : 0; }

loy_status loy_engine_breakdown_part(const loy_engine *e, size_t index, const char **rule,
				     int64_t *points)
{
	if (!e)
		return LOY_E_BAD_ARGUMENT;
	if (index >= e->breakdown.size())
		return fail(e, loy::Code::bad_argument,
			    fmt::format("breakdown: part {} of {}", index, e->breakdown.size()).c_str());
	if (rule)
		*rule = e->breakdown[index].rule.c_str();
	if (points)
		*points = e->breakdown[index].points;
	return succeed(e);
}

const char *loy_engine_result_json(const loy_engine *e) { return e ? e->result_json.c_str() : ""; }

} // extern "C"
