// JSON encoding of checkouts and receipts.
#include "core/receipt_json.hpp"

#include <fmt/format.h>

#include "base/json_reader.hpp"

namespace loy {

namespace {

Json breakdown_json(const std::vector<Part> &parts)
{
	Json arr = Json::array();
	for (const auto &p : parts)
		arr.push_back(Json::object({{"rule", p.rule}, {"points", p.points}}));
	return arr;
}

} // namespace

std::string checkout_json(const Checkout &c)
{
	Json doc = Json::object({{"tier", c.tier},
				 {"earned", c.earned},
				 {"redeemed", c.redeemed},
				 {"discount", c.discount},
				 {"member_discount", c.member_discount},
				 {"eligible_spend", c.eligible},
				 {"breakdown", breakdown_json(c.breakdown)}});
	return doc.dump();
}

Receipt make_receipt(const Basket &b, const Checkout &c, const Member &m, const Redemption &r)
{
	Receipt rc;
	rc.basket = b;
	rc.tier = c.tier;
	rc.segments = c.segments;
	rc.blocked = m.blocked;
	rc.redemption = r;
	rc.earned = c.earned;
	rc.redeemed = c.redeemed;
	rc.eligible = c.eligible;
	rc.returned.assign(b.lines.size(), 0);
	for (const auto &s : c.stamps)
		rc.stamps.push_back(StampChange{s.id, s.earned, s.used, std::nullopt});
	rc.memberships_before = c.memberships_before;
	return rc;
}

void apply_refund(Receipt &r, const Refund &f)
{
	r.returned = f.returned;
	r.eligible = f.eligible_after;
	r.reversed_so_far += f.points_reversed;
	r.returned_so_far += f.points_returned;
	for (const auto &s : f.stamps) {
		r.stamps_reversed_so_far[s.id] += s.earned;
		if (s.used > 0)
			r.stamps_used_returned = true;
	}
}

std::string receipt_to_json(const Receipt &r)
{
	Json redemption = nullptr;
	if (r.redemption.kind == RedeemKind::points)
		redemption = Json::object({{"points", r.redemption.points}});
	else if (r.redemption.kind == RedeemKind::reward)
		redemption = Json::object({{"reward", r.redemption.reward}});
	else if (r.redemption.kind == RedeemKind::stamp_card)
		redemption = Json::object({{"stamp_card", r.redemption.reward}});
	Json doc = Json::object({{"basket", Json::parse(basket_canonical_json(r.basket))},
				 {"tier", r.tier},
				 {"blocked", r.blocked},
				 {"redemption", redemption},
				 {"earned", r.earned},
				 {"redeemed", r.redeemed},
				 {"eligible", r.eligible},
				 {"returned", r.returned},
				 {"reversed_so_far", r.reversed_so_far},
				 {"returned_so_far", r.returned_so_far}});
	if (!r.segments.empty())
		doc["segments"] = r.segments;
	// Stamps only when the checkout touched a stamp card: receipts of
	// earlier builds read back the same.
	if (!r.stamps.empty()) {
		Json stamps = Json::array();
		for (const auto &s : r.stamps) {
			auto back = r.stamps_reversed_so_far.find(s.id);
			stamps.push_back({{"id", s.id},
					  {"earned", s.earned},
					  {"used", s.used},
					  {"reversed_so_far", back == r.stamps_reversed_so_far.end() ? 0 : back->second}});
		}
		doc["stamps"] = stamps;
		doc["stamps_used_returned"] = r.stamps_used_returned;
	}
	if (!r.memberships_before.empty())
		doc["memberships_before"] = r.memberships_before;
	return doc.dump();
}

Result<Receipt> receipt_from_json(std::string_view text)
{
	auto doc = json_parse(text, Code::bad_json, "receipt");
	if (!doc)
		return doc.status();
	JsonReader r(*doc, "receipt", Code::bad_json);
	LOY_TRY(r.expect_object());
	if (!r.has("basket"))
		return r.field_error("basket", "is missing");
	auto basket = parse_basket(doc->at("basket").dump());
	if (!basket)
		return Status(Code::bad_json, "receipt." + basket.status().message());
	Receipt rc;
	rc.basket = std::move(basket).value();
	auto tier = r.string("tier", name_length_max);
	if (!tier)
		return tier.status();
	rc.tier = *tier;
	auto blocked = r.child("blocked");
	if (!blocked.node().is_boolean())
		return blocked.error("must be true or false");
	rc.blocked = blocked.node().get<bool>();
	if (r.has("segments")) {
		auto segs = r.child("segments");
		auto n = segs.array_size(program_segments_max);
		if (!n)
			return n.status();
		for (size_t i = 0; i < *n; i++) {
			auto name = segs.element(i).as_string(name_length_max);
			if (!name)
				return name.status();
			rc.segments.push_back(*name);
		}
	}
	if (r.has("memberships_before")) {
		auto ids = r.child("memberships_before");
		auto n = ids.array_size(program_memberships_max);
		if (!n)
			return n.status();
		for (size_t i = 0; i < *n; i++) {
			auto id = ids.element(i).as_string(name_length_max);
			if (!id)
				return id.status();
			rc.memberships_before.push_back(*id);
		}
	}
	auto red = r.child("redemption");
	if (red.has("points")) {
		auto p = red.integer("points", 1, INT64_MAX);
		if (!p)
			return p.status();
		rc.redemption = Redemption::of_points(*p);
	} else if (red.has("reward")) {
		auto id = red.string("reward", name_length_max);
		if (!id)
			return id.status();
		rc.redemption = Redemption::of_reward(*id);
	} else if (red.has("stamp_card")) {
		auto id = red.string("stamp_card", name_length_max);
		if (!id)
			return id.status();
		rc.redemption = Redemption::of_stamp_card(*id);
	}
	if (r.has("stamps")) {
		auto list = r.child("stamps");
		auto n = list.array_size(program_stamp_cards_max);
		if (!n)
			return n.status();
		for (size_t i = 0; i < *n; i++) {
			auto e = list.element(i);
			auto id = e.string("id", name_length_max);
			if (!id)
				return id.status();
			auto earned = e.integer("earned", 0, INT64_MAX);
			if (!earned)
				return earned.status();
			auto used = e.integer("used", 0, stamps_max);
			if (!used)
				return used.status();
			auto back = e.integer("reversed_so_far", 0, *earned);
			if (!back)
				return back.status();
			rc.stamps.push_back(StampChange{*id, *earned, *used, std::nullopt});
			if (*back > 0)
				rc.stamps_reversed_so_far[*id] = *back;
		}
		auto ur = r.child("stamps_used_returned");
		if (!ur.node().is_boolean())
			return ur.error("must be true or false");
		rc.stamps_used_returned = ur.node().get<bool>();
	}
	struct Field {
		const char *key;
		int64_t *to;
	} fields[] = {{"earned", &rc.earned},
		      {"redeemed", &rc.redeemed},
		      {"eligible", &rc.eligible},
		      {"reversed_so_far", &rc.reversed_so_far},
		      {"returned_so_far", &rc.returned_so_far}};
	for (const auto &f : fields) {
		auto v = r.integer(f.key, 0, INT64_MAX);
		if (!v)
			return v.status();
		*f.to = *v;
	}
	auto ret = r.child("returned");
	auto n = ret.array_size(basket_lines_max);
	if (!n)
		return n.status();
	if (*n != rc.basket.lines.size())
		return ret.error(fmt::format("has {} entries for {} basket lines", *n,
					     rc.basket.lines.size()));
	for (size_t i = 0; i < *n; i++) {
		auto v = ret.element(i).as_integer(0, rc.basket.lines[i].qty);
		if (!v)
			return v.status();
		rc.returned.push_back(*v);
	}
	if (rc.reversed_so_far > rc.earned || rc.returned_so_far > rc.redeemed)
		return r.error("has moved back more points than the checkout did");
	return rc;
}

} // namespace loy
