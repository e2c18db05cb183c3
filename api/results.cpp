// The terminal's results as cli.md writes them: one function per object,
// keys in cli.md's order, null where a figure is unknown.
#include "api/results.hpp"

namespace loy::api {

namespace {

template <class T> Json or_null(const std::optional<T> &v) { return v ? Json(*v) : Json(nullptr); }

Json breakdown_json(const std::vector<Part> &parts)
{
	Json arr = Json::array();
	for (const auto &p : parts)
		arr.push_back(Json{{"rule", p.rule}, {"points", p.points}});
	return arr;
}

} // namespace

Json to_json(const ProgramLoaded &r)
{
	return Json{
		{"program", r.program}, {"version", r.version}, {"currency", r.currency}, {"loaded", r.loaded}};
}

Json to_json(const Enrolled &r)
{
	return Json{{"card", r.card}, {"known", r.known}, {"enrolled", r.enrolled}};
}

Json to_json(const Donated &r)
{
	return Json{{"card", r.card}, {"charity", r.charity}, {"points", r.points}, {"balance", or_null(r.balance)}};
}

Json membership_json(const std::optional<MembershipShown> &m)
{
	if (!m)
		return nullptr;
	return Json{{"id", m->id}, {"until", m->until}};
}

Json to_json(const CheckoutDone &r)
{
	Json out;
	out["receipt_id"] = r.receipt_id;
	out["card"] = r.card;
	out["tier"] = r.tier;
	out["earned"] = r.earned;
	out["redeemed"] = r.redeemed;
	out["discount"] = r.discount;
	out["member_discount"] = r.member_discount;
	Json stamps = Json::array();
	for (const auto &c : r.stamps)
		stamps.push_back(Json{{"id", c.id}, {"earned", c.earned}, {"used", c.used}, {"balance", or_null(c.balance)}});
	out["stamps"] = std::move(stamps);
	out["membership"] = membership_json(r.membership);
	out["breakdown"] = breakdown_json(r.breakdown);
	out["balance"] = or_null(r.balance);
	out["replayed"] = r.replayed;
	out["pending"] = r.pending;
	out["eligible_spend"] = r.eligible_spend;
	out["currency"] = r.currency;
	out["available_on"] = r.available_on;
	out["expires_on"] = or_null(r.expires_on);
	if (r.blocked)
		out["blocked"] = true;
	return out;
}

Json to_json(const RefundDone &r)
{
	Json out;
	out["receipt_id"] = r.receipt_id;
	out["points_reversed"] = r.points_reversed;
	out["points_returned"] = r.points_returned;
	out["balance"] = or_null(r.balance);
	out["complete"] = r.complete;
	if (r.refund_id) {
		out["refund_id"] = *r.refund_id;
		out["replayed"] = r.replayed;
	}
	return out;
}

Json to_json(const BalanceView &r)
{
	Json out;
	out["card"] = r.card;
	out["known"] = r.known;
	out["tier"] = r.tier;
	out["balance"] = or_null(r.balance);
	out["pending"] = r.pending;
	out["unsynced"] = r.unsynced;
	out["redeemable_today"] = r.redeemable_today;
	out["qualifying_spend"] = r.qualifying_spend;
	out["blocked"] = r.blocked;
	out["next_expiry"] = or_null(r.next_expiry);
	out["segments"] = r.segments;
	out["stamps"] = Json::object();
	for (const auto &[id, n] : r.stamps)
		out["stamps"][id] = n;
	out["membership"] = membership_json(r.membership);
	out["currency"] = r.currency;
	return out;
}

Json to_json(const StatusView &r)
{
	Json out;
	out["terminal_id"] = r.terminal_id;
	out["store"] = r.store;
	if (r.program)
		out["program"] = Json{{"id", r.program->id}, {"version", r.program->version}};
	else
		out["program"] = nullptr;
	out["entries"] = r.entries;
	out["unsynced"] = r.unsynced;
	out["last_sync"] = or_null(r.last_sync);
	out["server"] = or_null(r.server);
	out["tz"] = or_null(r.tz);
	out["behind_centre"] = r.behind_centre;
	return out;
}

Json to_json(const net::SyncReport &r)
{
	Json out;
	out["pushed"] = r.pushed;
	out["acked_through"] = r.acked_through;
	out["members"] = r.members;
	out["program_version"] = r.program_version ? Json(r.program_version) : Json(nullptr);
	// Only when the ledger was behind the centre (sync/PROTOCOL.md).
	if (r.recovered > 0) {
		out["recovered"] = r.recovered;
		out["rebased"] = r.rebased;
		out["dropped"] = r.dropped;
	}
	return out;
}

Json to_json(const Ledger::Verdict &r)
{
	Json out;
	out["ok"] = r.ok;
	out["entries"] = r.entries;
	if (!r.ok) {
		out["first_bad"] = r.first_bad;
		out["problem"] = r.problem;
	}
	return out;
}

} // namespace loy::api
