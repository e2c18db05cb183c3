// HTTP/1.1 messages framed by Content-Length (RFC 9112), parsed strictly:
// whatever two readers could split differently (folded lines, both
// Transfer-Encoding and Content-Length, two different lengths) is refused.
#include "sync/http.hpp"

#include <algorithm>
#include <chrono>
#include <cassert>
#include <cstring>

#include <fmt/format.h>

namespace loy::net {

namespace {

// Bytes read from the stream at a time; the stream keeps what was read past
// one message for the next.
constexpr size_t read_chunk_bytes = 16 << 10;
// How much of an offending line an error message quotes.
constexpr size_t quote_bytes_max = 60;

bool iequal(std::string_view a, std::string_view b)
{
	if (a.size() != b.size())
		return false;
	for (size_t i = 0; i < a.size(); i++) {
		auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
		if (x >= 'A' && x <= 'Z')
			x = static_cast<unsigned char>(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = static_cast<unsigned char>(y + 32);
		if (x != y)
			return false;
	}
	return true;
}

std::string find_header(const Headers &headers, std::string_view name)
{
	for (const auto &[n, v] : headers)
		if (iequal(n, name))
			return v;
	return {};
}

// RFC 9110 5.6.2 token characters.
bool is_tchar(char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool is_token(std::string_view s)
{
	if (s.empty())
		return false;
	for (char c : s)
		if (!is_tchar(c))
			return false;
	return true;
}

bool is_ctl(char c)
{
	auto u = static_cast<unsigned char>(c);
	return u < 0x20 || u == 0x7f;
}

// An excerpt of a line fit for an error message: printable, and short.
std::string quote(std::string_view line)
{
	std::string out;
	for (size_t i = 0; i < line.size() && i < quote_bytes_max; i++) {
		auto u = static_cast<unsigned char>(line[i]);
		out += u >= 0x20 && u < 0x7f ? static_cast<char>(u) : '?';
	}
	if (line.size() > quote_bytes_max)
		out += "...";
	return "\"" + out + "\"";
}

bool parse_version(std::string_view v) { return v == "HTTP/1.1" || v == "HTTP/1.0"; }

const char *default_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "";
	}
}

// 204 and 304 answers carry no body, whatever their headers say (RFC 9112
// 6.3); 1xx never reach here (refused: we never ask for one).
bool bodyless(int status) { return status == 204 || status == 304; }

void append_headers(std::string &out, const Headers &headers)
{
	for (const auto &[name, value] : headers) {
		// Header injection would be a caller's bug, as would framing of its own.
		assert(is_token(name));
		assert(value.find_first_of("\r\n") == std::string::npos);
		assert(!iequal(name, "Content-Length") && !iequal(name, "Transfer-Encoding"));
		out += name;
		out += ": ";
		out += value;
		out += "\r\n";
	}
}

} // namespace

std::string Request::header(std::string_view name) const { return find_header(headers, name); }

std::string Response::header(std::string_view name) const { return find_header(headers, name); }

std::string format_request(const Request &r)
{
	assert(is_token(r.method));
	assert(!r.header("Host").empty()); // HTTP/1.1 requires it (RFC 9112 3.2)
	assert(!r.target.empty() && r.target.find_first_of(" \r\n") == std::string::npos);
	std::string out = fmt::format("{} {} HTTP/1.1\r\n", r.method, r.target);
	append_headers(out, r.headers);
	out += fmt::format("Content-Length: {}\r\n\r\n", r.body.size());
	out += r.body;
	return out;
}

std::string format_response(const Response &r)
{
	assert(r.status >= 200 && r.status <= 599);
	assert(r.reason.find_first_of("\r\n") == std::string::npos);
	std::string out = fmt::format("HTTP/1.1 {} {}\r\n", r.status,
				      r.reason.empty() ? default_reason(r.status) : r.reason);
	append_headers(out, r.headers);
	if (bodyless(r.status)) {
		assert(r.body.empty());
		out += "\r\n";
		return out;
	}
	out += fmt::format("Content-Length: {}\r\n\r\n", r.body.size());
	out += r.body;
	return out;
}

Parser::Parser(Kind kind) : kind_(kind) {}

const Request &Parser::request() const
{
	assert(kind_ == Kind::request && state_ == State::done);
	return request_;
}

const Response &Parser::response() const
{
	assert(kind_ == Kind::response && state_ == State::done);
	return response_;
}

std::string Parser::take_leftover()
{
	std::string out = std::move(leftover_);
	leftover_.clear();
	return out;
}

Status Parser::fail(Status s)
{
	state_ = State::failed;
	error_ = s;
	if (refusal_ == 0)
		refusal_ = 400;
	buf_.clear();
	return s;
}

Status Parser::parse_head(std::string_view head)
{
	auto bad = [this](std::string message, int refusal = 400) {
		refusal_ = refusal;
		return Status(Code::network, "http: " + message);
	};
	// Every line ends with CRLF; a lone CR or LF inside one is a line end that
	// another reader might honour and we would not.
	std::vector<std::string_view> lines;
	while (!head.empty()) {
		size_t eol = head.find("\r\n");
		assert(eol != std::string_view::npos);
		std::string_view line = head.substr(0, eol);
		if (line.find_first_of("\r\n") != std::string_view::npos)
			return bad(fmt::format("bare CR or LF in line {}", quote(line)));
		lines.push_back(line);
		head.remove_prefix(eol + 2);
	}
	assert(!lines.empty());

	std::string_view start = lines[0];
	Headers *headers = nullptr;
	if (kind_ == Kind::request) {
		// method SP request-target SP HTTP-version, single spaces.
		size_t sp1 = start.find(' ');
		size_t sp2 = sp1 == std::string_view::npos ? sp1 : start.find(' ', sp1 + 1);
		bool ok = sp2 != std::string_view::npos && start.find(' ', sp2 + 1) == std::string_view::npos;
		std::string_view method, target;
		if (ok) {
			method = start.substr(0, sp1);
			target = start.substr(sp1 + 1, sp2 - sp1 - 1);
			ok = is_token(method) && !target.empty() && parse_version(start.substr(sp2 + 1));
			for (char c : target)
				ok = ok && !is_ctl(c) && static_cast<unsigned char>(c) < 0x80;
		}
		if (!ok)
			return bad(fmt::format("bad request line {}", quote(start)));
		request_.method = std::string(method);
		request_.target = std::string(target);
		headers = &request_.headers;
	} else {
		// HTTP-version SP 3DIGIT SP [reason]; a missing last SP is tolerated
		// (RFC 9112 4).
		bool ok = start.size() >= 12 && parse_version(start.substr(0, 8)) && start[8] == ' ' &&
			  (start.size() == 12 || start[12] == ' ');
		int status = 0;
		for (size_t i = 9; ok && i < 12; i++) {
			ok = start[i] >= '0' && start[i] <= '9';
			status = status * 10 + (start[i] - '0');
		}
		std::string_view reason = start.size() > 13 ? start.substr(13) : std::string_view();
		for (char c : reason)
			ok = ok && (!is_ctl(c) || c == '\t');
		ok = ok && status >= 100 && status <= 599;
		if (!ok)
			return bad(fmt::format("bad status line {}", quote(start)));
		if (status < 200)
			return bad(fmt::format("unexpected interim response {} (none was asked for)", status));
		response_.status = status;
		response_.reason = std::string(reason);
		headers = &response_.headers;
	}

	bool have_length = false, too_large = false;
	size_t length = 0;
	for (size_t i = 1; i < lines.size(); i++) {
		std::string_view line = lines[i];
		if (line.front() == ' ' || line.front() == '\t')
			return bad(fmt::format("folded header line {} (obs-fold is not allowed)",
					       quote(line)));
		size_t colon = line.find(':');
		if (colon == std::string_view::npos)
			return bad(fmt::format("header line without a colon: {}", quote(line)));
		std::string_view name = line.substr(0, colon);
		if (!is_token(name))
			return bad(fmt::format("bad header name in {}", quote(line)));
		std::string_view value = line.substr(colon + 1);
		while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
			value.remove_prefix(1);
		while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
			value.remove_suffix(1);
		for (char c : value)
			if (is_ctl(c) && c != '\t')
				return bad(fmt::format("control character in header {}", quote(line)));

		if (iequal(name, "Transfer-Encoding"))
			return bad(fmt::format("Transfer-Encoding \"{}\" is not supported (messages are "
					       "framed by Content-Length only)",
					       std::string(value)),
				   501);
		if (iequal(name, "Content-Length")) {
			bool digits = !value.empty();
			size_t n = 0;
			bool big = false;
			for (char c : value) {
				if (c < '0' || c > '9') {
					digits = false;
					break;
				}
				n = n * 10 + static_cast<size_t>(c - '0');
				// Stop before size_t could overflow: any such length is too large.
				if (n > http_body_bytes_max) {
					big = true;
					n = http_body_bytes_max + 1;
				}
			}
			if (!digits)
				return bad(fmt::format("invalid Content-Length {}", quote(value)));
			if (have_length && (n != length || big != too_large))
				return bad(fmt::format("conflicting Content-Length headers ({} and {})",
						       length, quote(value)));
			have_length = true;
			length = n;
			too_large = big;
		}
		headers->emplace_back(std::string(name), std::string(value));
	}

	if (kind_ == Kind::response && bodyless(response_.status)) {
		body_bytes_ = 0;
		return Status::ok();
	}
	if (!have_length) {
		if (kind_ == Kind::response)
			return bad("response without Content-Length (required: no chunked encoding, no "
				   "read-until-close)");
		length = 0;
	}
	if (too_large || length > http_body_bytes_max)
		return bad(fmt::format("body too large: Content-Length {} is over the limit of {} "
				       "bytes",
				       too_large ? std::string("> ") + std::to_string(http_body_bytes_max)
						 : std::to_string(length),
				       http_body_bytes_max),
			   413);
	body_bytes_ = length;
	return Status::ok();
}

Result<bool> Parser::feed(std::string_view bytes)
{
	if (state_ == State::failed)
		return error_;
	if (state_ == State::done) {
		leftover_.append(bytes);
		return true;
	}
	size_t from = scanned_ >= 3 ? scanned_ - 3 : 0;
	buf_.append(bytes);
	if (state_ == State::head) {
		// Look for the end of the head only where a head may be.
		size_t limit = std::min(buf_.size(), http_head_bytes_max);
		size_t end = std::string_view(buf_).substr(0, limit).find("\r\n\r\n", from);
		if (end == std::string_view::npos) {
			if (buf_.size() >= http_head_bytes_max) {
				refusal_ = 431;
				return fail(Status(Code::network,
						   fmt::format("http: head too large (no empty line within "
							       "{} bytes)",
							       http_head_bytes_max)));
			}
			scanned_ = limit;
			return false;
		}
		head_bytes_ = end + 4;
		Status s = parse_head(std::string_view(buf_).substr(0, end + 2));
		if (!s.is_ok())
			return fail(s);
		state_ = State::body;
		// Everything is checked against the limits before this allocation.
		buf_.reserve(head_bytes_ + body_bytes_);
	}
	size_t need = head_bytes_ + body_bytes_;
	if (buf_.size() < need)
		return false;
	std::string body = buf_.substr(head_bytes_, body_bytes_);
	leftover_ = buf_.substr(need);
	buf_.clear();
	buf_.shrink_to_fit();
	if (kind_ == Kind::request)
		request_.body = std::move(body);
	else
		response_.body = std::move(body);
	state_ = State::done;
	return true;
}

namespace {

// Reads one message of `kind` into `parser`. `clean_close` (when given) is set
// if the peer closed the connection before its first byte.
Status read_message(TlsStream &stream, Parser &parser, const char *what, bool *clean_close,
		    const RequestBounds &bounds = {})
{
	using Clock = std::chrono::steady_clock;
	if (clean_close != nullptr)
		*clean_close = false;
	// Each read waits at most the stream's io time-out, and no longer than
	// the bound of the message's stage (its first byte, then all of it).
	const int io_ms = stream.io_timeout();
	struct Restore {
		TlsStream &s;
		int ms;
		~Restore() { s.set_io_timeout(ms); }
	} restore{stream, io_ms};
	const Clock::time_point start = Clock::now();
	std::optional<Clock::time_point> first;
	auto ms_left = [](Clock::time_point since, int bound) {
		return bound - std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
	};
	auto too_slow = [&] {
		return Status(Code::network, fmt::format("http: {} took more than {} ms to send a {}", stream.peer(),
							 bounds.request_ms, what));
	};
	std::string chunk(read_chunk_bytes, '\0');
	for (;;) {
		int64_t wait = io_ms;
		if (!parser.started() && bounds.idle_ms > 0) {
			wait = std::min(wait, ms_left(start, bounds.idle_ms));
			if (wait <= 0) {
				if (clean_close != nullptr)
					*clean_close = true; // kept open, never used again: closed
				return Status::ok();
			}
		} else if (parser.started() && bounds.request_ms > 0) {
			if (!first)
				first = Clock::now();
			wait = std::min(wait, ms_left(*first, bounds.request_ms));
			if (wait <= 0)
				return too_slow();
		}
		stream.set_io_timeout(static_cast<int>(wait));
		auto n = stream.read_some(chunk.data(), chunk.size());
		if (!n) {
			// A read cut short by the bound, not by the io time-out, is
			// the bound's doing: said so.
			if (!parser.started() && bounds.idle_ms > 0 && ms_left(start, bounds.idle_ms) <= 0 &&
			    clean_close != nullptr) {
				*clean_close = true;
				return Status::ok();
			}
			if (first && bounds.request_ms > 0 && ms_left(*first, bounds.request_ms) <= 0)
				return too_slow();
			return n.status();
		}
		if (*n == 0) {
			if (!parser.started() && clean_close != nullptr) {
				*clean_close = true;
				return Status::ok();
			}
			return Status(Code::network,
				      fmt::format("http: {} closed the connection {} {}", stream.peer(),
						  parser.started() ? "in the middle of a" : "instead of sending a",
						  what));
		}
		if (!first && bounds.request_ms > 0)
			first = Clock::now();
		auto done = parser.feed(std::string_view(chunk.data(), *n));
		if (!done)
			return Status(Code::network,
				      fmt::format("{} (in a {} from {})", done.status().message(), what,
						  stream.peer()));
		if (*done) {
			stream.unread(parser.take_leftover());
			return Status::ok();
		}
	}
}

} // namespace

Result<std::optional<Request>> read_next_request(TlsStream &stream, int *refuse_with, const RequestBounds &bounds)
{
	Parser p(Parser::Kind::request);
	bool closed = false;
	Status s = read_message(stream, p, "request", &closed, bounds);
	if (refuse_with != nullptr)
		*refuse_with = p.refusal();
	LOY_TRY(s);
	if (closed)
		return std::optional<Request>();
	return std::optional<Request>(p.request());
}

Result<Request> read_request(TlsStream &stream)
{
	Parser p(Parser::Kind::request);
	LOY_TRY(read_message(stream, p, "request", nullptr));
	return p.request();
}

Result<Response> read_response(TlsStream &stream)
{
	Parser p(Parser::Kind::response);
	LOY_TRY(read_message(stream, p, "response", nullptr));
	return p.response();
}

Status write_request(TlsStream &stream, const Request &request)
{
	return stream.write_all(format_request(request));
}

Status write_response(TlsStream &stream, const Response &response)
{
	return stream.write_all(format_response(response));
}

Result<Endpoint> parse_server_url(const std::string &url)
{
	const std::string scheme = "https://";
	auto bad = [&] {
		return Status(Code::bad_argument,
			      fmt::format("server \"{}\" is not https://HOST:PORT", url));
	};
	if (url.compare(0, scheme.size(), scheme) != 0)
		return bad();
	std::string rest = url.substr(scheme.size());
	if (!rest.empty() && rest.back() == '/')
		rest.pop_back();
	Endpoint ep;
	size_t colon;
	if (!rest.empty() && rest[0] == '[') {
		size_t close = rest.find(']');
		if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
			return bad();
		ep.host = rest.substr(1, close - 1);
		colon = close + 1;
	} else {
		colon = rest.rfind(':');
		if (colon == std::string::npos || colon == 0)
			return bad();
		ep.host = rest.substr(0, colon);
	}
	std::string port = rest.substr(colon + 1);
	if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
		return bad();
	int p = std::stoi(port);
	if (p < 1 || p > 65535)
		return bad();
	ep.port = static_cast<uint16_t>(p);
	return ep;
}

} // namespace loy::net
