// The POS channel: a Unix stream socket on which the POS application (in
// any language) sends requests as JSON lines and reads answers and events as
// JSON lines (firmware/POS.md). This file is the transport only: accepting,
// framing lines, buffering output so that a slow reader never blocks the
// till. What a request means is the cashier loop's business.
#pragma once

#include <sys/types.h>

#include <chrono>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.hpp"

namespace loy::fw {

class PosChannel {
public:
	// Longest request line: a basket of a few thousand lines fits.
	static constexpr size_t line_max = 1 << 20;
	// Output held for one client at most; past it the client is dropped
	// (it stopped reading), rather than the till's memory grow.
	static constexpr size_t backlog_max = 4 << 20;
	// Output held for all clients together, at most: past it the client
	// holding the most is dropped. With line_max per client read in, the
	// channel's buffers stay within 16 × 1 MiB + 16 MiB however many
	// clients stop reading (tested).
	static constexpr size_t backlogs_max = 16 << 20;
	// Clients at once: a POS, a back-office tool, a test. One more makes
	// room by dropping the client silent the longest (no request since it
	// came or since its last one), if that is quiet_ms_min or more: idle or
	// slow connections cannot lock the POS out, a POS dropped while idle
	// connects again, and one that just came has time for its request.
	static constexpr size_t clients_max = 16;
	static constexpr int quiet_ms_min = 1000;
	// Dropped clients still reading their last answers, at most: past it
	// the oldest goes at once.
	static constexpr size_t closing_max = 64;
	// A client that hung up (or is being dropped) has this long to read its
	// last answers.
	static constexpr int flush_ms_max = 5000;
	// Bytes read from one client per poll: one client streaming requests
	// must not keep the till from the others.
	static constexpr size_t read_per_poll = 64 << 10;

	PosChannel() = default;
	~PosChannel();
	PosChannel(const PosChannel &) = delete;
	PosChannel &operator=(const PosChannel &) = delete;

	// Listens on `path` with permissions `mode`. A stale socket file (no
	// one listening) is replaced; a live one is an error: two tills on one
	// socket would take each other's baskets.
	Status listen(const std::string &path, mode_t mode);

	// Waits up to timeout_ms for a request, a client or `wake_fd` readable
	// (-1: none), then calls on_line(client, line) for each complete line.
	// A line too long is answered by on_error and the client dropped.
	using LineFn = std::function<void(int client, const std::string &line)>;
	void poll_once(int timeout_ms, int wake_fd, const LineFn &on_line);

	// Queues `line` (without its '\n') to one client, or to all (broadcast).
	void send(int client, const std::string &line);
	void broadcast(const std::string &line);

	size_t clients() const { return clients_.size(); }
	const std::string &path() const { return path_; }

private:
	struct Client {
		int fd = -1;
		int id = 0;
		std::string in, out;
		// No more requests are read; dropped once `out` is written, or
		// after flush_ms_max if the client does not read it.
		bool closing = false;
		std::chrono::steady_clock::time_point closing_since;
		std::chrono::steady_clock::time_point last_request; // or when it came
	};
	bool make_room();
	void close_client(Client &c, bool keep_output);
	void accept_clients();
	void read_client(Client &c, const LineFn &on_line);
	void write_client(Client &c);
	void drop_closed();

	int fd_ = -1;
	int next_id_ = 1;
	std::string path_;
	std::vector<Client> clients_;
};

} // namespace loy::fw
