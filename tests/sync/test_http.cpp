// The HTTP/1.1 framing (sync/http.hpp) as tables: every message it accepts
// and every one it refuses, each fed whole, split at every byte offset, and
// pipelined behind another.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "sync/http.hpp"

using loy::Code;
using loy::net::Parser;
using Kind = loy::net::Parser::Kind;

namespace {

std::string repeat(char c, size_t n) { return std::string(n, c); }

// A request whose head is exactly `head_bytes` long (padding in one header).
std::string request_with_head(size_t head_bytes)
{
	std::string start = "GET / HTTP/1.1\r\nX-Pad: ";
	std::string end = "\r\n\r\n";
	return start + repeat('a', head_bytes - start.size() - end.size()) + end;
}

struct Row {
	const char *name;
	Kind kind;
	std::string input;
	// Empty: a whole message, parsed; "incomplete": valid so far, more to
	// come; otherwise a part of the expected error message.
	std::string error;
	std::string body = {};
};

const std::vector<Row> &rows()
{
	using loy::net::http_body_bytes_max;
	using loy::net::http_head_bytes_max;
	static const std::vector<Row> r = {
		// Accepted.
		{"GET, no body", Kind::request, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", ""},
		{"POST with body", Kind::request,
		 "POST /sync HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", "", "hello"},
		{"HTTP/1.0 request", Kind::request, "GET / HTTP/1.0\r\n\r\n", ""},
		{"header names any case", Kind::request,
		 "POST / HTTP/1.1\r\ncontent-LENGTH: 3\r\n\r\nabc", "", "abc"},
		{"OWS around a value", Kind::request,
		 "POST / HTTP/1.1\r\nContent-Length: \t 2 \t\r\n\r\nab", "", "ab"},
		{"two equal Content-Lengths", Kind::request,
		 "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 02\r\n\r\nab", "", "ab"},
		{"Content-Length 0", Kind::request, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", ""},
		{"empty header value", Kind::request, "GET / HTTP/1.1\r\nX-Empty:\r\n\r\n", ""},
		{"response", Kind::response, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "", "ok"},
		{"response, empty reason", Kind::response, "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
		 ""},
		{"response, no reason nor space", Kind::response,
		 "HTTP/1.1 500\r\nContent-Length: 1\r\n\r\nx", "", "x"},
		{"204 without length", Kind::response, "HTTP/1.1 204 No Content\r\n\r\n", ""},
		{"head of exactly the limit", Kind::request, request_with_head(http_head_bytes_max), ""},
		{"body of exactly the limit (head only)", Kind::request,
		 "POST / HTTP/1.1\r\nContent-Length: " + std::to_string(http_body_bytes_max) + "\r\n\r\n",
		 "incomplete"},
		{"body still coming", Kind::request, "POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc",
		 "incomplete"},
		{"head still coming", Kind::request, "GET / HTTP/1.1\r\nHost: x\r\n", "incomplete"},

		// Refused: sizes.
		{"head one byte over the limit", Kind::request,
		 request_with_head(http_head_bytes_max + 1), "head too large"},
		{"head without end", Kind::request,
		 "GET / HTTP/1.1\r\nX: " + repeat('a', http_head_bytes_max), "head too large"},
		{"body one byte over the limit", Kind::request,
		 "POST / HTTP/1.1\r\nContent-Length: " + std::to_string(http_body_bytes_max + 1) +
			 "\r\n\r\n",
		 "body too large"},
		{"length beyond 64 bits", Kind::request,
		 "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
		 "body too large"},
		{"response body over the limit", Kind::response,
		 "HTTP/1.1 200 OK\r\nContent-Length: 8388609\r\n\r\n", "body too large"},

		// Refused: request line.
		{"request line without version", Kind::request, "GET /\r\n\r\n", "bad request line"},
		{"request line, two spaces", Kind::request, "GET  / HTTP/1.1\r\n\r\n", "bad request line"},
		{"request line, trailing word", Kind::request, "GET / HTTP/1.1 x\r\n\r\n",
		 "bad request line"},
		{"request line, HTTP/2", Kind::request, "GET / HTTP/2.0\r\n\r\n", "bad request line"},
		{"request line, lower-case version", Kind::request, "GET / http/1.1\r\n\r\n",
		 "bad request line"},
		{"request line, control in method", Kind::request, "G\x01T / HTTP/1.1\r\n\r\n",
		 "bad request line"},
		{"request line, no method", Kind::request, " / HTTP/1.1\r\n\r\n", "bad request line"},
		{"request line, control in target", Kind::request, "GET /\x7f HTTP/1.1\r\n\r\n",
		 "bad request line"},
		{"empty line before request", Kind::request, "\r\nGET / HTTP/1.1\r\n\r\n",
		 "bad request line"},
		{"response where a request is due", Kind::request, "HTTP/1.1 200 OK\r\n\r\n",
		 "bad request line"},

		// Refused: status line.
		{"status two digits", Kind::response, "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
		 "bad status line"},
		{"status four digits", Kind::response, "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
		 "bad status line"},
		{"status not digits", Kind::response, "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
		 "bad status line"},
		{"status 600", Kind::response, "HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n",
		 "bad status line"},
		{"status glued to reason", Kind::response, "HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n",
		 "bad status line"},
		{"status line HTTP/2", Kind::response, "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n",
		 "bad status line"},
		{"request where a response is due", Kind::response, "GET / HTTP/1.1\r\n\r\n",
		 "bad status line"},
		{"interim 100", Kind::response, "HTTP/1.1 100 Continue\r\n\r\n", "interim response"},

		// Refused: Content-Length.
		{"response without length", Kind::response, "HTTP/1.1 200 OK\r\n\r\nbody",
		 "without Content-Length"},
		{"length not a number", Kind::request, "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
		 "invalid Content-Length"},
		{"length negative", Kind::request, "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		 "invalid Content-Length"},
		{"length with plus", Kind::request, "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
		 "invalid Content-Length"},
		{"length empty", Kind::request, "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
		 "invalid Content-Length"},
		{"length list", Kind::request, "POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\nx",
		 "invalid Content-Length"},
		{"length hex", Kind::request, "POST / HTTP/1.1\r\nContent-Length: 0x1\r\n\r\nx",
		 "invalid Content-Length"},
		{"two different lengths", Kind::request,
		 "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
		 "conflicting Content-Length"},
		{"different lengths, other case", Kind::response,
		 "HTTP/1.1 200 OK\r\ncontent-length: 1\r\nCONTENT-LENGTH: 2\r\n\r\nxy",
		 "conflicting Content-Length"},

		// Refused: Transfer-Encoding, folding, malformed lines.
		{"chunked", Kind::request,
		 "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		 "Transfer-Encoding \"chunked\" is not supported"},
		{"Transfer-Encoding with a length", Kind::response,
		 "HTTP/1.1 200 OK\r\nContent-Length: 1\r\ntransfer-encoding: identity\r\n\r\nx",
		 "Transfer-Encoding \"identity\" is not supported"},
		{"obs-fold with space", Kind::request, "GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n",
		 "obs-fold"},
		{"obs-fold with tab", Kind::response,
		 "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: one\r\n\ttwo\r\n\r\n", "obs-fold"},
		{"header without colon", Kind::request, "GET / HTTP/1.1\r\nHost x\r\n\r\n",
		 "without a colon"},
		{"space before colon", Kind::request, "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
		 "bad header name"},
		{"empty header name", Kind::request, "GET / HTTP/1.1\r\n: x\r\n\r\n", "bad header name"},
		{"control in value", Kind::request, "GET / HTTP/1.1\r\nX: a\x01" "b\r\n\r\n",
		 "control character"},
		{"bare LF", Kind::request, "GET / HTTP/1.1\nHost: x\r\n\r\n", "bare CR or LF"},
		{"bare CR", Kind::request, "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", "bare CR or LF"},
	};
	return r;
}

// Feeds `parts` in order; the outcome as the table spells it.
struct Outcome {
	std::string error; // "", "incomplete" or the error message
	std::string body;
	std::string leftover;
};

Outcome run(Kind kind, const std::vector<std::string_view> &parts)
{
	Parser p(kind);
	Outcome o{"incomplete", "", ""};
	for (auto part : parts) {
		auto r = p.feed(part);
		if (!r) {
			CHECK(r.status().code() == Code::network);
			CHECK(r.status().message().rfind("http: ", 0) == 0);
			o.error = r.status().message();
			return o;
		}
		if (*r)
			o.error.clear();
	}
	if (o.error.empty()) {
		o.body = kind == Kind::request ? p.request().body : p.response().body;
		o.leftover = p.take_leftover();
	}
	return o;
}

bool matches(const Outcome &o, const Row &row)
{
	if (row.error.empty() || row.error == "incomplete")
		return o.error == row.error && o.body == row.body;
	return o.error.find(row.error) != std::string::npos;
}

} // namespace

TEST_CASE("http: each message of the table, fed whole", "[http]")
{
	for (const Row &row : rows()) {
		INFO(row.name);
		Outcome o = run(row.kind, {row.input});
		INFO("got: " << o.error);
		CHECK(matches(o, row));
		CHECK(o.leftover.empty());
	}
}

TEST_CASE("http: each message split at every byte offset", "[http]")
{
	for (const Row &row : rows()) {
		// The size rows are large; their split points are the same code path.
		if (row.input.size() > 4096)
			continue;
		for (size_t k = 0; k <= row.input.size(); k++) {
			std::string_view in(row.input);
			Outcome o = run(row.kind, {in.substr(0, k), in.substr(k)});
			if (!matches(o, row)) {
				INFO(row.name << " split at " << k << ": got " << o.error);
				CHECK(false);
			}
		}
		// And one byte at a time.
		std::vector<std::string_view> bytes;
		for (size_t k = 0; k < row.input.size(); k++)
			bytes.push_back(std::string_view(row.input).substr(k, 1));
		INFO(row.name << " byte by byte");
		CHECK(matches(run(row.kind, bytes), row));
	}
}

TEST_CASE("http: large heads and bodies split at a few offsets", "[http]")
{
	for (const Row &row : rows()) {
		if (row.input.size() <= 4096)
			continue;
		for (size_t k : {size_t{0}, size_t{1}, row.input.size() / 2, row.input.size() - 4,
				 row.input.size() - 1, row.input.size()}) {
			std::string_view in(row.input);
			INFO(row.name << " split at " << k);
			CHECK(matches(run(row.kind, {in.substr(0, k), in.substr(k)}), row));
		}
	}
}

TEST_CASE("http: a whole body of the limit is accepted", "[http]")
{
	std::string body(loy::net::http_body_bytes_max, 'b');
	std::string msg = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
			  "\r\n\r\n" + body;
	Outcome o = run(Kind::response, {msg});
	CHECK(o.error.empty());
	CHECK(o.body.size() == body.size());
}

TEST_CASE("http: pipelined messages keep the bytes of the next", "[http]")
{
	loy::net::Request a{"POST", "/sync/entries", {{"Host", "central"}}, "first body"};
	loy::net::Request b{"GET", "/sync/snapshot?after=12", {{"Host", "central"}}, ""};
	loy::net::Request c{"POST", "/sync/ack", {{"Host", "central"}, {"X-Batch", "3"}}, "{}"};
	std::string wire = format_request(a) + format_request(b) + format_request(c);

	SECTION("fed at once")
	{
		std::vector<loy::net::Request> got;
		std::string pending = wire;
		while (!pending.empty()) {
			Parser p(Kind::request);
			auto r = p.feed(pending);
			REQUIRE(r);
			REQUIRE(*r);
			got.push_back(p.request());
			pending = p.take_leftover();
		}
		REQUIRE(got.size() == 3);
		CHECK(got[0].target == "/sync/entries");
		CHECK(got[0].body == "first body");
		CHECK(got[1].method == "GET");
		CHECK(got[1].body.empty());
		CHECK(got[2].header("x-batch") == "3");
		CHECK(got[2].body == "{}");
	}
	SECTION("fed byte by byte, every split of the stream")
	{
		for (size_t chunk : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{64}}) {
			std::vector<loy::net::Request> got;
			auto p = std::make_unique<Parser>(Kind::request);
			for (size_t i = 0; i < wire.size(); i += chunk) {
				auto r = p->feed(std::string_view(wire).substr(i, chunk));
				REQUIRE(r);
				// One feed may complete a message and hold the start (or all)
				// of the next ones.
				while (*r) {
					got.push_back(p->request());
					std::string rest = p->take_leftover();
					p = std::make_unique<Parser>(Kind::request);
					r = p->feed(rest);
					REQUIRE(r);
					if (rest.empty())
						break;
				}
			}
			INFO("chunk " << chunk);
			REQUIRE(got.size() == 3);
			CHECK(got[0].body == a.body);
			CHECK(got[1].target == b.target);
			CHECK(got[2].body == c.body);
		}
	}
	SECTION("bytes fed after a complete message are leftover")
	{
		Parser p(Kind::request);
		auto r = p.feed(format_request(a));
		REQUIRE(r);
		REQUIRE(*r);
		auto again = p.feed("GET");
		REQUIRE(again);
		CHECK(*again);
		CHECK(p.take_leftover() == "GET");
	}
}

TEST_CASE("http: an error sticks", "[http]")
{
	Parser p(Kind::request);
	auto r = p.feed("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	REQUIRE(!r);
	auto again = p.feed("GET / HTTP/1.1\r\n\r\n");
	REQUIRE(!again);
	CHECK(again.status().message() == r.status().message());
}

TEST_CASE("http: format and parse round trip", "[http]")
{
	loy::net::Request req{"POST", "/sync", {{"Host", "localhost:8443"}, {"Content-Type", "application/json"}},
			      std::string("{\"a\":1}\r\n\0x", 10)};
	std::string wire = format_request(req);
	CHECK(wire.rfind("POST /sync HTTP/1.1\r\nHost: localhost:8443\r\n", 0) == 0);
	CHECK(wire.find("Content-Length: 10\r\n\r\n") != std::string::npos);
	Parser p(Kind::request);
	auto r = p.feed(wire);
	REQUIRE(r);
	REQUIRE(*r);
	CHECK(p.request().method == "POST");
	CHECK(p.request().target == "/sync");
	CHECK(p.request().body == req.body);
	CHECK(p.request().header("content-type") == "application/json");
	CHECK(p.request().header("HOST") == "localhost:8443");
	CHECK(p.request().header("Missing").empty());

	loy::net::Response res;
	res.status = 409;
	res.headers = {{"Content-Type", "application/json"}};
	res.body = "{\"error\":\"conflict\"}";
	wire = format_response(res);
	CHECK(wire.rfind("HTTP/1.1 409 Conflict\r\n", 0) == 0);
	Parser q(Kind::response);
	auto s = q.feed(wire);
	REQUIRE(s);
	REQUIRE(*s);
	CHECK(q.response().status == 409);
	CHECK(q.response().reason == "Conflict");
	CHECK(q.response().body == res.body);

	loy::net::Response none;
	none.status = 204;
	wire = format_response(none);
	CHECK(wire == "HTTP/1.1 204 No Content\r\n\r\n");
	Parser n(Kind::response);
	auto t = n.feed(wire + "HTTP/1.1 200 OK\r\n");
	REQUIRE(t);
	CHECK(*t);
	CHECK(n.take_leftover() == "HTTP/1.1 200 OK\r\n");
}
