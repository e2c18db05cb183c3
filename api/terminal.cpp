// The C API of the terminal: a handle over loy::Terminal.
#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "api/boundary.hpp"
#include "api/results.hpp"
#include "loyalty/hal.h"
#include "loyalty/loyalty.h"
#include "storage/terminal.hpp"
#include "storage/tzfile.hpp"
#include "sync/client.hpp"
#include "sync/tls.hpp"

struct loy_terminal {
	std::unique_ptr<loy::Terminal> terminal;
	std::string result_json;
	int64_t (*clock)(void *ctx) = nullptr;
	loy::net::Timeouts sync_timeouts;
	std::atomic<bool> sync_cancel{false};
	int64_t retry_after_ms = 0; // of the last sync
	void *clock_ctx = nullptr;
	const loy_hal *hal = nullptr;
	char errmsg[LOY_ERRMSG_MAX] = "";

	// Seconds since the epoch: the clock set by loy_terminal_set_clock(),
	// else the HAL's, else the system's (loy_hal_wall_ms(): a HAL clock that
	// cannot be read gives way to the system's rather than stamp a receipt
	// with nothing).
	int64_t now() const
	{
		if (clock)
			return clock(clock_ctx);
		const int64_t ms = loy_hal_wall_ms(hal ? hal->clock : nullptr);
		return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	}

	const loy_hal_keystore *keys() const { return hal ? hal->keys : nullptr; }
};

namespace {

using loy::Code;

loy_status fail(loy_terminal *t, const loy::Status &s) { return loy::capi::fail(t->errmsg, s); }

loy_status fail(loy_terminal *t, Code code, const char *message)
{
	return loy::capi::fail(t->errmsg, code, message);
}

loy_status not_open(loy_terminal *t)
{
	return fail(t, Code::bad_argument, "terminal not open: call loy_terminal_open");
}

// The common shape of an operation: check the handle is open, run, keep the
// result as its JSON text (api/results.hpp). A failure leaves the last
// successful result in place (include/loyalty/loyalty.h).
template <class F> loy_status run(loy_terminal *t, F &&op)
{
	if (!t)
		return LOY_E_BAD_ARGUMENT;
	return loy::capi::guarded(t->errmsg, [&]() -> loy_status {
		if (!t->terminal)
			return not_open(t);
		auto r = op(*t->terminal);
		if (!r)
			return fail(t, r.status());
		t->result_json = loy::api::to_json(*r).dump();
		return loy::capi::succeed(t->errmsg);
	});
}

// The system's zone, for a terminal given none: /etc/localtime read once
// per process through storage/tzfile.hpp, never TZ, tzset() or localtime()
// (they read and set the process's environment, the POS application's).
// Missing or unreadable: UTC. A change of the system's zone is seen after a
// restart, as the zones' files are (storage/terminal.cpp).
const std::optional<loy::Zone> &system_zone()
{
	static const std::optional<loy::Zone> zone = []() -> std::optional<loy::Zone> {
		auto z = loy::load_zone_file("/etc/localtime");
		if (!z)
			return std::nullopt;
		return std::move(z).value();
	}();
	return zone;
}

std::string str(const char *s) { return s ? s : ""; }

} // namespace

extern "C" {

loy_status loy_terminal_new(loy_terminal **out)
{
	if (!out)
		return LOY_E_BAD_ARGUMENT;
	*out = new (std::nothrow) loy_terminal();
	return *out ? LOY_OK : LOY_E_INTERNAL;
}

void loy_terminal_free(loy_terminal *t) { delete t; }

const char *loy_terminal_errmsg(const loy_terminal *t)
{
	return t ? t->errmsg : "no terminal (NULL handle)";
}

const char *loy_terminal_result_json(const loy_terminal *t) { return t ? t->result_json.c_str() : ""; }

void loy_terminal_set_clock(loy_terminal *t, int64_t (*now)(void *ctx), void *ctx)
{
	if (!t)
		return;
	t->clock = now;
	t->clock_ctx = ctx;
	loy::capi::succeed(t->errmsg);
}

loy_status loy_terminal_init(loy_terminal *t, const char *data_dir, const loy_terminal_setup *setup)
{
	return loy_terminal_init_hal(t, data_dir, setup, nullptr);
}

loy_status loy_terminal_open(loy_terminal *t, const char *data_dir)
{
	return loy_terminal_open_hal(t, data_dir, nullptr);
}

// A HAL is checked before it is kept: a bad table is refused at open, not
// found out at the first checkout.
static loy_status take_hal(loy_terminal *t, const loy_hal *hal)
{
	char why[160] = "";
	if (hal && loy_hal_check(hal, why, sizeof why) < 0)
		return fail(t, Code::bad_argument, (std::string("hal: ") + why).c_str());
	t->hal = hal;
	return LOY_OK;
}

loy_status loy_terminal_init_hal(loy_terminal *t, const char *data_dir, const loy_terminal_setup *setup,
				 const loy_hal *hal)
{
	if (!t)
		return LOY_E_BAD_ARGUMENT;
	if (!data_dir || !setup)
		return fail(t, Code::bad_argument, "init: no data dir or setup (NULL)");
	return loy::capi::guarded(t->errmsg, [&]() -> loy_status {
		loy_terminal_setup in;
		std::string bad = loy::capi::read_versioned(setup, loy::capi::setup_v1, "loy_terminal_setup", &in);
		if (!bad.empty())
			return fail(t, Code::bad_argument, bad.c_str());
		loy::TerminalSetup s;
		s.terminal_id = str(in.terminal_id);
		s.store = str(in.store);
		s.tz = str(in.tz);
		s.server = str(in.server);
		s.ca = str(in.ca);
		s.cert = str(in.cert);
		s.key = str(in.key);
		s.token_key = str(in.token_key);
		s.check_identity = [&s](const std::string &ca, const std::string &cert, const std::string &key) {
			loy::net::ClientIdentity id;
			id.ca_pem = ca;
			id.cert_pem = cert;
			id.key_pem = key;
			return loy::net::check_client_identity(id, s.terminal_id);
		};
		if (loy_status hs = take_hal(t, hal); hs != LOY_OK)
			return hs;
		loy::Status st = loy::Terminal::init(data_dir, s, t->now(), t->keys());
		if (!st)
			return fail(t, st);
		return loy_terminal_open_hal(t, data_dir, hal);
	});
}

loy_status loy_terminal_open_hal(loy_terminal *t, const char *data_dir, const loy_hal *hal)
{
	if (!t)
		return LOY_E_BAD_ARGUMENT;
	if (!data_dir)
		return fail(t, Code::bad_argument, "open: no data dir (NULL)");
	return loy::capi::guarded(t->errmsg, [&]() -> loy_status {
		t->terminal.reset();
		if (loy_status hs = take_hal(t, hal); hs != LOY_OK)
			return hs;
		auto r = loy::Terminal::open(data_dir, t->keys());
		if (!r)
			return fail(t, r.status());
		t->terminal = std::move(r).value();
		return loy::capi::succeed(t->errmsg);
	});
}

loy_status loy_terminal_program_load(loy_terminal *t, const char *json, size_t len)
{
	if (t && !json)
		return fail(t, Code::bad_argument, "program: no document (NULL)");
	return run(t, [&](loy::Terminal &term) { return term.program_load(std::string_view(json, len), t->now()); });
}

loy_status loy_terminal_enroll(loy_terminal *t, const char *scan)
{
	if (t && !scan)
		return fail(t, Code::bad_argument, "enroll: no card scan (NULL)");
	return run(t, [&](loy::Terminal &term) { return term.enroll(scan, t->now()); });
}

loy_status loy_terminal_enroll_referred(loy_terminal *t, const char *scan, const char *referrer_scan)
{
	if (t && (!scan || !referrer_scan))
		return fail(t, Code::bad_argument, "enroll: no card scan or no referrer's (NULL)");
	return run(t, [&](loy::Terminal &term) { return term.enroll(scan, t->now(), referrer_scan); });
}

loy_status loy_terminal_donate(loy_terminal *t, const char *scan, const char *charity, int64_t points)
{
	if (t && (!scan || !charity))
		return fail(t, Code::bad_argument, "donate: no card scan or charity (NULL)");
	return run(t, [&](loy::Terminal &term) { return term.donate(scan, charity, points, t->now()); });
}

loy_status loy_terminal_checkout(loy_terminal *t, const char *scan, const char *basket_json,
				 size_t len, const loy_redemption *redemption)
{
	if (t && (!scan || !basket_json))
		return fail(t, Code::bad_argument, "checkout: no card scan or basket (NULL)");
	loy_redemption rr;
	std::string bad = loy::capi::read_versioned(redemption, loy::capi::redemption_v1, "loy_redemption", &rr);
	if (t && !bad.empty())
		return fail(t, Code::bad_argument, bad.c_str());
	loy::Redemption r;
	if (rr.kind == LOY_REDEEM_POINTS)
		r = loy::Redemption::of_points(rr.points);
	else if (rr.kind == LOY_REDEEM_REWARD)
		r = loy::Redemption::of_reward(str(rr.reward));
	else if (rr.kind == LOY_REDEEM_STAMP_CARD)
		r = loy::Redemption::of_stamp_card(str(rr.reward));
	return run(t, [&](loy::Terminal &term) {
		return term.checkout(scan, std::string_view(basket_json, len), r, t->now());
	});
}

loy_status loy_terminal_refund(loy_terminal *t, const char *receipt_id,
			       const loy_return_line *lines, size_t n)
{
	return loy_terminal_refund_keyed(t, receipt_id, nullptr, lines, n);
}

loy_status loy_terminal_refund_keyed(loy_terminal *t, const char *receipt_id, const char *refund_id,
				     const loy_return_line *lines, size_t n)
{
	// No handle: nothing to report into, and the lines are not read.
	if (!t)
		return LOY_E_BAD_ARGUMENT;
	if (!receipt_id || (n > 0 && !lines))
		return fail(t, Code::bad_argument, "refund: no receipt id or lines (NULL)");
	if (refund_id && !*refund_id)
		return fail(t, Code::bad_argument, "refund: an empty refund id (NULL for none)");
	std::vector<loy::ReturnLine> units;
	for (size_t i = 0; i < n; i++) {
		if (!lines[i].sku)
			return fail(t, Code::bad_argument, "refund: a line without sku");
		units.push_back(loy::ReturnLine{lines[i].sku, lines[i].qty});
	}
	return run(t, [&](loy::Terminal &term) {
		return term.refund(receipt_id, units, t->now(), refund_id ? refund_id : "");
	});
}

loy_status loy_terminal_balance(loy_terminal *t, const char *scan)
{
	if (t && !scan)
		return fail(t, Code::bad_argument, "balance: no card scan (NULL)");
	return run(t, [&](loy::Terminal &term) { return term.balance(scan, t->now()); });
}

loy_status loy_terminal_status(loy_terminal *t)
{
	return run(t, [&](loy::Terminal &term) { return term.status(); });
}

void loy_terminal_cancel_sync(loy_terminal *t, int cancel)
{
	if (t)
		t->sync_cancel = cancel != 0;
}

void loy_terminal_set_sync_timeouts(loy_terminal *t, int connect_ms, int io_ms)
{
	if (!t)
		return;
	t->sync_timeouts.connect_ms = connect_ms > 0 ? connect_ms : loy::net::connect_timeout_ms_default;
	t->sync_timeouts.io_ms = io_ms > 0 ? io_ms : loy::net::io_timeout_ms_default;
	loy::capi::succeed(t->errmsg);
}

loy_status loy_terminal_sync(loy_terminal *t, void (*progress)(const char *line, void *ctx), void *ctx)
{
	return run(t, [&](loy::Terminal &term) {
		loy::net::Timeouts timeouts = t->sync_timeouts;
		timeouts.cancel = &t->sync_cancel;
		auto clock = [t] { return t->now(); };
		return loy::net::sync_terminal(
			term, clock, timeouts,
			[&](const std::string &line) {
				if (progress)
					progress(line.c_str(), ctx);
			},
			&t->retry_after_ms);
	});
}

int64_t loy_terminal_retry_after_ms(const loy_terminal *t) { return t ? t->retry_after_ms : 0; }

loy_status loy_terminal_verify(loy_terminal *t, int *ok)
{
	return run(t, [&](loy::Terminal &term) {
		auto v = term.verify();
		if (v && ok)
			*ok = v->ok ? 1 : 0;
		return v;
	});
}

// Reads only what open fixed (the zone) and the process's zone caches,
// which have locks of their own: callable from any thread while another
// uses the handle (the till's syncer does), so it leaves the handle's error
// message alone, as loy_terminal_cancel_sync() does (loyalty.h).
loy_status loy_terminal_utc_offset(loy_terminal *t, int64_t utc_s, int32_t *offset_s)
{
	if (!t || !offset_s || !t->terminal)
		return LOY_E_BAD_ARGUMENT;
	try {
		const std::string &tz = t->terminal->tz();
		if (tz.empty()) {
			const auto &zone = system_zone();
			*offset_s = zone ? zone->offset_at(utc_s) : 0;
			return LOY_OK;
		}
		// Checked at init: a zone unknown now is a zone file removed since.
		auto off = loy::zone_offset(tz, utc_s);
		if (!off)
			return LOY_E_STORAGE;
		*offset_s = *off;
		return LOY_OK;
	} catch (...) {
		return LOY_E_INTERNAL;
	}
}

} // extern "C"
