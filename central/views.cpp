// The commands' results as JSON (views.hpp).
#include "central/views.hpp"

#include "base/timeutil.hpp"

namespace loy::central {

namespace {

ViewJson optional_text(const std::optional<std::string> &v) { return v ? ViewJson(*v) : ViewJson(nullptr); }

std::string utc_time(int64_t utc_s) { return format_timestamp(Timestamp{utc_s, 0}); }

ViewJson terminal_json(const TerminalReport &t)
{
	ViewJson flags = ViewJson::array();
	for (const auto &f : clock_flags(t))
		flags.push_back(f);
	return ViewJson{
		{"terminal_id", t.terminal_id},
		{"store", t.store},
		{"acked_through", t.acked_through},
		{"last_push", t.last_push_utc ? ViewJson(utc_time(*t.last_push_utc)) : ViewJson(nullptr)},
		{"clock_skew_s", t.clock_skew_s ? ViewJson(*t.clock_skew_s) : ViewJson(nullptr)},
		{"max_clock_skew_s", t.max_clock_skew_s},
		{"entries_clock_back", t.entries_clock_back},
		{"entries_from_future", t.entries_from_future},
		{"clock_flags", flags},
		{"refused_pushes", t.refused_pushes},
		{"last_refusal", t.last_refusal ? ViewJson{{"at", utc_time(t.last_refusal->at_utc)},
							   {"message", t.last_refusal->message}}
						: ViewJson(nullptr)}};
}

} // namespace

std::vector<std::string> clock_flags(const TerminalReport &t)
{
	std::vector<std::string> flags;
	if (t.skewed())
		flags.push_back("skewed");
	if (t.went_back())
		flags.push_back("went_back");
	if (t.future_entries())
		flags.push_back("future_entries");
	return flags;
}

ViewJson published_json(const Published &p)
{
	return ViewJson{{"program", p.program}, {"version", p.version}, {"published", p.published}};
}

ViewJson enrolled_json(const MarkedCard &c) { return ViewJson{{"card", c.card}, {"known", true}}; }

ViewJson blocked_json(const MarkedCard &c) { return ViewJson{{"card", c.card}, {"blocked", true}}; }

ViewJson balance_json(const Balance &b)
{
	const MemberInfo &m = b.member;
	ViewJson out;
	out["card"] = b.card;
	out["known"] = m.known;
	out["balance"] = m.balance;
	out["pending"] = m.pending;
	out["tier"] = m.tier.empty() ? ViewJson(nullptr) : ViewJson(m.tier);
	out["qualifying_spend"] = m.qualifying_spend;
	out["blocked"] = m.blocked;
	out["next_expiry"] = optional_text(m.next_expiry);
	out["segments"] = m.segments;
	out["stamps"] = ViewJson::object();
	for (const auto &[card, n] : m.stamps)
		out["stamps"][card] = n;
	const auto *last = latest_run(m.memberships);
	out["membership"] = last ? ViewJson{{"id", last->first}, {"until", format_date(last->second.until)}}
				 : ViewJson(nullptr);
	out["referral"] = m.referral ? ViewJson{{"referrer", m.referral->referrer},
						{"status", m.referral->status},
						{"reason", m.referral->reason}}
				     : ViewJson(nullptr);
	return out;
}

ViewJson statement_json(const Statement &s)
{
	ViewJson out = balance_json(s.balance);
	ViewJson history = ViewJson::array();
	for (const auto &h : s.history)
		history.push_back(ViewJson{{"at", utc_time(h.at_utc)},
					   {"terminal", h.terminal},
					   {"receipt", h.receipt},
					   {"kind", h.kind},
					   {"points", h.points}});
	ViewJson lots = ViewJson::array();
	for (const auto &l : s.lots)
		lots.push_back(ViewJson{{"earned_at", l.earned_at_utc ? ViewJson(utc_time(*l.earned_at_utc)) : ViewJson(nullptr)},
					{"points", l.points},
					{"expires", l.expires_at_utc ? ViewJson(format_date(Timestamp{*l.expires_at_utc, 0}.local_date()))
								     : ViewJson(nullptr)}});
	out["history"] = history;
	out["lots"] = lots;
	return out;
}

ViewJson settlement_json(const Settlement &s)
{
	ViewJson partners = ViewJson::array();
	for (const auto &x : s.partners)
		partners.push_back(ViewJson{{"partner", x.partner},
					    {"issued", x.issued},
					    {"redeemed", x.redeemed},
					    {"owes", x.owes},
					    {"credit", x.credit},
					    {"net", x.net}});
	return ViewJson{{"from", format_date(s.from)}, {"until", format_date(s.until)}, {"partners", partners}};
}

ViewJson report_json(const Report &r)
{
	ViewJson terminals = ViewJson::array();
	for (const auto &t : r.terminals)
		terminals.push_back(terminal_json(t));
	ViewJson stores = ViewJson::array();
	for (const auto &s : r.stores)
		stores.push_back(ViewJson{{"store", s.store},
					  {"points_issued", s.points.issued},
					  {"points_redeemed", s.points.redeemed},
					  {"points_expired", s.points.expired},
					  {"points_donated", s.points.donated},
					  {"points_outstanding", s.points.outstanding()}});
	ViewJson donations = ViewJson::array();
	for (const auto &c : r.donations)
		donations.push_back(ViewJson{{"charity", c.charity}, {"points", c.points}, {"value", c.value}});
	ViewJson campaigns = ViewJson::array();
	for (const auto &c : r.campaigns)
		campaigns.push_back(ViewJson{{"id", c.id}, {"points", c.points}, {"spend", c.spend}});
	ViewJson days = ViewJson::array();
	for (const auto &d : r.days)
		days.push_back(ViewJson{{"date", format_date(d.date)},
					{"receipts", d.receipts},
					{"members", d.members},
					{"spend", d.spend},
					{"points_issued", d.points.issued},
					{"points_redeemed", d.points.redeemed}});
	ViewJson out;
	out["members"] = r.members;
	out["points_issued"] = r.points.issued;
	out["points_redeemed"] = r.points.redeemed;
	out["points_expired"] = r.points.expired;
	out["points_donated"] = r.points.donated;
	out["points_outstanding"] = r.points.outstanding();
	out["liability"] = r.liability;
	out["active_members"] = r.active_members;
	out["new_members"] = r.new_members;
	out["repeat_members"] = r.repeat_members;
	out["receipts"] = r.receipts;
	out["spend"] = r.spend;
	out["average_basket"] = r.average_basket;
	out["redemption_rate_bp"] = r.redemption_rate_bp;
	out["breakage_bp"] = r.breakage_bp;
	out["repeat_rate_bp"] = r.repeat_rate_bp;
	out["campaigns"] = campaigns;
	out["days"] = days;
	out["terminals"] = terminals;
	out["stores"] = stores;
	out["donations"] = donations;
	return out;
}

ViewJson fraud_json(const std::vector<FraudFlag> &flags)
{
	ViewJson out = ViewJson::array();
	for (const auto &f : flags)
		out.push_back(ViewJson{{"card", f.card},
				       {"rule", f.rule},
				       {"detail", f.detail},
				       {"first_seen", utc_time(f.first_seen)}});
	return ViewJson{{"flags", out}};
}

Result<ReportQuery> report_query(const std::optional<std::string> &from, const std::optional<std::string> &until,
				 const std::optional<std::string> &store)
{
	ReportQuery q;
	if (from) {
		auto d = parse_date(*from);
		if (!d)
			return Status(Code::bad_argument, "from: " + d.status().message());
		q.from = *d;
	}
	if (until) {
		auto d = parse_date(*until);
		if (!d)
			return Status(Code::bad_argument, "until: " + d.status().message());
		q.until = *d;
	}
	if (q.from && q.until && *q.until <= *q.from)
		return Status(Code::bad_argument, "until must be after from (the range is [from, until))");
	if (store) {
		if (store->empty() || store->size() > 64)
			return Status(Code::bad_argument, "store must be a store name of 1 to 64 bytes");
		q.store = *store;
	}
	return q;
}

} // namespace loy::central
