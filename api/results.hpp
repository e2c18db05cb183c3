// The JSON objects of the terminal's results (spec/cli.md), built here and
// nowhere else: storage and sync answer structs (storage/results.hpp), and
// loy_terminal_result_json() shows what these make of them. A change to an
// output field touches this file only.
#pragma once

#include <nlohmann/json.hpp>

#include "storage/ledger.hpp"
#include "storage/results.hpp"
#include "sync/client.hpp"

namespace loy::api {

// Keys keep the order they are set in: cli.md's order.
using Json = nlohmann::ordered_json;

Json to_json(const ProgramLoaded &r);
Json to_json(const Enrolled &r);
Json to_json(const Donated &r);
Json to_json(const CheckoutDone &r);
Json to_json(const RefundDone &r);
Json to_json(const BalanceView &r);
Json to_json(const StatusView &r);
Json to_json(const net::SyncReport &r);
Json to_json(const Ledger::Verdict &r);

} // namespace loy::api
