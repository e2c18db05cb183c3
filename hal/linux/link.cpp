// The link from the kernel: rtnetlink messages parsed into a table of
// interfaces, and the device that keeps the table current from a socket
// subscribed to RTMGRP_LINK, or from /sys/class/net where netlink is not
// allowed (some sandboxes and seccomp profiles).
#include <dirent.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "hal/linux/decode.hpp"
#include "hal/linux/sys.hpp"

namespace loy::hal {

namespace {

// RFC 2863 operational states as IFLA_OPERSTATE carries them (IF_OPER_*).
constexpr int oper_unknown = 0;
constexpr int oper_up = 6;

constexpr size_t align4(size_t n) { return (n + 3) & ~size_t{3}; }

// Netlink attribute types carry two flag bits above the type.
constexpr uint16_t attr_type_mask = 0x3fff;

} // namespace

bool LinkTable::is_up(unsigned flags, int operstate)
{
	if (!(flags & IFF_UP))
		return false;
	if (operstate == oper_up)
		return true;
	// tun, dummy and some drivers never report an operational state; the
	// kernel then sets IFF_RUNNING from the carrier.
	if (operstate == oper_unknown || operstate < 0)
		return (flags & IFF_RUNNING) != 0;
	return false;
}

void LinkTable::set(int index, LinkInfo info)
{
	auto it = links_.find(index);
	if (it == links_.end() && links_.size() >= links_max)
		return;
	links_[index] = std::move(info);
}

const LinkInfo *LinkTable::find(const std::string &name) const
{
	for (const auto &[index, info] : links_)
		if (info.name == name)
			return &info;
	return nullptr;
}

bool LinkTable::up(const std::string &ifname) const
{
	for (const auto &[index, info] : links_) {
		if (ifname.empty() ? !info.loopback && info.up : info.name == ifname)
			return info.up;
	}
	return false;
}

void LinkTable::begin_dump()
{
	for (auto &[index, info] : links_)
		info.seen = false;
	dump_done_ = false;
}

int LinkTable::apply_link(uint16_t type, const unsigned char *msg, size_t len)
{
	struct ifinfomsg ifi;
	if (len < sizeof ifi)
		return LOY_HAL_E_IO;
	std::memcpy(&ifi, msg, sizeof ifi);
	if (type == RTM_DELLINK) {
		links_.erase(ifi.ifi_index);
		return 0;
	}
	std::string name;
	int operstate = -1;
	size_t off = align4(sizeof ifi);
	while (off < len) {
		struct rtattr a;
		if (len - off < sizeof a)
			return LOY_HAL_E_IO;
		std::memcpy(&a, msg + off, sizeof a);
		if (a.rta_len < sizeof a || a.rta_len > len - off)
			return LOY_HAL_E_IO;
		const unsigned char *data = msg + off + sizeof a;
		const size_t data_len = a.rta_len - sizeof a;
		switch (a.rta_type & attr_type_mask) {
		case IFLA_IFNAME:
			name.assign(reinterpret_cast<const char *>(data),
				    strnlen(reinterpret_cast<const char *>(data), data_len));
			break;
		case IFLA_OPERSTATE:
			if (data_len >= 1)
				operstate = data[0];
			break;
		default: break;
		}
		off += align4(a.rta_len);
	}
	LinkInfo info;
	auto it = links_.find(ifi.ifi_index);
	// A change message may leave out the name; the interface keeps it.
	info.name = !name.empty() || it == links_.end() ? name : it->second.name;
	info.up = is_up(ifi.ifi_flags, operstate);
	info.loopback = (ifi.ifi_flags & IFF_LOOPBACK) != 0;
	info.seen = true;
	set(ifi.ifi_index, std::move(info));
	return 0;
}

int LinkTable::apply(const void *buf, size_t len)
{
	const auto *p = static_cast<const unsigned char *>(buf);
	size_t off = 0;
	while (off < len) {
		struct nlmsghdr h;
		if (len - off < sizeof h)
			return LOY_HAL_E_IO;
		std::memcpy(&h, p + off, sizeof h);
		if (h.nlmsg_len < sizeof h || h.nlmsg_len > len - off)
			return LOY_HAL_E_IO;
		const unsigned char *body = p + off + sizeof h;
		const size_t body_len = h.nlmsg_len - sizeof h;
		switch (h.nlmsg_type) {
		case NLMSG_DONE:
			for (auto it = links_.begin(); it != links_.end();)
				it = it->second.seen ? std::next(it) : links_.erase(it);
			dump_done_ = true;
			break;
		case NLMSG_ERROR: {
			int32_t error;
			if (body_len < sizeof error)
				return LOY_HAL_E_IO;
			std::memcpy(&error, body, sizeof error);
			if (error != 0) // 0 is an acknowledgement
				return LOY_HAL_E_IO;
			break;
		}
		case RTM_NEWLINK:
		case RTM_DELLINK:
			if (apply_link(h.nlmsg_type, body, body_len) != 0)
				return LOY_HAL_E_IO;
			break;
		default: break; // NLMSG_NOOP, NLMSG_OVERRUN, other families' news
		}
		// The last message of a datagram may come without its padding.
		off += std::min(align4(h.nlmsg_len), len - off);
	}
	return 0;
}

namespace {

// A datagram of a dump holds at most 32 KiB (the kernel's largest dump skb).
constexpr size_t datagram_bytes_max = 32 << 10;
// Datagrams taken per look: an event storm cannot keep a caller inside.
constexpr int datagrams_per_look = 64;
// How long open waits for the first dump before falling back to sysfs.
constexpr int open_dump_ms = 2000;
// How often /sys/class/net is read again while waiting for a change.
constexpr int sysfs_period_ms = 1000;
// Bytes read of a sysfs attribute: "lowerlayerdown\n" is the longest.
constexpr size_t sysfs_attr_bytes = 64;

struct Link {
	Sys sys;
	std::string ifname;
	int fd = -1; // the netlink socket; -1 when reading /sys/class/net
	std::mutex mu;
	LinkTable table;
	bool up = false;
	uint64_t generation = 0; // bumped by every change of `up`
	uint64_t reported = 0;   // generation when is_up() last answered
	uint32_t seq = 0;
	std::vector<unsigned char> buf;
};

int send_dump_locked(Link *l)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req;
	std::memset(&req, 0, sizeof req);
	req.h.nlmsg_len = sizeof req;
	req.h.nlmsg_type = RTM_GETLINK;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.h.nlmsg_seq = ++l->seq;
	req.i.ifi_family = AF_UNSPEC;
	ssize_t n = l->sys.send(l->fd, &req, sizeof req, 0);
	if (n != static_cast<ssize_t>(sizeof req))
		return LOY_HAL_E_IO;
	l->table.begin_dump();
	return 0;
}

void recompute_locked(Link *l)
{
	bool now = l->table.up(l->ifname);
	if (now != l->up) {
		l->up = now;
		l->generation++;
	}
}

// Applies what the socket holds, without waiting.
int drain_locked(Link *l)
{
	bool lost = false;
	for (int i = 0; i < datagrams_per_look; i++) {
		ssize_t n = l->sys.recv(l->fd, l->buf.data(), l->buf.size(), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			// The kernel's queue overflowed: events were dropped.
			if (errno == ENOBUFS) {
				lost = true;
				continue;
			}
			return LOY_HAL_E_IO;
		}
		if (static_cast<size_t>(n) > l->buf.size()) {
			lost = true;
			continue;
		}
		if (l->table.apply(l->buf.data(), static_cast<size_t>(n)) != 0)
			return LOY_HAL_E_IO;
		// After each event, not once at the end: a flap that comes and
		// goes within one look still counts.
		recompute_locked(l);
	}
	if (lost) {
		// Ask for the whole table again, and wake waiters: what was lost
		// may have been a flap.
		if (send_dump_locked(l) != 0)
			return LOY_HAL_E_IO;
		l->generation++;
	}
	recompute_locked(l);
	return 0;
}

bool read_attr(const Sys &sys, const std::string &path, std::string *out)
{
	int fd = sys.open(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return false;
	char text[sysfs_attr_bytes];
	ssize_t n = sys.read(fd, text, sizeof text);
	sys.close(fd);
	if (n < 0)
		return false;
	out->assign(text, static_cast<size_t>(n));
	while (!out->empty() && (out->back() == '\n' || out->back() == ' '))
		out->pop_back();
	return true;
}

int refresh_sysfs_locked(Link *l)
{
	static const char root[] = "/sys/class/net";
	DIR *dir = ::opendir(root);
	if (!dir)
		return LOY_HAL_E_IO;
	LinkTable fresh;
	int index = 0;
	while (const struct dirent *e = ::readdir(dir)) {
		if (e->d_name[0] == '.')
			continue;
		std::string base = std::string(root) + "/" + e->d_name + "/";
		std::string oper, flags_text;
		if (!read_attr(l->sys, base + "operstate", &oper) ||
		    !read_attr(l->sys, base + "flags", &flags_text))
			continue; // went away while listed
		unsigned flags = static_cast<unsigned>(std::strtoul(flags_text.c_str(), nullptr, 16));
		int operstate = oper == "up" ? oper_up : oper == "unknown" ? oper_unknown : 2;
		LinkInfo info;
		info.name = e->d_name;
		info.up = LinkTable::is_up(flags, operstate);
		info.loopback = (flags & IFF_LOOPBACK) != 0;
		fresh.set(index++, std::move(info));
	}
	::closedir(dir);
	l->table = std::move(fresh);
	recompute_locked(l);
	return 0;
}

int update_locked(Link *l) { return l->fd >= 0 ? drain_locked(l) : refresh_sysfs_locked(l); }

int is_up(void *ctx)
{
	auto *l = static_cast<Link *>(ctx);
	try {
		std::lock_guard lock(l->mu);
		if (int rc = update_locked(l); rc < 0)
			return rc;
		l->reported = l->generation;
		return l->up ? 1 : 0;
	} catch (...) {
		return LOY_HAL_E_IO;
	}
}

int wait_change_(Link *l, int timeout_ms)
{
	const int64_t deadline = deadline_after(l->sys, timeout_ms);
	{
		std::lock_guard lock(l->mu);
		if (int rc = update_locked(l); rc < 0)
			return rc;
		if (l->generation != l->reported)
			return 1;
	}
	for (;;) {
		int left_ms = poll_timeout_ms(l->sys, deadline);
		int n;
		bool last = false;
		if (l->fd >= 0) {
			// Without the lock: is_up() may drain the socket meanwhile,
			// and then this finds nothing new and waits again.
			struct pollfd p = {l->fd, POLLIN, 0};
			n = l->sys.poll(&p, 1, left_ms);
			last = n == 0;
		} else {
			int nap_ms = left_ms < 0 || left_ms > sysfs_period_ms ? sysfs_period_ms : left_ms;
			n = l->sys.poll(nullptr, 0, nap_ms);
			last = nap_ms == left_ms;
		}
		if (n < 0 && errno != EINTR)
			return LOY_HAL_E_IO;
		std::lock_guard lock(l->mu);
		if (int rc = update_locked(l); rc < 0)
			return rc;
		if (l->generation != l->reported)
			return 1;
		if (last)
			return 0;
	}
}

int wait_change(void *ctx, int timeout_ms)
{
	try {
		return wait_change_(static_cast<Link *>(ctx), timeout_ms);
	} catch (...) {
		return LOY_HAL_E_IO;
	}
}

// The first dump, read to its end, so that is_up() answers from the start.
int open_netlink(Link *l)
{
	l->fd = l->sys.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
	if (l->fd < 0)
		return LOY_HAL_E_IO;
	struct sockaddr_nl sa;
	std::memset(&sa, 0, sizeof sa);
	sa.nl_family = AF_NETLINK;
	sa.nl_groups = RTMGRP_LINK;
	if (l->sys.bind(l->fd, reinterpret_cast<const struct sockaddr *>(&sa), sizeof sa) != 0 ||
	    send_dump_locked(l) != 0)
		return LOY_HAL_E_IO;
	const int64_t deadline = deadline_after(l->sys, open_dump_ms);
	while (!l->table.dump_done()) {
		struct pollfd p = {l->fd, POLLIN, 0};
		int n = l->sys.poll(&p, 1, poll_timeout_ms(l->sys, deadline));
		if (n == 0 || (n < 0 && errno != EINTR))
			return LOY_HAL_E_IO;
		if (drain_locked(l) != 0)
			return LOY_HAL_E_IO;
	}
	return 0;
}

} // namespace

int link_open(loy_hal_link *out, const char *ifname, const Sys &sys)
{
	if (!out)
		return LOY_HAL_E_ARGUMENT;
	*out = {};
	if (ifname && (!*ifname || std::strlen(ifname) >= IFNAMSIZ || std::strchr(ifname, '/')))
		return LOY_HAL_E_ARGUMENT;
	Link *l = nullptr;
	try {
		l = new Link;
		l->sys = sys;
		l->ifname = ifname ? ifname : "";
		l->buf.resize(datagram_bytes_max);
		// No other thread knows the link yet: no lock.
		if (open_netlink(l) != 0) {
			if (l->fd >= 0)
				sys.close(l->fd);
			l->fd = -1;
			l->table.clear();
			if (refresh_sysfs_locked(l) != 0) {
				delete l;
				return LOY_HAL_E_IO;
			}
		}
		// Whatever the first look found is the starting state, not a
		// change.
		l->reported = l->generation;
	} catch (...) {
		delete l;
		return LOY_HAL_E_IO;
	}
	out->version = LOY_HAL_LINK_VERSION;
	out->is_up = is_up;
	out->wait_change = wait_change;
	out->ctx = l;
	return 0;
}

} // namespace loy::hal

extern "C" int loy_hal_linux_link_open(loy_hal_link *out, const char *ifname)
{
	return loy::hal::link_open(out, ifname, loy::hal::real_sys());
}

extern "C" void loy_hal_linux_link_close(loy_hal_link *link)
{
	if (!link || !link->ctx)
		return;
	auto *l = static_cast<loy::hal::Link *>(link->ctx);
	if (l->fd >= 0)
		l->sys.close(l->fd);
	delete l;
	*link = {};
}
