#include "firmware/pos.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace loy::fw {

namespace {

Status sys_error(const std::string &what)
{
	return Status(Code::bad_argument, fmt::format("pos socket: {}: {}", what, std::strerror(errno)));
}

bool fill_address(const std::string &path, sockaddr_un *a)
{
	std::memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	if (path.empty() || path.size() >= sizeof a->sun_path)
		return false;
	std::memcpy(a->sun_path, path.data(), path.size());
	return true;
}

} // namespace

PosChannel::~PosChannel()
{
	for (auto &c : clients_)
		::close(c.fd);
	if (fd_ >= 0) {
		::close(fd_);
		::unlink(path_.c_str());
	}
}

Status PosChannel::listen(const std::string &path, mode_t mode)
{
	sockaddr_un a;
	if (!fill_address(path, &a))
		return Status(Code::bad_argument, fmt::format("pos socket: path \"{}\" is empty or longer than "
							      "{} bytes",
							      path, sizeof a.sun_path - 1));
	int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return sys_error("socket");
	struct stat st;
	if (::lstat(path.c_str(), &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			::close(fd);
			return Status(Code::bad_argument,
				      fmt::format("pos socket: {} exists and is not a socket", path));
		}
		// Someone answering there is another till: refuse. A refusal: a
		// socket left by a till that died; take its place. Anything else
		// (no permission, a till too busy to accept): we cannot tell, so
		// we leave it. The probe does not block.
		int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (probe < 0) {
			Status s = sys_error("socket");
			::close(fd);
			return s;
		}
		int rc = ::connect(probe, reinterpret_cast<sockaddr *>(&a), sizeof a);
		int err = rc == 0 ? 0 : errno;
		::close(probe);
		if (rc == 0 || err == EAGAIN || err == EINPROGRESS) {
			::close(fd);
			return Status(Code::bad_argument,
				      fmt::format("pos socket: another till listens on {}", path));
		}
		if (err != ECONNREFUSED) {
			::close(fd);
			return Status(Code::bad_argument, fmt::format("pos socket: cannot tell whether another till "
								      "listens on {}: {}",
								      path, std::strerror(err)));
		}
		::unlink(path.c_str());
	}
	// The socket is made with the final permissions (no window in which
	// another user could connect) and listens under a name of its own
	// before it is renamed into place: a POS that sees the path can
	// connect at once, never "connection refused" from a socket bound but
	// not yet listening. A path too long for the extra suffix is bound in
	// place (the POS then waits for the first accept as before).
	std::string staged = fmt::format("{}.{}.new", path, ::getpid());
	sockaddr_un at;
	bool rename_after = fill_address(staged, &at);
	if (!rename_after)
		at = a;
	else
		::unlink(staged.c_str());
	mode_t old = ::umask(static_cast<mode_t>(~mode & 0777));
	int rc = ::bind(fd, reinterpret_cast<sockaddr *>(&at), sizeof at);
	::umask(old);
	if (rc != 0 || ::listen(fd, 16) != 0 || (rename_after && ::rename(staged.c_str(), path.c_str()) != 0)) {
		Status s = sys_error(path);
		::close(fd);
		if (rc == 0 && rename_after)
			::unlink(staged.c_str());
		return s;
	}
	fd_ = fd;
	path_ = path;
	return Status::ok();
}

void PosChannel::poll_once(int timeout_ms, int wake_fd, const LineFn &on_line)
{
	std::vector<pollfd> fds;
	fds.push_back({fd_, POLLIN, 0});
	fds.push_back({wake_fd, POLLIN, 0});
	// A closing client is only written to: polled for input it would wake
	// the loop at once, again and again, for bytes nobody reads.
	for (const auto &c : clients_)
		fds.push_back({c.fd,
			       static_cast<short>((c.closing ? 0 : POLLIN) | (c.out.empty() ? 0 : POLLOUT)), 0});
	int n = ::poll(fds.data(), fds.size(), timeout_ms);
	if (n <= 0)
		return;
	// Clients first, as they were when polled; accept after, so that the
	// indexes match.
	for (size_t i = 0; i < clients_.size(); i++) {
		short ev = fds[i + 2].revents;
		if (ev & (POLLIN | POLLHUP | POLLERR))
			read_client(clients_[i], on_line);
		if (ev & POLLOUT)
			write_client(clients_[i]);
	}
	if (fds[0].revents & POLLIN)
		accept_clients();
	drop_closed();
}

void PosChannel::accept_clients()
{
	for (;;) {
		int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (c < 0)
			return;
		if (!make_room()) {
			static const char busy[] = "{\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":\"too many "
						   "POS clients, each busy within the last second\"}}\n";
			(void)!::write(c, busy, sizeof busy - 1);
			::close(c);
			continue;
		}
		Client cl;
		cl.fd = c;
		cl.id = next_id_++;
		cl.last_request = std::chrono::steady_clock::now();
		clients_.push_back(std::move(cl));
	}
}

bool PosChannel::make_room()
{
	const auto now = std::chrono::steady_clock::now();
	auto active = [](const Client &c) { return !c.closing; };
	if (static_cast<size_t>(std::count_if(clients_.begin(), clients_.end(), active)) >= clients_max) {
		auto quiet = clients_.end();
		for (auto it = clients_.begin(); it != clients_.end(); ++it)
			if (active(*it) && (quiet == clients_.end() || it->last_request < quiet->last_request))
				quiet = it;
		if (now - quiet->last_request < std::chrono::milliseconds(quiet_ms_min))
			return false;
		send(quiet->id, "{\"event\":\"dropped\",\"reason\":\"too many POS clients: this one was "
				"silent the longest\"}");
		close_client(*quiet, true);
	}
	// Dropped clients that do not read their last lines go first.
	while (clients_.size() >= clients_max + closing_max) {
		auto old = std::min_element(clients_.begin(), clients_.end(), [](const Client &a, const Client &b) {
			return a.closing != b.closing ? a.closing : a.closing_since < b.closing_since;
		});
		::close(old->fd);
		clients_.erase(old);
	}
	return true;
}

void PosChannel::close_client(Client &c, bool keep_output)
{
	if (!c.closing) {
		c.closing = true;
		c.closing_since = std::chrono::steady_clock::now();
	}
	c.in.clear();
	if (!keep_output)
		c.out.clear();
}

void PosChannel::read_client(Client &c, const LineFn &on_line)
{
	char buf[16384];
	for (size_t got = 0; !c.closing && got < read_per_poll;) {
		ssize_t n = ::read(c.fd, buf, sizeof buf);
		if (n == 0) {
			// Hung up, or only shut its side for writing: its requests
			// are all in, and their answers still go out.
			close_client(c, true);
			break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				close_client(c, false);
			break;
		}
		got += static_cast<size_t>(n);
		c.in.append(buf, static_cast<size_t>(n));
		size_t start = 0;
		for (size_t nl; !c.closing && (nl = c.in.find('\n', start)) != std::string::npos; start = nl + 1) {
			std::string line = c.in.substr(start, nl - start);
			if (!line.empty() && line.back() == '\r')
				line.pop_back();
			// An empty line too gets its answer (bad JSON): every line does.
			c.last_request = std::chrono::steady_clock::now();
			on_line(c.id, line);
		}
		if (c.closing)
			break; // dropped while answering: the rest is not read
		c.in.erase(0, start);
		if (c.in.size() > line_max) {
			send(c.id, fmt::format("{{\"ok\":false,\"error\":{{\"code\":\"bad_argument\",\"message\":"
					       "\"request line longer than {} bytes\"}}}}",
					       line_max));
			close_client(c, true);
			break;
		}
	}
}

void PosChannel::write_client(Client &c)
{
	while (!c.out.empty()) {
		ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				close_client(c, false);
			return;
		}
		c.out.erase(0, static_cast<size_t>(n));
	}
}

void PosChannel::send(int client, const std::string &line)
{
	for (auto &c : clients_) {
		if (c.id != client || (c.closing && c.out.empty()))
			continue;
		if (c.out.size() + line.size() > backlog_max) {
			close_client(c, false);
			return;
		}
		c.out += line;
		c.out += '\n';
		write_client(c);
	}
	size_t held = 0;
	for (const auto &c : clients_)
		held += c.out.size();
	if (held > backlogs_max) {
		auto most = std::max_element(clients_.begin(), clients_.end(), [](const Client &a, const Client &b) {
			return a.out.size() < b.out.size();
		});
		close_client(*most, false);
	}
}

void PosChannel::broadcast(const std::string &line)
{
	for (auto &c : clients_)
		if (!c.closing)
			send(c.id, line);
}

void PosChannel::drop_closed()
{
	const auto now = std::chrono::steady_clock::now();
	for (size_t i = 0; i < clients_.size();) {
		const Client &c = clients_[i];
		if (c.closing && (c.out.empty() || now - c.closing_since > std::chrono::milliseconds(flush_ms_max))) {
			::close(clients_[i].fd);
			clients_.erase(clients_.begin() + static_cast<std::ptrdiff_t>(i));
		} else {
			i++;
		}
	}
}

} // namespace loy::fw
