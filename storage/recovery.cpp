// A ledger behind the centre: the anchor that finds it offline, and the
// recovery that takes back the terminal's own entries from the centre and
// records again, after them, what was recorded here since.
#include <map>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/receipt_json.hpp"
#include "storage/entry_data.hpp"
#include "storage/terminal.hpp"

namespace loy {

using OJson = nlohmann::ordered_json;

namespace {

const std::string zero_hash(64, '0');

Status corrupt(std::string msg) { return Status(Code::storage, "ledger: " + std::move(msg)); }

// An entry of the journal as it stood before a recovery.
struct Orphan {
	Entry e;
	std::string hash, mac; // raw bytes
	int64_t rebased_id = 0;
};

// The receipt state an entry left (its data's "receipt") and the named
// refunds it carried.
struct ReceiptState {
	std::string receipt; // JSON text
	OJson refund_ids = OJson::object();
};

std::optional<ReceiptState> receipt_state(const std::string &data)
{
	auto d = OJson::parse(data, nullptr, false);
	if (d.is_discarded() || !d.is_object() || !d.contains("receipt"))
		return std::nullopt;
	ReceiptState s;
	s.receipt = d["receipt"].dump();
	if (d.contains("refund_ids") && d["refund_ids"].is_object())
		s.refund_ids = d["refund_ids"];
	return s;
}

// The state of `receipt` left by its last checkout or refund entry before
// `before` (0: any), nullopt when none.
Result<std::optional<ReceiptState>> last_receipt_state(Ledger &ledger, const std::string &receipt, int64_t before)
{
	auto st = ledger.db().prepare("SELECT seq FROM journal WHERE receipt_id = ?1 AND kind IN ('checkout', "
				      "'refund') AND (?2 = 0 OR seq < ?2) ORDER BY seq DESC LIMIT 1");
	if (!st)
		return st.status();
	st.value().bind(1, receipt).bind(2, before);
	auto row = st.value().step();
	if (!row)
		return row.status();
	if (!*row)
		return std::optional<ReceiptState>();
	auto data = ledger.entry_data(st.value().int64(0));
	if (!data)
		return data.status();
	auto s = receipt_state(*data);
	if (!s)
		return corrupt(fmt::format("entry {} of receipt {} holds no receipt", st.value().int64(0), receipt));
	return s;
}

// The checkout of `receipt` in the journal: who, under which program, for
// what request (its basket, card and redemption's digest).
struct CheckoutOf {
	std::string token, program_id, request;
	int64_t program_version = 0;
};

Result<std::optional<CheckoutOf>> checkout_of(Ledger &ledger, const std::string &receipt)
{
	auto st = ledger.db().prepare("SELECT seq, token, program_id, program_version FROM journal "
				      "WHERE kind = 'checkout' AND receipt_id = ?1 LIMIT 1");
	if (!st)
		return st.status();
	st.value().bind(1, receipt);
	auto row = st.value().step();
	if (!row)
		return row.status();
	if (!*row)
		return std::optional<CheckoutOf>();
	CheckoutOf c;
	c.token = st.value().text(1);
	c.program_id = st.value().text(2);
	c.program_version = st.value().int64(3);
	auto data = ledger.entry_data(st.value().int64(0));
	if (!data)
		return data.status();
	auto d = OJson::parse(*data, nullptr, false);
	if (d.is_object() && d.contains("request") && d["request"].is_string())
		c.request = d["request"].get<std::string>();
	return std::optional<CheckoutOf>(c);
}

std::string request_of(const std::string &data)
{
	auto d = OJson::parse(data, nullptr, false);
	return d.is_object() && d.contains("request") && d["request"].is_string() ? d["request"].get<std::string>()
										   : std::string();
}

Result<bool> journal_has(Ledger &ledger, const char *sql, const std::string &key)
{
	auto st = ledger.db().prepare(sql);
	if (!st)
		return st.status();
	st.value().bind(1, key);
	auto row = st.value().step();
	if (!row)
		return row.status();
	return *row;
}

} // namespace

Status Terminal::put_anchor(const ChainHead &head)
{
	anchor_ok_ = false;
	return keys_->put_item(ledger_anchor_item, fmt::format("{} {}\n", head.seq, head.hash));
}

Result<std::string> Terminal::entry_hash(int64_t seq)
{
	if (seq == 0)
		return zero_hash;
	auto st = ledger_.db().prepare("SELECT hash FROM journal WHERE seq = ?1");
	if (!st)
		return st.status();
	st.value().bind(1, seq);
	auto row = st.value().step();
	if (!row)
		return row.status();
	if (!*row)
		return std::string();
	const std::string h = st.value().blob(0);
	return crypto::to_hex(reinterpret_cast<const uint8_t *>(h.data()), h.size());
}

Result<std::optional<Terminal::ChainHead>> Terminal::anchor()
{
	auto has = keys_->has(ledger_anchor_item);
	if (!has)
		return has.status();
	if (!*has)
		return std::optional<ChainHead>(); // never synced
	auto text = keys_->item(ledger_anchor_item);
	if (!text)
		return text.status();
	ChainHead head;
	const size_t space = text->find(' ');
	bool number = space != std::string::npos && space > 0 && space <= 18;
	for (size_t i = 0; number && i < space; i++)
		number = (*text)[i] >= '0' && (*text)[i] <= '9';
	if (number) {
		head.seq = std::stoll(text->substr(0, space));
		head.hash = text->substr(space + 1, 64);
	}
	if (!number || head.hash.size() != 64)
		return corrupt(fmt::format("the key store's {} is not \"SEQ HASH\"", ledger_anchor_item));
	return std::optional<ChainHead>(head);
}

Result<std::optional<std::string>> Terminal::behind()
{
	auto head = anchor();
	if (!head)
		return head.status();
	if (!*head)
		return std::optional<std::string>();
	auto last = ledger_.last_seq();
	if (!last)
		return last.status();
	if ((*head)->seq > *last)
		return std::optional<std::string>(fmt::format(
			"the centre acknowledged entries through {} but this ledger ends at {} (restored from an old "
			"copy, or its WAL was lost): sync to take them back before recording a sale",
			(*head)->seq, *last));
	auto mine = entry_hash((*head)->seq);
	if (!mine)
		return mine.status();
	if (*mine != (*head)->hash)
		return std::optional<std::string>(fmt::format(
			"entry {} is not the one the centre acknowledged (restored from another copy?): sync to take "
			"the centre's back before recording a sale",
			(*head)->seq));
	return std::optional<std::string>();
}

Status Terminal::check_anchor()
{
	if (anchor_ok_)
		return Status::ok();
	auto problem = behind();
	if (!problem)
		return problem.status();
	if (*problem)
		return corrupt(**problem);
	anchor_ok_ = true;
	return Status::ok();
}

Result<bool> Terminal::has_program_version(const std::string &id, int64_t version)
{
	auto doc = stored_program(id, version);
	if (!doc)
		return doc.status();
	return doc->has_value();
}

Status Terminal::keep_program_version(std::string_view json, int64_t now)
{
	auto p = parse_program(json);
	if (!p)
		return Status(Code::network, "sync: the centre's program is invalid: " + p.status().message());
	db::Transaction tx(ledger_.db());
	LOY_TRY(tx.begin());
	auto held = has_program_version(p->id, p->version);
	if (!held)
		return held.status();
	if (*held)
		return Status::ok();
	const std::string doc(json);
	const std::string mac = ledger_.seal("programs", {p->id, std::to_string(p->version), doc});
	auto ins = ledger_.db().prepare(
		"INSERT INTO programs (id, version, document, loaded_at, mac) VALUES (?1, ?2, ?3, ?4, ?5)");
	if (!ins)
		return ins.status();
	LOY_TRY(ins.value().bind(1, p->id).bind(2, p->version).bind(3, doc)
			.bind(4, format_timestamp(Timestamp{now, 0}))
			.bind_blob(5, mac.data(), mac.size())
			.run());
	return tx.commit();
}

Status Terminal::stage_recovery(const std::vector<Pending> &entries, bool first)
{
	db::Transaction tx(ledger_.db());
	LOY_TRY(tx.begin());
	if (first)
		LOY_TRY(ledger_.db().exec("DELETE FROM recovery"));
	// Another sync of this data dir may stage the same pages: the centre's
	// copy of one entry is the same whichever stages it.
	auto ins = ledger_.db().prepare("INSERT OR REPLACE INTO recovery (seq, hash, body) VALUES (?1, ?2, ?3)");
	if (!ins)
		return ins.status();
	for (const auto &e : entries) {
		ins.value().reset();
		LOY_TRY(ins.value().bind(1, e.seq).bind(2, e.hash).bind(3, e.body).run());
	}
	return tx.commit();
}

Result<Terminal::Recovery> Terminal::recover(int64_t fork, const ChainHead &head, int64_t now)
{
	db::Transaction tx(ledger_.db());
	LOY_TRY(tx.begin());
	db::Db &db = ledger_.db();
	// Another sync of this data dir may have taken the entries back while
	// this one staged them: then there is nothing left to do.
	auto level = entry_hash(head.seq);
	if (!level)
		return level.status();
	if (*level == head.hash)
		return Recovery{};
	auto acked = ledger_.acked_through();
	if (!acked)
		return acked.status();
	if (fork <= *acked)
		return Status(Code::network, fmt::format("sync: a recovery from entry {} would undo entries the "
							 "centre acknowledged (through {}): another sync of this "
							 "data dir moved on; try again",
							 fork, *acked));
	const std::string at = format_timestamp(Timestamp{now, 0});

	// What the journal holds from the fork on: kept as it was in `rebased`
	// (its MAC still checks), then taken out of the chain.
	std::vector<Orphan> orphans;
	{
		auto st = db.prepare("SELECT seq, kind, receipt_id, token, program_id, program_version, device_time, "
				     "points, body, hash, mac FROM journal WHERE seq >= ?1 ORDER BY seq");
		if (!st)
			return st.status();
		st.value().bind(1, fork);
		LOY_TRY(st.value().each([&]() -> Status {
			const auto &s = st.value();
			Orphan o;
			o.e.seq = s.int64(0);
			o.e.kind = s.text(1);
			o.e.receipt_id = s.text(2);
			o.e.token = s.text(3);
			o.e.program_id = s.text(4);
			o.e.program_version = s.int64(5);
			o.e.device_time = s.text(6);
			o.e.points = s.int64(7);
			o.e.body = s.text(8);
			o.hash = s.blob(9);
			o.mac = s.blob(10);
			orphans.push_back(std::move(o));
			return Status::ok();
		}));
	}
	auto keep = db.prepare("INSERT INTO rebased (old_seq, body, hash, mac, rebased_at) VALUES (?1, ?2, ?3, ?4, ?5)");
	if (!keep)
		return keep.status();
	for (auto &o : orphans) {
		auto data = ledger_.entry_data(o.e.seq);
		if (!data)
			return data.status();
		o.e.data = *data;
		auto &s = keep.value();
		s.reset();
		s.bind(1, o.e.seq).bind(2, o.e.body).bind_blob(3, o.hash.data(), o.hash.size());
		s.bind_blob(4, o.mac.data(), o.mac.size()).bind(5, at);
		LOY_TRY(s.run());
		o.rebased_id = db.last_insert_rowid();
	}
	auto cut = db.prepare("DELETE FROM journal WHERE seq >= ?1");
	if (!cut)
		return cut.status();
	LOY_TRY(cut.value().bind(1, fork).run());

	// The centre's copies, each checked to be this terminal's own entry
	// continuing the chain.
	Recovery r;
	int64_t through = fork - 1;
	{
		auto st = db.prepare("SELECT seq, hash, body FROM recovery ORDER BY seq");
		if (!st)
			return st.status();
		Status read = st.value().each([&]() -> Status {
			LOY_TRY(ledger_.adopt(st.value().int64(0), st.value().text(1), st.value().text(2)));
			through = st.value().int64(0);
			r.recovered++;
			return Status::ok();
		});
		LOY_TRY(read);
	}
	// Exactly the centre's chain from the fork to its head (another sync of
	// this data dir recovering at the same time may have emptied the stage
	// under this one: then this one fails, and the next sync is level).
	auto last_hash = entry_hash(through);
	if (!last_hash)
		return last_hash.status();
	if (r.recovered == 0 || through != head.seq || *last_hash != head.hash)
		return Status(Code::network, fmt::format("sync: the entries staged from the centre end at {}, not "
							 "at its head {}: try again",
							 through, head.seq));
	LOY_TRY(db.exec("DELETE FROM recovery"));
	// They are not marked acknowledged here: until this sync records the
	// centre's snapshot of members (record_sync), they count in the local
	// sums like the terminal's own unsynced entries, so a sync cut short
	// after this leaves balances that hold them once.

	// Recorded here since the ledger fell behind: each again, in order,
	// after the centre's, unless the centre already has it. A refund whose
	// receipt changed at the centre meanwhile is worked out again on the
	// receipt as it now stands, for the units it returned.
	std::map<std::string, ReceiptState> seen; // receipt as the old journal saw it
	auto mark = db.prepare("UPDATE rebased SET new_seq = ?2, dropped = ?3 WHERE id = ?1");
	if (!mark)
		return mark.status();
	for (auto &o : orphans) {
		std::optional<std::string> dropped;
		Entry e = o.e;
		std::optional<ReceiptState> base;
		if (o.e.kind == "checkout" || o.e.kind == "refund") {
			if (auto it = seen.find(o.e.receipt_id); it != seen.end()) {
				base = it->second;
			} else {
				auto b = last_receipt_state(ledger_, o.e.receipt_id, fork);
				if (!b)
					return b.status();
				base = *b;
			}
			if (auto mine = receipt_state(o.e.data))
				seen[o.e.receipt_id] = *mine;
		}
		if (o.e.kind == "enroll") {
			auto dup = journal_has(ledger_, "SELECT 1 FROM journal WHERE kind = 'enroll' AND token = ?1",
					       o.e.token);
			if (!dup)
				return dup.status();
			if (*dup)
				dropped = "the member was enrolled at the centre already";
		} else if (o.e.kind == "checkout") {
			auto held = checkout_of(ledger_, o.e.receipt_id);
			if (!held)
				return held.status();
			if (*held && (*held)->token == o.e.token && (*held)->request == request_of(o.e.data))
				dropped = fmt::format("receipt {} was recorded at the centre already (the POS sent it "
						      "again)",
						      o.e.receipt_id);
			else if (*held)
				dropped = fmt::format("receipt {} was recorded at the centre for another sale: this one "
						      "is left out",
						      o.e.receipt_id);
		} else if (o.e.kind == "refund") {
			auto now_state = last_receipt_state(ledger_, o.e.receipt_id, 0);
			if (!now_state)
				return now_state.status();
			auto held = checkout_of(ledger_, o.e.receipt_id);
			if (!held)
				return held.status();
			auto mine = receipt_state(o.e.data);
			if (!mine || !base)
				return corrupt(fmt::format("entry {}: refund of receipt {} without its receipt", o.e.seq,
							   o.e.receipt_id));
			// The named refunds this one added: one the centre has already
			// is this refund retried.
			std::optional<std::string> retried;
			for (const auto &item : mine->refund_ids.items())
				if (!base->refund_ids.contains(item.key()) && *now_state &&
				    (*now_state)->refund_ids.contains(item.key()))
					retried = item.key();
			if (!*held || !*now_state || (*held)->token != o.e.token ||
			    (*held)->program_id != o.e.program_id || (*held)->program_version != o.e.program_version)
				dropped = fmt::format("receipt {} is another member's sale at the centre: this refund is "
						      "left out",
						      o.e.receipt_id);
			else if (retried)
				dropped = fmt::format("refund {} of receipt {} was recorded at the centre already",
						      *retried, o.e.receipt_id);
			else if ((*now_state)->receipt != base->receipt) {
				// The units this refund returned, by SKU, taken back again
				// from the receipt as the centre left it.
				auto was = receipt_from_json(base->receipt), after = receipt_from_json(mine->receipt),
				     cur = receipt_from_json((*now_state)->receipt);
				for (const Status &st : {was.status(), after.status(), cur.status()})
					if (!st)
						return corrupt(fmt::format("entry {}: {}", o.e.seq, st.message()));
				std::map<std::string, int64_t> by_sku;
				for (size_t i = 0; i < after->basket.lines.size() && i < after->returned.size(); i++) {
					int64_t before = i < was->returned.size() ? was->returned[i] : 0;
					if (after->returned[i] > before)
						by_sku[after->basket.lines[i].sku] += after->returned[i] - before;
				}
				std::vector<ReturnLine> units;
				for (const auto &[sku, qty] : by_sku)
					units.push_back(ReturnLine{sku, qty});
				auto p = program_version(o.e.program_id, o.e.program_version);
				if (!p)
					return p.status();
				auto f = units.empty() ? Result<Refund>(Status(Code::bad_refund, "it returned no unit"))
						       : loy::refund(**p, *cur, units);
				if (!f) {
					dropped = fmt::format("receipt {} changed at the centre and this refund no longer "
							      "applies: {}",
							      o.e.receipt_id, f.status().message());
				} else {
					Receipt next = *cur;
					const int64_t spend_reversed = cur->eligible - f->eligible_after;
					apply_refund(next, *f);
					OJson ids = (*now_state)->refund_ids;
					for (const auto &[id, v] : mine->refund_ids.items())
						if (!base->refund_ids.contains(id))
							ids[id] = OJson{{"request", v.value("request", "")},
									{"reversed", f->points_reversed},
									{"returned", f->points_returned},
									{"complete", f->complete}};
					e.points = f->points_returned - f->points_reversed;
					e.data = refund_entry_data(next, *f, spend_reversed, ids);
				}
			}
		}
		auto &m = mark.value();
		m.reset();
		m.bind(1, o.rebased_id);
		if (dropped) {
			r.dropped++;
			m.bind(3, *dropped);
		} else {
			LOY_TRY(ledger_.append(e));
			r.rebased++;
			m.bind(2, e.seq);
		}
		LOY_TRY(m.run());
	}
	// The local sums and receipts as the journal now has them.
	LOY_TRY(ledger_.rebuild_derived());
	LOY_TRY(tx.commit());
	anchor_ok_ = false;
	return r;
}

} // namespace loy
