// A small, bounded HTTP/1.1 framing layer for the sync protocol: messages
// framed by Content-Length only (no chunked encoding), several
// request/response pairs per connection, strict parsing (no obs-fold, no
// Transfer-Encoding, no conflicting lengths) so that both ends read the same
// message boundaries.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.hpp"
#include "sync/tls.hpp"

namespace loy::net {

// Request line or status line plus headers: ours are a few hundred bytes;
// 16 KiB is what common servers allow, and bounds a peer that never ends them.
inline constexpr size_t http_head_bytes_max = 16 << 10;
// A sync batch of ledger entries, or a snapshot of balances, with room to
// spare; the receiver allocates no more than this for one message.
inline constexpr size_t http_body_bytes_max = 8 << 20;

using Headers = std::vector<std::pair<std::string, std::string>>;

// Where a server listens or a terminal connects: "https://HOST:PORT" (HOST
// a name, an IPv4 literal or [v6]).
struct Endpoint {
	std::string host;
	uint16_t port = 0;
};
Result<Endpoint> parse_server_url(const std::string &url);

struct Request {
	std::string method, target;
	Headers headers;
	std::string body;
	// The value of the first header of that name (case-insensitive); empty
	// when there is none.
	std::string header(std::string_view name) const;
};

struct Response {
	int status = 200;
	std::string reason;
	Headers headers;
	std::string body;
	std::string header(std::string_view name) const;
};

// "HTTP/1.1" messages. Content-Length is added (a Content-Length or
// Transfer-Encoding among the headers is a caller's bug: asserted). The
// caller gives Host. 204 and 304 responses carry no body and no length.
std::string format_request(const Request &request);
std::string format_response(const Response &response);

// Incremental parser: feed bytes as they arrive. feed() returns true once a
// whole message is in; bytes past its end are kept for take_leftover(), and
// any fed after that too. Errors are Code::network and name the problem.
class Parser {
public:
	enum class Kind { request, response };
	explicit Parser(Kind kind);

	Result<bool> feed(std::string_view bytes);
	bool done() const { return state_ == State::done; }
	// True once any byte came in: a close before that is a clean end of a
	// keep-alive connection, a close after it a truncated message.
	bool started() const { return !buf_.empty() || state_ != State::head; }
	const Request &request() const;
	const Response &response() const;
	std::string take_leftover();
	// After a failed feed: the status a server answers the malformed
	// message with (400, 413 body too large, 431 head too large, 501
	// Transfer-Encoding); 0 while nothing failed.
	int refusal() const { return refusal_; }

private:
	enum class State { head, body, done, failed };
	Status parse_head(std::string_view head);
	Status fail(Status s);

	Kind kind_;
	State state_ = State::head;
	std::string buf_;         // the head, then the body, as they arrive
	size_t scanned_ = 0;      // buf_[0, scanned_) holds no end of head
	size_t head_bytes_ = 0;   // head with its blank line
	size_t body_bytes_ = 0;   // from Content-Length
	std::string leftover_;
	Request request_;
	Response response_;
	Status error_;
	int refusal_ = 0;
};

// One whole message from the stream (bounded by the limits above; each read
// by the stream's io time-out); bytes past it stay in the stream for the next.
Result<Request> read_request(TlsStream &stream);
Result<Response> read_response(TlsStream &stream);
// Bounds of a request on a kept connection, beside each read's io time-out,
// so that a peer cannot hold a server's worker by being slow: the wait for
// its first byte, and for the whole of it from there (0: no bound).
struct RequestBounds {
	int idle_ms = 0;
	int request_ms = 0;
};
// As read_request, but a peer that closes the connection before sending any
// byte of a request is the clean end of a keep-alive connection: nullopt;
// so is one that sends none within bounds.idle_ms. A request not whole
// within bounds.request_ms of its first byte fails (Code::network).
// When the request was malformed (not cut short, not timed out),
// `refuse_with` (if given) is set to the status to answer it with, else 0.
Result<std::optional<Request>> read_next_request(TlsStream &stream, int *refuse_with = nullptr,
						 const RequestBounds &bounds = {});

Status write_request(TlsStream &stream, const Request &request);
Status write_response(TlsStream &stream, const Response &response);

} // namespace loy::net
