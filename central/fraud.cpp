// The fraud rules' configuration (fraud.hpp).
#include "central/fraud.hpp"

#include <algorithm>
#include <iterator>

#include <fmt/format.h>

#include "base/json_reader.hpp"
#include "base/utf8.hpp"

namespace loy::central {

namespace {

// Every key of `r`'s object is one of `known`.
Status only_keys(const JsonReader &r, std::initializer_list<const char *> known)
{
	for (auto it = r.node().begin(); it != r.node().end(); ++it) {
		const std::string &key = it.key();
		if (std::none_of(known.begin(), known.end(), [&](const char *k) { return key == k; })) {
			std::string shown = utf8_scrub(key.substr(0, 64));
			return r.field_error(shown.c_str(), "is not a setting of the centre's configuration");
		}
	}
	return Status::ok();
}

// An optional whole number in [min, max], or the default in `value`.
Status setting(const JsonReader &r, const char *key, int64_t min, int64_t max, int64_t *value)
{
	auto v = r.opt_integer(key, min, max);
	if (!v)
		return v.status();
	if (*v)
		*value = **v;
	return Status::ok();
}

} // namespace

Result<FraudRules> parse_fraud_rules(std::string_view config_text)
{
	FraudRules rules;
	if (config_text.empty())
		return rules;
	if (config_text.size() > central_config_bytes_max)
		return Status(Code::bad_argument, fmt::format("{}: {} bytes, at most {}", central_config_file,
							      config_text.size(), central_config_bytes_max));
	auto doc = json_parse(config_text, Code::bad_argument, central_config_file);
	if (!doc)
		return doc.status();
	JsonReader top(*doc, central_config_file, Code::bad_argument);
	LOY_TRY(top.expect_object());
	LOY_TRY(only_keys(top, {"fraud"}));
	if (!top.has("fraud"))
		return rules;
	JsonReader fraud = top.child("fraud");
	LOY_TRY(fraud.expect_object());
	LOY_TRY(only_keys(fraud, {"till_velocity", "redeem_spread", "refund_loop", "referral_burst",
				  "negative_balance"}));
	constexpr int64_t many = 1'000'000;
	for (const char *name : fraud_rule_names) {
		if (!fraud.has(name))
			continue;
		JsonReader rule = fraud.child(name);
		LOY_TRY(rule.expect_object());
		const std::string n = name;
		if (n == "till_velocity") {
			LOY_TRY(only_keys(rule, {"receipts", "minutes", "block"}));
			LOY_TRY(setting(rule, "receipts", 1, many, &rules.till_receipts));
			LOY_TRY(setting(rule, "minutes", 1, 7 * 24 * 60, &rules.till_minutes));
		} else if (n == "redeem_spread") {
			LOY_TRY(only_keys(rule, {"stores", "block"}));
			LOY_TRY(setting(rule, "stores", 2, many, &rules.spread_stores));
		} else if (n == "refund_loop") {
			LOY_TRY(only_keys(rule, {"receipts", "days", "block"}));
			LOY_TRY(setting(rule, "receipts", 1, many, &rules.loop_receipts));
			LOY_TRY(setting(rule, "days", 1, 366, &rules.loop_days));
		} else if (n == "referral_burst") {
			LOY_TRY(only_keys(rule, {"cards", "hours", "block"}));
			LOY_TRY(setting(rule, "cards", 1, many, &rules.burst_cards));
			LOY_TRY(setting(rule, "hours", 1, 24 * 366, &rules.burst_hours));
		} else {
			LOY_TRY(only_keys(rule, {"block"}));
		}
		if (rule.has("block")) {
			const Json &b = rule.node().at("block");
			if (!b.is_boolean())
				return rule.field_error("block", "must be true or false, got " + json_excerpt(b));
			if (b.get<bool>())
				rules.block.insert(n);
		}
	}
	return rules;
}

} // namespace loy::central
