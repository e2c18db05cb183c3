// The link monitor: its parsing of rtnetlink messages from synthetic buffers
// (new, changed and removed interfaces, dumps, errors, malformed messages),
// the rule for "up", the device loop over a socketpair that plays the kernel
// through the Sys table (changes, flaps, lost events), the /sys/class/net
// fallback, and the real kernel answering 0 or 1 without crashing.
#include <catch2/catch.hpp>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "hal/linux/decode.hpp"
#include "hal/linux/sys.hpp"
#include "loyalty/hal.h"

using loy::hal::LinkTable;
using Buf = std::vector<unsigned char>;

namespace {

constexpr int oper_unknown = 0, oper_down = 2, oper_dormant = 5, oper_up = 6;
constexpr unsigned up_running = IFF_UP | IFF_RUNNING;

void pad4(Buf &b)
{
	while (b.size() % 4)
		b.push_back(0);
}

void append(Buf &b, const void *p, size_t n)
{
	const auto *c = static_cast<const unsigned char *>(p);
	b.insert(b.end(), c, c + n);
}

void attr(Buf &b, uint16_t type, const void *data, size_t n)
{
	struct rtattr a;
	a.rta_len = static_cast<unsigned short>(sizeof a + n);
	a.rta_type = type;
	append(b, &a, sizeof a);
	append(b, data, n);
	pad4(b);
}

// One netlink message; its length is fixed up at the end.
Buf message(uint16_t type, const Buf &body, uint32_t seq = 0)
{
	struct nlmsghdr h;
	std::memset(&h, 0, sizeof h);
	h.nlmsg_len = static_cast<uint32_t>(sizeof h + body.size());
	h.nlmsg_type = type;
	h.nlmsg_flags = NLM_F_MULTI;
	h.nlmsg_seq = seq;
	Buf b;
	append(b, &h, sizeof h);
	append(b, body.data(), body.size());
	pad4(b);
	return b;
}

// An RTM_NEWLINK (or DELLINK) for interface `index`. An empty name leaves the
// IFLA_IFNAME attribute out; operstate < 0 leaves IFLA_OPERSTATE out.
Buf link_msg(uint16_t type, int index, const std::string &name, unsigned flags, int operstate)
{
	struct ifinfomsg ifi;
	std::memset(&ifi, 0, sizeof ifi);
	ifi.ifi_family = AF_UNSPEC;
	ifi.ifi_index = index;
	ifi.ifi_flags = flags;
	Buf body;
	append(body, &ifi, sizeof ifi);
	pad4(body);
	uint32_t mtu = 1500;
	attr(body, IFLA_MTU, &mtu, sizeof mtu);
	if (!name.empty())
		attr(body, IFLA_IFNAME, name.c_str(), name.size() + 1);
	if (operstate >= 0) {
		auto o = static_cast<unsigned char>(operstate);
		attr(body, IFLA_OPERSTATE, &o, 1);
	}
	return message(type, body);
}

Buf newlink(int index, const std::string &name, unsigned flags, int operstate)
{
	return link_msg(RTM_NEWLINK, index, name, flags, operstate);
}

Buf done() { return message(NLMSG_DONE, Buf(4, 0)); }

Buf error_msg(int32_t error)
{
	Buf body;
	append(body, &error, sizeof error);
	struct nlmsghdr orig;
	std::memset(&orig, 0, sizeof orig);
	append(body, &orig, sizeof orig);
	return message(NLMSG_ERROR, body);
}

Buf operator+(Buf a, const Buf &b)
{
	a.insert(a.end(), b.begin(), b.end());
	return a;
}

int apply_to(LinkTable &t, const Buf &b) { return t.apply(b.data(), b.size()); }

} // namespace

TEST_CASE("link rule: administratively up and operationally up")
{
	struct Row {
		const char *name;
		unsigned flags;
		int operstate;
		bool up;
	};
	const Row rows[] = {
		{"up, running, oper up", up_running, oper_up, true},
		{"up, oper up (carrier flags aside)", IFF_UP, oper_up, true},
		{"admin down, oper up (stale)", IFF_RUNNING, oper_up, false},
		{"up, no carrier: oper down", IFF_UP, oper_down, false},
		{"up, running, oper dormant (wifi authenticating)", up_running, oper_dormant, false},
		{"tun: oper unknown, running", up_running, oper_unknown, true},
		{"oper unknown, not running", IFF_UP, oper_unknown, false},
		{"no operstate attribute, running", up_running, -1, true},
		{"no operstate attribute, not running", IFF_UP, -1, false},
		{"down", 0, oper_down, false},
	};
	for (const Row &row : rows) {
		INFO(row.name);
		CHECK(LinkTable::is_up(row.flags, row.operstate) == row.up);
	}
}

TEST_CASE("link table: RTM_NEWLINK and RTM_DELLINK from synthetic buffers")
{
	LinkTable t;
	CHECK_FALSE(t.up(""));
	// Loopback alone is not a link.
	REQUIRE(apply_to(t, newlink(1, "lo", up_running | IFF_LOOPBACK, oper_unknown)) == 0);
	CHECK(t.find("lo")->loopback);
	CHECK(t.find("lo")->up);
	CHECK_FALSE(t.up(""));
	CHECK(t.up("lo")); // asked for by name, it counts
	// eth0 without carrier, then with, in one buffer of two messages.
	REQUIRE(apply_to(t, newlink(2, "eth0", IFF_UP, oper_down) + newlink(3, "wlan0", IFF_UP, oper_down)) == 0);
	CHECK(t.size() == 3);
	CHECK_FALSE(t.up(""));
	REQUIRE(apply_to(t, newlink(2, "eth0", up_running, oper_up)) == 0);
	CHECK(t.up(""));
	CHECK(t.up("eth0"));
	CHECK_FALSE(t.up("wlan0"));
	CHECK_FALSE(t.up("nonexistent0"));
	// A change message without a name keeps the name it had.
	REQUIRE(apply_to(t, newlink(2, "", IFF_UP, oper_down)) == 0);
	REQUIRE(t.find("eth0"));
	CHECK_FALSE(t.up("eth0"));
	// Attributes with the nested flag bit are read by their type.
	Buf body;
	struct ifinfomsg ifi;
	std::memset(&ifi, 0, sizeof ifi);
	ifi.ifi_index = 3;
	ifi.ifi_flags = up_running;
	append(body, &ifi, sizeof ifi);
	unsigned char oper = oper_up;
	attr(body, IFLA_OPERSTATE | 0x8000, &oper, 1);
	REQUIRE(apply_to(t, message(RTM_NEWLINK, body)) == 0);
	CHECK(t.up("wlan0"));
	CHECK(t.up(""));
	// Removed.
	REQUIRE(apply_to(t, link_msg(RTM_DELLINK, 3, "wlan0", 0, -1)) == 0);
	CHECK(t.find("wlan0") == nullptr);
	CHECK_FALSE(t.up(""));
	// Other messages pass: NLMSG_NOOP, an acknowledgement, a route.
	REQUIRE(apply_to(t, message(NLMSG_NOOP, Buf()) + error_msg(0) + message(RTM_NEWROUTE, Buf(12, 0))) == 0);
	CHECK(t.size() == 2);
}

TEST_CASE("link table: a dump replaces what was known")
{
	LinkTable t;
	REQUIRE(apply_to(t, newlink(1, "lo", up_running | IFF_LOOPBACK, oper_unknown) +
			    newlink(2, "eth0", up_running, oper_up) + newlink(7, "usb0", up_running, oper_up)) == 0);
	t.begin_dump();
	CHECK_FALSE(t.dump_done());
	REQUIRE(apply_to(t, newlink(1, "lo", up_running | IFF_LOOPBACK, oper_unknown)) == 0);
	REQUIRE(apply_to(t, newlink(2, "eth0", IFF_UP, oper_down) + done()) == 0);
	CHECK(t.dump_done());
	CHECK(t.size() == 2); // usb0 went while nobody listened
	CHECK(t.find("usb0") == nullptr);
	CHECK_FALSE(t.up(""));
}

TEST_CASE("link table: malformed messages and errors")
{
	struct Row {
		const char *name;
		Buf bytes;
	};
	Buf good = newlink(2, "eth0", up_running, oper_up);
	Buf too_long = good;
	too_long[0] = static_cast<unsigned char>(good.size() + 4); // nlmsg_len past the buffer
	Buf too_short = good;
	std::memset(too_short.data(), 0, 4);
	too_short[0] = 8; // nlmsg_len below the header
	Buf no_ifinfo = message(RTM_NEWLINK, Buf(8, 0));
	Buf bad_attr = good;
	// The first attribute (IFLA_MTU) claims more bytes than the message.
	bad_attr[sizeof(struct nlmsghdr) + sizeof(struct ifinfomsg)] = 0xff;
	Buf tiny_attr = good;
	tiny_attr[sizeof(struct nlmsghdr) + sizeof(struct ifinfomsg)] = 2;
	Buf cut_attr = message(RTM_NEWLINK, Buf(sizeof(struct ifinfomsg) + 2, 0));
	const Row rows[] = {
		{"nlmsg_len past the buffer", too_long},
		{"nlmsg_len below the header", too_short},
		{"a tail shorter than a header", good + Buf(6, 0)},
		{"RTM_NEWLINK without an ifinfomsg", no_ifinfo},
		{"an attribute past the message", bad_attr},
		{"an attribute shorter than its header", tiny_attr},
		{"half an attribute header", cut_attr},
		{"NLMSG_ERROR -EPERM", error_msg(-EPERM)},
		{"NLMSG_ERROR without its code", message(NLMSG_ERROR, Buf(2, 0))},
	};
	for (const Row &row : rows) {
		INFO(row.name);
		LinkTable t;
		CHECK(apply_to(t, row.bytes) == LOY_HAL_E_IO);
	}
	// Messages before the bad one are applied.
	LinkTable t;
	CHECK(apply_to(t, good + error_msg(-ENOBUFS)) == LOY_HAL_E_IO);
	CHECK(t.up("eth0"));
	CHECK(apply_to(t, Buf()) == 0);
}

TEST_CASE("link table: at most links_max interfaces")
{
	LinkTable t;
	for (size_t i = 0; i < LinkTable::links_max + 10; i++)
		REQUIRE(apply_to(t, newlink(static_cast<int>(i + 1), "veth" + std::to_string(i), IFF_UP,
					 oper_down)) == 0);
	CHECK(t.size() == LinkTable::links_max);
	// Known ones still change.
	REQUIRE(apply_to(t, newlink(1, "veth0", up_running, oper_up)) == 0);
	CHECK(t.up(""));
}

namespace {

// The kernel's end of a socketpair that the fake socket() hands out.
int kernel_end = -1;
int device_end = -1;
int recv_failures = 0; // the next recv()s fail with ENOBUFS

loy::hal::Sys fake_kernel_sys()
{
	loy::hal::Sys sys = loy::hal::real_sys();
	sys.socket = [](int domain, int, int protocol) {
		if (domain != AF_NETLINK || protocol != NETLINK_ROUTE)
			return -1;
		return device_end;
	};
	sys.bind = [](int, const struct sockaddr *addr, socklen_t len) {
		struct sockaddr_nl sa;
		if (len != sizeof sa)
			return -1;
		std::memcpy(&sa, addr, sizeof sa);
		return sa.nl_family == AF_NETLINK && (sa.nl_groups & RTMGRP_LINK) ? 0 : -1;
	};
	sys.recv = [](int fd, void *buf, size_t n, int flags) -> ssize_t {
		if (recv_failures > 0) {
			recv_failures--;
			errno = ENOBUFS;
			return -1;
		}
		return ::recv(fd, buf, n, flags);
	};
	return sys;
}

// Reads the dump request the device sent, and answers it.
void answer_dump(const Buf &links)
{
	unsigned char req[64];
	ssize_t n = ::recv(kernel_end, req, sizeof req, 0);
	REQUIRE(n == static_cast<ssize_t>(sizeof(struct nlmsghdr) + sizeof(struct ifinfomsg)));
	struct nlmsghdr h;
	std::memcpy(&h, req, sizeof h);
	REQUIRE(h.nlmsg_type == RTM_GETLINK);
	REQUIRE((h.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP);
	Buf reply = links + done();
	REQUIRE(::send(kernel_end, reply.data(), reply.size(), 0) == static_cast<ssize_t>(reply.size()));
}

void event(const Buf &msg)
{
	REQUIRE(::send(kernel_end, msg.data(), msg.size(), 0) == static_cast<ssize_t>(msg.size()));
}

struct FakeKernel {
	FakeKernel()
	{
		int fds[2];
		REQUIRE(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds) == 0);
		kernel_end = fds[0];
		device_end = fds[1];
		recv_failures = 0;
	}
	~FakeKernel() { ::close(kernel_end); }
};

int64_t steady_ms()
{
	using namespace std::chrono;
	return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

} // namespace

TEST_CASE("link device: changes from the (fake) kernel")
{
	FakeKernel kernel;
	// Prime the reply; the request is read afterwards.
	Buf first = newlink(1, "lo", up_running | IFF_LOOPBACK, oper_unknown) +
		    newlink(2, "eth0", IFF_UP, oper_down) + done();
	REQUIRE(::send(kernel_end, first.data(), first.size(), 0) > 0);
	loy_hal_link l;
	REQUIRE(loy::hal::link_open(&l, nullptr, fake_kernel_sys()) == 0);
	CHECK(l.version == LOY_HAL_LINK_VERSION);
	unsigned char req[64];
	REQUIRE(::recv(kernel_end, req, sizeof req, MSG_DONTWAIT) > 0); // the dump request

	CHECK(l.is_up(l.ctx) == 0);
	CHECK(l.wait_change(l.ctx, 0) == 0);
	CHECK(l.wait_change(l.ctx, 30) == 0);

	event(newlink(2, "eth0", up_running, oper_up));
	CHECK(l.wait_change(l.ctx, 2000) == 1);
	CHECK(l.is_up(l.ctx) == 1);

	// A flap: down and up before anyone looks.
	event(newlink(2, "eth0", IFF_UP, oper_down));
	event(newlink(2, "eth0", up_running, oper_up));
	CHECK(l.wait_change(l.ctx, 2000) == 1);
	CHECK(l.is_up(l.ctx) == 1);
	CHECK(l.wait_change(l.ctx, 0) == 0);

	// News of other interfaces that change nothing is no change.
	event(newlink(9, "docker0", IFF_UP, oper_down));
	const int64_t start = steady_ms();
	CHECK(l.wait_change(l.ctx, 50) == 0);
	CHECK(steady_ms() - start >= 45);

	// Events lost in the kernel: the device asks for the table again and
	// reports a (possibly spurious) change.
	recv_failures = 1;
	event(newlink(9, "docker0", IFF_UP, oper_down));
	CHECK(l.wait_change(l.ctx, 2000) == 1);
	answer_dump(newlink(2, "eth0", IFF_UP, oper_down));
	CHECK(l.wait_change(l.ctx, 2000) == 1);
	CHECK(l.is_up(l.ctx) == 0);

	// A message the device cannot parse is an error, once.
	event(error_msg(-EPERM));
	CHECK(l.is_up(l.ctx) == LOY_HAL_E_IO);
	CHECK(l.is_up(l.ctx) == 0);
	loy_hal_linux_link_close(&l);
	CHECK(l.ctx == nullptr);
	loy_hal_linux_link_close(&l);
}

TEST_CASE("link device: a named interface")
{
	FakeKernel kernel;
	Buf first = newlink(2, "eth0", up_running, oper_up) + newlink(3, "wlan0", IFF_UP, oper_down) + done();
	REQUIRE(::send(kernel_end, first.data(), first.size(), 0) > 0);
	loy_hal_link l;
	REQUIRE(loy::hal::link_open(&l, "wlan0", fake_kernel_sys()) == 0);
	CHECK(l.is_up(l.ctx) == 0); // eth0 is up, but wlan0 is the one asked for
	event(newlink(3, "wlan0", up_running, oper_up));
	CHECK(l.wait_change(l.ctx, 2000) == 1);
	CHECK(l.is_up(l.ctx) == 1);
	event(link_msg(RTM_DELLINK, 3, "wlan0", 0, -1));
	CHECK(l.wait_change(l.ctx, 2000) == 1);
	CHECK(l.is_up(l.ctx) == 0);
	loy_hal_linux_link_close(&l);

	CHECK(loy_hal_linux_link_open(&l, "") == LOY_HAL_E_ARGUMENT);
	CHECK(loy_hal_linux_link_open(&l, "a-name-far-too-long-for-ifnamsiz") == LOY_HAL_E_ARGUMENT);
	CHECK(loy_hal_linux_link_open(&l, "../etc") == LOY_HAL_E_ARGUMENT);
	CHECK(loy_hal_linux_link_open(nullptr, nullptr) == LOY_HAL_E_ARGUMENT);
}

TEST_CASE("link device: the real kernel answers 0 or 1")
{
	// The state of this machine's interfaces is unknown: only the shape of
	// the answers is checked.
	for (const char *ifname : {static_cast<const char *>(nullptr), "lo"}) {
		INFO((ifname ? ifname : "any"));
		loy_hal_link l;
		REQUIRE(loy_hal_linux_link_open(&l, ifname) == 0);
		int up = l.is_up(l.ctx);
		CHECK((up == 0 || up == 1));
		int w = l.wait_change(l.ctx, 0);
		CHECK((w == 0 || w == 1));
		w = l.wait_change(l.ctx, 20);
		CHECK((w == 0 || w == 1));
		up = l.is_up(l.ctx);
		CHECK((up == 0 || up == 1));
		loy_hal_linux_link_close(&l);
	}
	// An interface that does not exist is down.
	loy_hal_link l;
	REQUIRE(loy_hal_linux_link_open(&l, "nonexistent0") == 0);
	CHECK(l.is_up(l.ctx) == 0);
	loy_hal_linux_link_close(&l);
}

TEST_CASE("link device: without netlink, /sys/class/net")
{
	loy::hal::Sys sys = loy::hal::real_sys();
	sys.socket = [](int, int, int) {
		errno = EPERM; // a seccomp profile that forbids AF_NETLINK
		return -1;
	};
	loy_hal_link l;
	REQUIRE(loy::hal::link_open(&l, nullptr, sys) == 0);
	int up = l.is_up(l.ctx);
	CHECK((up == 0 || up == 1));
	const int64_t start = steady_ms();
	int w = l.wait_change(l.ctx, 30);
	CHECK((w == 0 || w == 1));
	CHECK(steady_ms() - start < 2000);
	loy_hal_linux_link_close(&l);

	REQUIRE(loy::hal::link_open(&l, "nonexistent0", sys) == 0);
	CHECK(l.is_up(l.ctx) == 0);
	loy_hal_linux_link_close(&l);
}
