#include "firmware/slip.hpp"

#include <loyalty/loyalty.h>

#include <fmt/format.h>

#include "base/utf8.hpp"

namespace loy::fw {

namespace {

using Json = nlohmann::json;

} // namespace

// One column per character: receipt printers print the Latin, Greek and
// Cyrillic letters of tier and store names one column each; no wide
// characters are expected.
size_t columns(const std::string &s) { return utf8_chars(s); }

// The first `cols` columns of s, never cutting a character in two.
std::string first_columns(const std::string &s, size_t cols) { return s.substr(0, utf8_prefix_chars(s, cols)); }

namespace {

// "label .... value": the value right-aligned; a label too long is cut so
// that the value (the figure the customer reads) always shows whole.
std::string row(const std::string &label, const std::string &value, int width)
{
	const size_t w = static_cast<size_t>(width);
	const size_t vc = columns(value);
	if (vc + 1 >= w)
		return first_columns(value, w);
	const size_t room = w - vc - 1;
	const std::string l = columns(label) > room ? first_columns(label, room) : label;
	return l + std::string(w - columns(l) - vc, ' ') + value;
}

std::string points(const Json &v)
{
	return v.is_number_integer() ? fmt::format("{} pts", v.get<int64_t>()) : std::string("unknown");
}

std::string signed_points(int64_t v) { return fmt::format("{:+} pts", v); }

std::string money(const Json &r, int64_t amount) { return format_money(r.value("currency", ""), amount); }

std::string text(const Json &r, const char *key)
{
	auto it = r.find(key);
	return it != r.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t integer(const Json &r, const char *key)
{
	auto it = r.find(key);
	return it != r.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

void header(std::vector<std::string> &out, const Json &r, int width)
{
	std::string tier = text(r, "tier");
	out.push_back(row("Loyalty " + text(r, "card"), tier.empty() ? std::string("-") : tier, width));
}

// The member's membership, running or not: its id and the day it ends.
void membership_line(std::vector<std::string> &out, const Json &r, int width)
{
	auto it = r.find("membership");
	if (it == r.end() || !it->is_object())
		return;
	out.push_back(row("Membership " + text(*it, "id"), "until " + text(*it, "until"), width));
}

} // namespace

std::string format_money(const std::string &currency, int64_t amount)
{
	char buf[LOY_MONEY_MAX];
	if (currency.empty() || loy_format_money(currency.c_str(), amount, buf, sizeof buf) != LOY_OK)
		return std::to_string(amount);
	return buf;
}

std::vector<std::string> member_lines(const Json &b, int width)
{
	std::vector<std::string> out;
	if (!b.value("known", false)) {
		out.push_back(row("Loyalty " + text(b, "card"), "not known here", width));
		out.push_back("Earns now; redeems after enrolment or a sync.");
		return out;
	}
	header(out, b, width);
	if (b.value("blocked", false))
		out.push_back(row("Card", "BLOCKED", width));
	out.push_back(row("Balance", points(b["balance"]), width));
	if (integer(b, "pending") > 0)
		out.push_back(row("Pending", points(b["pending"]), width));
	out.push_back(row("Redeemable today", points(b["redeemable_today"]), width));
	if (!text(b, "next_expiry").empty())
		out.push_back(row("Next expiry", text(b, "next_expiry"), width));
	membership_line(out, b, width);
	if (auto it = b.find("stamps"); it != b.end() && it->is_object())
		for (const auto &[id, n] : it->items())
			if (n.is_number_integer())
				out.push_back(row("Stamps " + id, std::to_string(n.get<int64_t>()), width));
	return out;
}

std::vector<std::string> checkout_lines(const Json &c, int width)
{
	std::vector<std::string> out;
	out.push_back(row("Receipt", text(c, "receipt_id"), width));
	header(out, c, width);
	if (integer(c, "member_discount") > 0)
		out.push_back(row("Member price", money(c, -integer(c, "member_discount")), width));
	out.push_back(row("Earned", signed_points(integer(c, "earned")), width));
	if (auto it = c.find("breakdown"); it != c.end() && it->is_array())
		for (const auto &part : *it)
			out.push_back(row("  " + part.value("rule", std::string("?")),
					  std::to_string(part.value("points", int64_t{0})), width));
	if (integer(c, "redeemed") > 0) {
		out.push_back(row("Redeemed", signed_points(-integer(c, "redeemed")), width));
		out.push_back(row("Discount", money(c, integer(c, "discount")), width));
	}
	// Stamp cards: what each got and gave, and the count after it.
	bool stamp_reward = false;
	if (auto it = c.find("stamps"); it != c.end() && it->is_array())
		for (const auto &card : *it) {
			const std::string id = card.value("id", std::string("?"));
			const int64_t earned = integer(card, "earned"), used = integer(card, "used");
			if (used > 0) {
				stamp_reward = true;
				out.push_back(row("Stamp reward " + id, fmt::format("{:+} stamps", -used), width));
			}
			const auto count = card.find("balance");
			const std::string after =
				count != card.end() && count->is_number_integer() ? std::to_string(count->get<int64_t>()) : "-";
			out.push_back(row("Stamps " + id, fmt::format("{:+} = {}", earned, after), width));
		}
	if (stamp_reward && integer(c, "redeemed") == 0 && integer(c, "discount") > 0)
		out.push_back(row("Discount", money(c, integer(c, "discount")), width));
	membership_line(out, c, width);
	if (integer(c, "pending") > 0 && !text(c, "available_on").empty())
		out.push_back(row("Available on", text(c, "available_on"), width));
	out.push_back(row("New balance", points(c["balance"]), width));
	if (!text(c, "expires_on").empty() && integer(c, "earned") > 0)
		out.push_back(row("Points expire", text(c, "expires_on"), width));
	if (c.value("replayed", false))
		out.push_back("(copy: this receipt was recorded before)");
	return out;
}

std::vector<std::string> refund_lines(const Json &r, int width)
{
	std::vector<std::string> out;
	out.push_back(row("Refund of", text(r, "receipt_id"), width));
	out.push_back(row("Points taken back", signed_points(-integer(r, "points_reversed")), width));
	if (integer(r, "points_returned") > 0)
		out.push_back(row("Points given back", signed_points(integer(r, "points_returned")), width));
	out.push_back(row("New balance", points(r["balance"]), width));
	return out;
}

std::vector<std::string> donation_lines(const Json &d, int width)
{
	std::vector<std::string> out;
	out.push_back(row("Loyalty " + text(d, "card"), "donation", width));
	out.push_back(row("Given to", text(d, "charity"), width));
	out.push_back(row("Points", signed_points(-integer(d, "points")), width));
	out.push_back(row("New balance", points(d["balance"]), width));
	out.push_back("Thank you for your gift.");
	return out;
}

} // namespace loy::fw
