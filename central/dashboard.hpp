// The back office in the browser (cli.md, "The back office"): the JSON API
// under /api/ and the dashboard page that uses it, served on `serve
// --admin-listen` over HTTPS with the server's certificate. Sign-in takes a
// password and a TOTP code (admin.hpp); a session is a Secure, HttpOnly,
// SameSite=Strict cookie whose token the store keeps only hashed, with a
// CSRF token every action must send back; a viewer reads, a manager acts;
// every action goes to the audit log.
#pragma once

#include <cstdint>
#include <string>

#include "central/fraud.hpp"
#include "central/store.hpp"
#include "sync/http.hpp"

namespace loy::central {

inline constexpr const char *session_cookie = "loyalty_session";
// Debian's libjs-chart.js, served by the centre itself (no CDN).
inline constexpr const char *chart_js_default = "/usr/share/javascript/chart.js/chart.min.js";
inline constexpr size_t admin_body_bytes_max = 16 * 1024;

struct DashboardOptions {
	FraudRules rules;                         // for /api/fraud
	std::string chart_js = chart_js_default; // the file /chart.js serves
};

// One request of the dashboard, answered from `store` at `now`.
net::Response handle_admin_request(Store &store, const DashboardOptions &o, const net::Request &req, int64_t now);

// The page's files, built into the program from central/dashboard/.
extern const char *const dashboard_html;
extern const char *const dashboard_js;
extern const char *const dashboard_css;

} // namespace loy::central
