// The JSON of the `loyalty-central` commands' results (spec/cli.md), built
// here and nowhere else from the store's structs: main.cpp prints them, and
// tests read them. Keys in the order cli.md lists them. (The protocol's
// answers are built in server.cpp, the only place that sends them.)
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "central/store.hpp"

namespace loy::central {

// Ordered: cli.md's key order is part of the contract (as base/cli.hpp's Json).
using ViewJson = nlohmann::ordered_json;

ViewJson published_json(const Published &p);
ViewJson enrolled_json(const MarkedCard &c);
ViewJson blocked_json(const MarkedCard &c);
ViewJson balance_json(const Balance &b);
ViewJson statement_json(const Statement &s);
ViewJson report_json(const Report &r);
ViewJson settlement_json(const Settlement &s);
ViewJson fraud_json(const std::vector<FraudFlag> &flags);

// A report's query from its texts (the command line's --from, --until and
// --store, or the dashboard's query string): dates YYYY-MM-DD, until after
// from, a store name of 1 to 64 bytes; absent ones absent. The error names
// the field.
Result<ReportQuery> report_query(const std::optional<std::string> &from, const std::optional<std::string> &until,
				 const std::optional<std::string> &store);

// A terminal's clock trouble by name, as the report's "clock_flags" lists
// it (and the human report prints it): "skewed", "went_back",
// "future_entries", in that order.
std::vector<std::string> clock_flags(const TerminalReport &t);

} // namespace loy::central
