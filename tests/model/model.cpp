// Independent reference model of the loyalty-points rules (spec: program.md).
// Written plainly from the spec; favours obvious correctness over speed.
// Must not share code with core/.
#include "model.hpp"

#include <algorithm>
#include <climits>
#include <stdexcept>

#if defined(__SIZEOF_INT128__)
typedef __int128 i128;
#else
#error "model.cpp needs __int128 for exact arithmetic"
#endif

namespace model {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------- helpers

long long to_ll(i128 v, const char* what) {
    if (v > (i128)LLONG_MAX || v < (i128)LLONG_MIN)
        throw std::invalid_argument(std::string("model: 64-bit overflow in ") + what);
    return (long long)v;
}

long long num(const json& j, const char* key, long long dflt) {
    if (!j.is_object() || !j.contains(key) || j.at(key).is_null()) return dflt;
    return j.at(key).get<long long>();
}

std::string str(const json& j, const char* key) {
    if (!j.is_object() || !j.contains(key) || j.at(key).is_null()) return "";
    return j.at(key).get<std::string>();
}

bool list_has(const json& obj, const char* key, const std::string& v) {
    if (!obj.is_object() || !obj.contains(key)) return false;
    for (const auto& e : obj.at(key))
        if (e.get<std::string>() == v) return true;
    return false;
}

// "YYYY-MM-DD..." -> days since 1970-01-01 (proleptic Gregorian).
long long day_number(const std::string& s) {
    if (s.size() < 10) throw std::invalid_argument("model: bad date " + s);
    long long y = std::stoll(s.substr(0, 4));
    long long mo = std::stoll(s.substr(5, 2));
    long long d = std::stoll(s.substr(8, 2));
    // Howard Hinnant's days_from_civil
    y -= mo <= 2 ? 1 : 0;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

// 1970-01-01 was a Thursday.
std::string weekday_name(long long dn) {
    static const char* names[7] = {"thu", "fri", "sat", "sun", "mon", "tue", "wed"};
    long long k = dn % 7;
    if (k < 0) k += 7;
    return names[k];
}

// One basket line as the accrual sees it.
struct Line {
    std::string sku;
    std::string category;
    long long qty = 0;        // units sold originally
    long long units = 0;      // units present (sold, or remaining after refunds)
    long long unit_price = 0;
    long long line_discount = 0;
    bool eligible = false;
    i128 net = 0;             // net after line discount and after redemption
    long long given = 0;      // units given by a reward on this line (0 or 1)
};

// ---------------------------------------------------------------- paid memberships (spec v2)

// The membership a line of `sku` buys, if any.
const json* membership_of_sku(const json& program, const std::string& sku) {
    if (!program.contains("memberships")) return nullptr;
    for (const auto& ms : program.at("memberships"))
        if (str(ms, "sku") == sku) return &ms;
    return nullptr;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
}

// "Running on day d": from <= d < until.
bool runs_on(const Run& r, long long day) { return r.from <= day && day < r.until; }

// A line that buys a membership earns nothing and counts for nothing: it is not
// eligible (not in S, no member price, no share of a redemption, no stamps, no
// item_bonus).
bool is_eligible(const json& program, const std::string& sku, const std::string& category) {
    if (membership_of_sku(program, sku)) return false;
    const json ex = program.contains("exclude") ? program.at("exclude") : json::object();
    if (list_has(ex, "categories", category)) return false;
    if (list_has(ex, "skus", sku)) return false;
    return true;
}

// Build the lines with `units[i]` units present; net = units*price - floor(discount*units/qty).
std::vector<Line> make_lines(const json& program, const json& basket, const std::vector<long long>& units) {
    std::vector<Line> out;
    const json& lines = basket.at("lines");
    for (size_t i = 0; i < lines.size(); ++i) {
        const json& l = lines[i];
        Line x;
        x.sku = str(l, "sku");
        x.category = str(l, "category");
        x.qty = num(l, "qty", 0);
        x.units = units[i];
        x.unit_price = num(l, "unit_price", 0);
        x.line_discount = num(l, "discount", 0);
        x.eligible = is_eligible(program, x.sku, x.category);
        if (x.qty <= 0) throw std::invalid_argument("model: qty must be positive");
        i128 kept_discount = (i128)x.line_discount * x.units / x.qty;
        x.net = (i128)x.units * x.unit_price - kept_discount;
        if (x.net < 0) throw std::invalid_argument("model: negative line net");
        out.push_back(x);
    }
    return out;
}

i128 eligible_total(const std::vector<Line>& lines) {
    i128 s = 0;
    for (const auto& l : lines)
        if (l.eligible) s += l.net;
    return s;
}

// Spread `amount` over the eligible lines in proportion to their net, by largest
// remainder (ties to the earlier line). Capped at the eligible total.
// Returns the amount actually taken off.
i128 spread(std::vector<Line>& lines, i128 amount) {
    i128 total = eligible_total(lines);
    if (amount > total) amount = total;
    if (amount <= 0 || total <= 0) return 0;
    std::vector<size_t> idx;
    std::vector<i128> share(lines.size(), 0), rem(lines.size(), 0);
    i128 given = 0;
    for (size_t i = 0; i < lines.size(); ++i) {
        if (!lines[i].eligible) continue;
        i128 p = amount * lines[i].net;
        share[i] = p / total;
        rem[i] = p % total;
        given += share[i];
        idx.push_back(i);
    }
    i128 left = amount - given;
    // order: largest remainder first, ties to the earlier line
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return rem[a] > rem[b]; });
    for (size_t k = 0; k < idx.size() && left > 0; ++k, --left) share[idx[k]] += 1;
    if (left != 0) throw std::logic_error("model: largest remainder did not converge");
    for (size_t i = 0; i < lines.size(); ++i) lines[i].net -= share[i];
    return amount;
}

// Take one unit price of the reward off line `li` (not below 0); mark one unit given.
i128 apply_reward(std::vector<Line>& lines, size_t li) {
    Line& l = lines[li];
    i128 take = std::min<i128>((i128)l.unit_price, l.net);
    if (take < 0) take = 0;
    l.net -= take;
    l.given = 1;
    return take;
}

// First line (any line) whose sku is `sku`; lines.size() if none.
size_t first_line_with_sku(const json& basket, const std::string& sku) {
    const json& lines = basket.at("lines");
    for (size_t i = 0; i < lines.size(); ++i)
        if (str(lines[i], "sku") == sku) return i;
    return lines.size();
}

const json* find_reward(const json& program, const std::string& id) {
    if (!program.contains("rewards")) return nullptr;
    for (const auto& rw : program.at("rewards"))
        if (str(rw, "id") == id) return &rw;
    return nullptr;
}

// ---------------------------------------------------------------- stamp cards (spec v2)

const json* find_stamp_card(const json& program, const std::string& id) {
    if (!program.contains("stamp_cards")) return nullptr;
    for (const auto& c : program.at("stamp_cards"))
        if (str(c, "id") == id) return &c;
    return nullptr;
}

// A card counts the units of its `sku`, or of its `category` when it names one instead.
bool card_counts(const json& card, const Line& l) {
    if (card.contains("category")) return l.category == str(card, "category");
    return l.sku == str(card, "sku");
}

// Stamps the lines give a card: one per eligible unit sold, i.e. present and not
// given by a reward or by a stamp card.
i128 stamps_of(const json& card, const std::vector<Line>& lines) {
    i128 n = 0;
    for (const auto& l : lines) {
        if (!l.eligible || !card_counts(card, l)) continue;
        i128 sold = (i128)l.units - l.given;
        if (sold > 0) n += sold;
    }
    return n;
}

long long held_stamps(const Member& m, const std::string& id) {
    auto it = m.stamps.find(id);
    return it == m.stamps.end() ? 0 : it->second;
}

const json& tier_for_spend(const json& program, long long qs) {
    const json& tiers = program.at("tiers");
    const json* best = nullptr;
    for (const auto& t : tiers)
        if (num(t, "spend", 0) <= qs) best = &t;  // sorted by spend: last match is highest
    if (!best) best = &tiers.at(0);
    return *best;
}

const json& tier_by_name(const json& program, const std::string& name) {
    for (const auto& t : program.at("tiers"))
        if (str(t, "name") == name) return t;
    throw std::invalid_argument("model: unknown tier " + name);
}

// floor(base_spend * earn.points * (pct - 100) / (earn.per * 100)); C++ division truncates toward zero.
i128 mult_part(const json& program, i128 base_spend, long long pct) {
    const json& earn = program.at("earn");
    i128 p = num(earn, "points", 0), per = num(earn, "per", 0);
    if (per == 0) throw std::invalid_argument("model: earn.per is 0");
    return base_spend * p * ((i128)pct - 100) / (per * 100);
}

// Member price (spec v2): each eligible line's net lowered by floor(net * discount_pct / 100)
// of the member's tier. Returns the sum taken off (the checkout's member_discount).
i128 apply_member_price(std::vector<Line>& lines, const json& tier) {
    const long long pct = num(tier, "discount_pct", 0);
    if (pct < 0 || pct > 100) throw std::invalid_argument("model: discount_pct outside 0-100");
    i128 total = 0;
    for (auto& l : lines) {
        if (!l.eligible) continue;
        i128 off = l.net * pct / 100;
        l.net -= off;
        total += off;
    }
    return total;
}

// The segments a member is in: an unknown card is in none.
std::vector<std::string> member_segments(const Member& m) {
    if (!m.known) return {};
    return m.segments;
}

// Segments filter (spec v2): absent = everyone; else the member must be in at least
// one of the listed segments (an empty list matches no one).
bool segments_match(const json& c, const std::vector<std::string>& segs) {
    if (!c.contains("segments")) return true;
    for (const auto& e : c.at("segments"))
        if (std::find(segs.begin(), segs.end(), e.get<std::string>()) != segs.end()) return true;
    return false;
}

// Do all optional filters of campaign c hold?
bool campaign_applies(const json& c, long long local_day, const std::string& tier_name, i128 S,
                      const std::vector<std::string>& segs) {
    if (!segments_match(c, segs)) return false;
    if (c.contains("from") && local_day < day_number(str(c, "from"))) return false;
    if (c.contains("until") && local_day >= day_number(str(c, "until"))) return false;
    if (c.contains("days") && !list_has(c, "days", weekday_name(local_day))) return false;
    if (c.contains("tiers") && !list_has(c, "tiers", tier_name)) return false;
    if (c.contains("min_spend") && S < (i128)num(c, "min_spend", 0)) return false;
    return true;
}

// Steps 3-5 of Accrual over lines whose net already includes the redemption.
// `running`: the ids of the memberships that run for this receipt; each gives a part
// `membership:<id>` like a multiplier campaign (no cap), after the campaigns, in
// program order.
std::vector<Part> accrue(const json& program, const json& basket, const json& tier,
                         const std::vector<std::string>& segs, const std::vector<Line>& lines,
                         const std::vector<std::string>& running, i128& S_out) {
    const json& earn = program.at("earn");
    i128 p = num(earn, "points", 0), per = num(earn, "per", 0);
    if (per == 0) throw std::invalid_argument("model: earn.per is 0");

    i128 S = eligible_total(lines);
    S_out = S;
    std::string tier_name = str(tier, "name");
    long long local_day = day_number(str(basket, "at"));

    std::vector<Part> out;
    out.push_back({"base", to_ll(S * p / per, "base")});

    i128 tp = mult_part(program, S, num(tier, "multiplier_pct", 100));
    if (tp != 0) out.push_back({"tier:" + tier_name, to_ll(tp, "tier")});

    if (program.contains("campaigns")) {
        for (const auto& c : program.at("campaigns")) {
            if (!campaign_applies(c, local_day, tier_name, S, segs)) continue;
            std::string kind = str(c, "kind");
            i128 part = 0;
            if (kind == "multiplier") {
                part = mult_part(program, S, num(c, "multiplier_pct", 100));
            } else if (kind == "category_multiplier") {
                std::string cat = str(c, "category");
                i128 Sc = 0;
                for (const auto& l : lines)
                    if (l.eligible && l.category == cat) Sc += l.net;
                part = mult_part(program, Sc, num(c, "multiplier_pct", 100));
            } else if (kind == "spend_bonus") {
                if (S >= (i128)num(c, "min_spend", 0)) part = num(c, "points", 0);
            } else if (kind == "item_bonus") {
                bool by_cat = c.contains("category");
                std::string key = by_cat ? str(c, "category") : str(c, "sku");
                i128 sold = 0;
                for (const auto& l : lines) {
                    if (!l.eligible) continue;
                    if ((by_cat ? l.category : l.sku) != key) continue;
                    sold += l.units - l.given;
                }
                if (sold < 0) sold = 0;
                part = (i128)num(c, "points", 0) * sold;
            } else {
                throw std::invalid_argument("model: unknown campaign kind " + kind);
            }
            if (c.contains("cap") && part > (i128)num(c, "cap", 0)) part = num(c, "cap", 0);
            if (part != 0) out.push_back({str(c, "id"), to_ll(part, "campaign")});
        }
    }
    if (program.contains("memberships")) {
        for (const auto& ms : program.at("memberships")) {
            const std::string id = str(ms, "id");
            if (!contains(running, id)) continue;
            i128 part = mult_part(program, S, num(ms, "multiplier_pct", 100));
            if (part != 0) out.push_back({"membership:" + id, to_ll(part, "membership")});
        }
    }
    return out;
}

long long sum_parts(const std::vector<Part>& b) {
    i128 s = 0;
    for (const auto& x : b) s += x.points;
    return to_ll(s, "earned");
}

std::vector<long long> full_units(const json& basket) {
    std::vector<long long> u;
    for (const auto& l : basket.at("lines")) u.push_back(num(l, "qty", 0));
    return u;
}

// Take `n` units of `sku` off `units`, each line with that sku in order, first line first.
void take_units(const json& basket, std::vector<long long>& units, const std::string& sku, long long n) {
    if (n < 0) throw std::invalid_argument("model: negative units returned");
    const json& lines = basket.at("lines");
    bool seen = false;
    for (size_t i = 0; i < lines.size() && n > 0; ++i) {
        if (str(lines[i], "sku") != sku) continue;
        seen = true;
        long long t = std::min(n, units[i]);
        units[i] -= t;
        n -= t;
    }
    if (!seen && first_line_with_sku(basket, sku) == lines.size())
        throw std::invalid_argument("model: sku not on receipt: " + sku);
    if (n > 0) throw std::invalid_argument("model: more units returned than sold for " + sku);
}

}  // namespace

// ---------------------------------------------------------------- checkout

Checkout checkout(const json& program, const json& basket, const Member& m, const Redeem& r) {
    Checkout out;
    const json& tier = tier_for_spend(program, m.qualifying_spend);
    out.tier = str(tier, "name");

    const bool by_points = r.points != 0;
    const bool by_reward = !r.reward.empty();
    const bool by_stamp = !r.stamp_card.empty();
    if ((int)by_points + (int)by_reward + (int)by_stamp > 1)
        throw std::invalid_argument("model: more than one redemption");
    if (r.points < 0) throw std::invalid_argument("model: negative points");

    std::vector<Line> lines = make_lines(program, basket, full_units(basket));
    // Member price right after step 1; a blocked card gets none.
    const i128 member_discount = m.blocked ? 0 : apply_member_price(lines, tier);
    const i128 S0 = eligible_total(lines);

    const json redeem = program.contains("redeem") ? program.at("redeem") : json::object();
    const long long point_value = num(redeem, "point_value", 0);
    const json* reward = nullptr;
    if (by_reward) {
        reward = find_reward(program, r.reward);
        if (!reward) throw std::invalid_argument("model: unknown reward " + r.reward);
    }
    const json* card = nullptr;
    if (by_stamp) {
        card = find_stamp_card(program, r.stamp_card);
        if (!card) throw std::invalid_argument("model: unknown stamp card " + r.stamp_card);
    }
    const json no_cards = json::array();
    const json& cards = program.contains("stamp_cards") ? program.at("stamp_cards") : no_cards;

    // Paid memberships: those held (none for a card whose balance is unknown) and
    // those running on the basket's local date before it.
    const long long day = day_number(str(basket, "at"));
    const std::map<std::string, Run> held = m.known ? m.memberships : std::map<std::string, Run>{};
    std::vector<std::string> before;
    if (program.contains("memberships"))
        for (const auto& ms : program.at("memberships")) {
            auto it = held.find(str(ms, "id"));
            if (it != held.end() && runs_on(it->second, day)) before.push_back(str(ms, "id"));
        }
    bool buys_membership = false;
    for (const auto& l : basket.at("lines"))
        if (membership_of_sku(program, str(l, "sku"))) buys_membership = true;

    // Blocked: earns nothing (no points, no stamps), redeems nothing, and cannot buy
    // a membership (declined before the redemption's checks).
    if (m.blocked) {
        if (buys_membership || by_points || by_reward || by_stamp) {
            out.decline = "blocked";
            return out;
        }
        out.eligible_spend = to_ll(S0, "S");
        out.breakdown.push_back({"base", 0});
        out.earned = 0;
        for (const auto& c : cards)
            out.stamps.push_back({str(c, "id"), 0, 0, m.known, m.known ? held_stamps(m, str(c, "id")) : 0});
        out.memberships_before = before;
        out.memberships = held;
        return out;
    }

    // A stamp card's reward (spec v2): declined, never clipped. Checked in the order of
    // a reward's: stamps known, the reward's sku in the basket, enough stamps, then the
    // offline bound (one stamp reward a member, terminal and local day). The points
    // balance and the daily points cap are not involved.
    if (by_stamp) {
        if (!m.known) { out.decline = "balance_unknown"; return out; }
        size_t rl = first_line_with_sku(basket, str(*card, "reward_sku"));
        if (rl == lines.size()) { out.decline = "reward_not_in_basket"; return out; }
        if (held_stamps(m, r.stamp_card) < num(*card, "stamps", 0)) { out.decline = "insufficient_stamps"; return out; }
        if (m.stamp_reward_today) { out.decline = "stamp_daily_limit"; return out; }
        out.discount = to_ll(apply_reward(lines, rl), "discount");
        out.redeemed = 0;
    }

    i128 points = 0;  // points the redemption costs
    i128 D = 0;
    if (by_points) {
        points = r.points;
        D = points * point_value;
    } else if (by_reward) {
        points = num(*reward, "cost", 0);
    }

    if (by_points || by_reward) {
        if (!m.known) { out.decline = "balance_unknown"; return out; }
        if (by_points && points < (i128)num(redeem, "min_points", 0)) { out.decline = "below_min_points"; return out; }
        if (by_points && D > S0 * (i128)num(redeem, "max_pct", 0) / 100) { out.decline = "over_max_pct"; return out; }
        size_t rl = lines.size();
        if (by_reward) {
            rl = first_line_with_sku(basket, str(*reward, "sku"));
            if (rl == lines.size()) { out.decline = "reward_not_in_basket"; return out; }
        }
        if (points > (i128)m.balance) { out.decline = "insufficient_points"; return out; }
        // Daily cap; a document without the field (invalid per spec) is treated as uncapped.
        if (redeem.contains("offline_daily_cap") &&
            (i128)m.redeemed_today + points > (i128)num(redeem, "offline_daily_cap", 0)) {
            out.decline = "daily_cap";
            return out;
        }
        // apply
        if (by_points) {
            out.discount = to_ll(spread(lines, D), "discount");
        } else {
            out.discount = to_ll(apply_reward(lines, rl), "discount");
        }
        out.redeemed = to_ll(points, "redeemed");
    }

    // The basket's membership lines buy, in line order: `days × qty` days each, from
    // the end of the run of that id when it ends after the basket's local date (one
    // still running, or one starting later: the member holds one run an id), else
    // from the basket's local date. A membership bought here counts for this
    // receipt's other lines, as does one that ran before it: a part for each
    // membership whose run after the purchases covers the basket's local date.
    // A run that starts later is not "still running": the days bought run from
    // the receipt's day (so they count for it), and the later run's days follow.
    out.memberships = held;
    for (const auto& l : basket.at("lines")) {
        const json* ms = membership_of_sku(program, str(l, "sku"));
        if (!ms) continue;
        const std::string id = str(*ms, "id");
        const i128 days = (i128)num(*ms, "days", 0) * num(l, "qty", 0);
        auto it = out.memberships.find(id);
        Run r;
        if (it != out.memberships.end() && runs_on(it->second, day))
            r = {it->second.from, to_ll((i128)it->second.until + days, "membership until")};
        else if (it != out.memberships.end() && it->second.from > day)
            r = {day, to_ll((i128)day + days + (it->second.until - it->second.from), "membership until")};
        else
            r = {day, to_ll((i128)day + days, "membership until")};
        // The engine refuses a run ending more than 36600 days (a century) past the
        // basket's day; outside the model's domain.
        if ((i128)r.until - day > 36600) throw std::invalid_argument("model: membership too long");
        out.memberships[id] = r;
        out.memberships_bought.push_back({id, to_ll(days, "membership days")});
    }
    out.memberships_before = before;
    std::vector<std::string> running;
    for (const auto& kv : out.memberships)
        if (runs_on(kv.second, day)) running.push_back(kv.first);

    i128 S = 0;
    out.breakdown = accrue(program, basket, tier, member_segments(m), lines, running, S);
    out.eligible_spend = to_ll(S, "S");
    out.member_discount = to_ll(member_discount, "member_discount");
    out.earned = sum_parts(out.breakdown);
    for (const auto& c : cards) {
        StampMove sm;
        sm.id = str(c, "id");
        sm.earned = to_ll(stamps_of(c, lines), "stamps earned");
        sm.used = (by_stamp && sm.id == r.stamp_card) ? num(c, "stamps", 0) : 0;
        sm.balance_known = m.known;
        if (m.known) sm.balance = to_ll((i128)held_stamps(m, sm.id) + sm.earned - sm.used, "stamps balance");
        out.stamps.push_back(sm);
    }
    return out;
}

// ---------------------------------------------------------------- donations (spec v2)

std::string donate(const json& program, const Member& m, const std::string& charity, long long points) {
    bool listed_charity = false;
    if (program.contains("charities"))
        for (const auto& c : program.at("charities"))
            if (str(c, "id") == charity) listed_charity = true;
    if (!listed_charity) return "unknown_charity";
    if (points <= 0) return "bad_argument";
    // Declined like a redemption for money, in the same order, without min_points
    // (and without max_pct: there is no basket).
    if (m.blocked) return "blocked";
    if (!m.known) return "balance_unknown";
    if ((i128)points > (i128)m.balance) return "insufficient_points";
    const json redeem = program.contains("redeem") ? program.at("redeem") : json::object();
    if (redeem.contains("offline_daily_cap") &&
        (i128)m.redeemed_today + points > (i128)num(redeem, "offline_daily_cap", 0))
        return "daily_cap";
    return "";
}

// ---------------------------------------------------------------- refund

Refund refund(const json& program, const json& basket, const Member& m, const Redeem& r,
              const Checkout& original, const std::map<std::string, long long>& returned_before,
              const std::map<std::string, long long>& returned_now, const Refund& earlier) {
    if (!original.decline.empty()) throw std::invalid_argument("model: refund of a declined checkout");

    std::vector<long long> units = full_units(basket);
    for (const auto& kv : returned_before) take_units(basket, units, kv.first, kv.second);
    const std::vector<long long> units_before = units;
    long long left_before = 0;
    for (long long u : units) left_before += u;
    if (returned_now.empty()) {
        if (left_before == 0) throw std::domain_error("model: units already refunded");
        for (auto& u : units) u = 0;
    } else {
        long long n = 0;
        for (const auto& kv : returned_now) {
            take_units(basket, units, kv.first, kv.second);
            n += kv.second;
        }
        if (n == 0) throw std::invalid_argument("model: nothing returned");
    }
    bool full = true;
    for (long long u : units)
        if (u != 0) full = false;

    const json redeem = program.contains("redeem") ? program.at("redeem") : json::object();
    const long long point_value = num(redeem, "point_value", 0);
    const bool by_points = r.points != 0;
    const bool by_reward = !r.reward.empty();
    const bool by_stamp = !r.stamp_card.empty();
    const json* card = nullptr;
    if (by_stamp) {
        card = find_stamp_card(program, r.stamp_card);
        if (!card) throw std::invalid_argument("model: unknown stamp card " + r.stamp_card);
    }
    // The line that carried the reward or the stamp card's reward: the first with its sku.
    size_t given_line = basket.at("lines").size();
    if (by_reward) {  // the checkout was accepted: the reward was given
        const json* reward = find_reward(program, r.reward);
        if (!reward) throw std::invalid_argument("model: unknown reward " + r.reward);
        given_line = first_line_with_sku(basket, str(*reward, "sku"));
    } else if (by_stamp) {
        given_line = first_line_with_sku(basket, str(*card, "reward_sku"));
    }

    // The receipt's tier (decided at checkout), whose member price applies again.
    const json& tier = tier_by_name(program, original.tier);

    // Points redeemed that come back: shares of S0, the eligible spend before the
    // redemption (after the member price).
    std::vector<Line> all = make_lines(program, basket, full_units(basket));
    std::vector<Line> lines = make_lines(program, basket, units);
    if (!m.blocked) {
        apply_member_price(all, tier);
        apply_member_price(lines, tier);
    }
    const i128 S0 = eligible_total(all);
    const i128 S0R = eligible_total(lines);
    i128 returned_total;
    if (full) returned_total = original.redeemed;
    else if (S0 == 0) returned_total = 0;
    else returned_total = (i128)original.redeemed * (S0 - S0R) / S0;

    // Points the remaining units would have earned.
    i128 reversed_total;
    if (full) {
        reversed_total = original.earned;
    } else {
        i128 earn_R = 0;
        if (!m.blocked) {
            if (by_points && original.redeemed > 0) {
                spread(lines, ((i128)original.redeemed - returned_total) * point_value);
            } else if (given_line < lines.size()) {
                // A reward or a stamp card's reward stays while its line keeps a unit.
                if (lines[given_line].units >= 1) apply_reward(lines, given_line);
            }
            // A membership runs for the remaining units when it ran before the receipt
            // or a unit of its sku remains on it.
            std::vector<std::string> running = original.memberships_before;
            for (const auto& l : lines) {
                const json* ms = membership_of_sku(program, l.sku);
                if (ms && l.units > 0 && !contains(running, str(*ms, "id"))) running.push_back(str(*ms, "id"));
            }
            i128 S = 0;
            earn_R = sum_parts(accrue(program, basket, tier, member_segments(m), lines, running, S));
        }
        reversed_total = (i128)original.earned - earn_R;
    }

    Refund out;
    // Paid memberships: each unit of a membership's sku returned now takes its `days` off.
    const json& blines = basket.at("lines");
    for (size_t i = 0; i < blines.size(); ++i) {
        const json* ms = membership_of_sku(program, str(blines[i], "sku"));
        if (!ms) continue;
        const i128 back = (i128)(units_before[i] - units[i]) * num(*ms, "days", 0);
        if (back != 0)
            out.membership_days[str(*ms, "id")] =
                to_ll((i128)out.membership_days[str(*ms, "id")] + back, "membership days");
    }
    i128 rev = reversed_total - earlier.points_reversed;
    if (rev < 0) rev = 0;
    out.points_reversed = to_ll(rev, "points_reversed");
    out.points_returned = to_ll(returned_total - earlier.points_returned, "points_returned");

    // Stamps (spec v2). The unit given on its line (by a reward or a stamp card's
    // reward) goes back last: the sold units are returned first, so the line's given
    // unit stays while it keeps any. Taken back = stamps earned at checkout less what
    // the remaining sold units give, less what earlier refunds took back. The used
    // stamps come back once, when the stamp reward's line keeps no unit. A blocked
    // card's receipt gave no stamps and moves none back.
    if (!m.blocked && program.contains("stamp_cards")) {
        std::vector<Line> left = make_lines(program, basket, units);
        if (given_line < left.size() && left[given_line].units >= 1) left[given_line].given = 1;
        for (const auto& c : program.at("stamp_cards")) {
            const std::string id = str(c, "id");
            long long earned = 0, used = 0;
            for (const auto& sm : original.stamps)
                if (sm.id == id) { earned = sm.earned; used = sm.used; }
            auto before_rev = earlier.stamps_reversed.find(id);
            auto before_used = earlier.stamps_used_returned.find(id);
            i128 rev_s = (i128)earned - stamps_of(c, left) -
                         (before_rev == earlier.stamps_reversed.end() ? 0 : before_rev->second);
            if (rev_s < 0) throw std::logic_error("model: stamps came back to a refund");
            i128 used_back = 0;
            if (by_stamp && id == r.stamp_card && given_line < left.size() && left[given_line].units == 0)
                used_back = (i128)used - (before_used == earlier.stamps_used_returned.end() ? 0 : before_used->second);
            if (rev_s != 0) out.stamps_reversed[id] = to_ll(rev_s, "stamps reversed");
            if (used_back != 0) out.stamps_used_returned[id] = to_ll(used_back, "stamps used returned");
        }
    }
    return out;
}

}  // namespace model
