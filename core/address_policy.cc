#include "core/address_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <string_view>

namespace herald {
namespace {

using V6 = std::array<uint8_t, 16>;

struct Range {
  V6 network;
  int prefix;  // of the 128 bits
  const char* what;
};

constexpr V6 v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

// Refused IPv4 ranges, as IPv4-mapped blocks; the first match names the range.
constexpr Range kV4Ranges[] = {
    {v4(0, 0, 0, 0), 96 + 8, "an unspecified (\"this network\") address"},
    {v4(10, 0, 0, 0), 96 + 8, "a private address"},
    {v4(100, 64, 0, 0), 96 + 10, "a carrier-grade NAT (CGNAT) address"},
    {v4(127, 0, 0, 0), 96 + 8, "a loopback address"},
    {v4(169, 254, 169, 254), 128, "the link-local cloud metadata address"},
    {v4(169, 254, 0, 0), 96 + 16, "a link-local address"},
    {v4(172, 16, 0, 0), 96 + 12, "a private address"},
    {v4(192, 0, 0, 0), 96 + 24, "an IETF protocol assignment address"},
    {v4(192, 168, 0, 0), 96 + 16, "a private address"},
    {v4(198, 18, 0, 0), 96 + 15, "a benchmarking address"},
    {v4(224, 0, 0, 0), 96 + 4, "a multicast address"},
    {v4(255, 255, 255, 255), 128, "the broadcast address"},
    {v4(240, 0, 0, 0), 96 + 4, "a reserved address"},
};

// Refused IPv6 ranges that do not embed an IPv4 address.
constexpr Range kV6Ranges[] = {
    {{}, 128, "the unspecified address"},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "a loopback address"},
    {{0xfe, 0x80}, 10, "a link-local address"},
    {{0xfe, 0xc0}, 10, "a site-local address"},
    {{0xfc}, 7, "a unique-local address"},
    {{0xff}, 8, "a multicast address"},
};

// IPv6 forms that carry an IPv4 address: where it sits, and what the form is called.
struct Embedding {
  V6 network;
  int prefix;
  size_t offset;  // of the four IPv4 bytes
  const char* name;
};
constexpr Embedding kEmbeddings[] = {
    {v4(0, 0, 0, 0), 96, 12, "IPv4-mapped"},
    {{0, 0x64, 0xff, 0x9b}, 96, 12, "NAT64"},
    {{}, 96, 12, "IPv4-compatible"},
    {{0x20, 0x02}, 16, 2, "6to4"},
};

bool in_block(const V6& address, const V6& network, int prefix) {
  const int whole = prefix / 8;
  if (!std::equal(address.begin(), address.begin() + whole, network.begin())) return false;
  if (prefix % 8 == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - prefix % 8));
  return (address[whole] & mask) == (network[whole] & mask);
}

const Range* find_range(const V6& address, const Range* begin, const Range* end) {
  const Range* it = std::find_if(
      begin, end, [&](const Range& r) { return in_block(address, r.network, r.prefix); });
  return it == end ? nullptr : it;
}

std::string text(const V6& address, bool v4_form) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (v4_form) {
    inet_ntop(AF_INET, address.data() + 12, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, address.data(), buf, sizeof(buf));
  }
  return buf;
}

constexpr const char* kPrefix = "refused by the SSRF guard: ";
constexpr const char* kHint = " (HERALD_ALLOW_PRIVATE_CIDRS can allow it)";

}  // namespace

std::optional<AddressPolicy> AddressPolicy::parse(const std::vector<std::string>& allow_cidrs,
                                                  std::string* error) {
  AddressPolicy policy;
  for (const std::string& cidr : allow_cidrs) {
    const auto fail = [&]() -> std::optional<AddressPolicy> {
      if (error) *error = "'" + cidr + "' is not a CIDR block (use e.g. 10.0.0.0/8 or fd00::/8)";
      return std::nullopt;
    };
    const size_t slash = cidr.find('/');
    if (slash == std::string::npos) return fail();
    const std::string address = cidr.substr(0, slash);
    const std::string_view bits = std::string_view(cidr).substr(slash + 1);
    if (bits.empty() || bits.size() > 3 ||
        !std::all_of(bits.begin(), bits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return fail();
    }
    int prefix = 0;
    for (char c : bits) prefix = prefix * 10 + (c - '0');

    Block block;
    in_addr a4{};
    if (inet_pton(AF_INET, address.c_str(), &a4) == 1) {
      if (prefix > 32) return fail();
      block.v4 = true;
      block.network = v4(0, 0, 0, 0);
      std::memcpy(block.network.data() + 12, &a4, 4);
      block.prefix = 96 + prefix;
    } else if (inet_pton(AF_INET6, address.c_str(), block.network.data()) == 1) {
      if (prefix > 128) return fail();
      block.prefix = prefix;
    } else {
      return fail();
    }
    policy.allow_.push_back(block);
  }
  return policy;
}

bool AddressPolicy::allowed(const V6& address, bool v4_form) const {
  return std::any_of(allow_.begin(), allow_.end(), [&](const Block& b) {
    return b.v4 == v4_form && in_block(address, b.network, b.prefix);
  });
}

std::optional<std::string> AddressPolicy::refuse_reason(const sockaddr* addr,
                                                        size_t addrlen) const {
  V6 address{};
  if (addr != nullptr && addr->sa_family == AF_INET && addrlen >= sizeof(sockaddr_in)) {
    sockaddr_in sin{};
    std::memcpy(&sin, addr, sizeof(sin));
    address = v4(0, 0, 0, 0);
    std::memcpy(address.data() + 12, &sin.sin_addr, 4);
    if (allowed(address, true)) return std::nullopt;
    const Range* range = find_range(address, std::begin(kV4Ranges), std::end(kV4Ranges));
    if (range == nullptr) return std::nullopt;
    return kPrefix + text(address, true) + " is " + range->what + kHint;
  }
  if (addr == nullptr || addr->sa_family != AF_INET6 || addrlen < sizeof(sockaddr_in6)) {
    return std::string(kPrefix) + "not an IPv4 or IPv6 address";
  }
  sockaddr_in6 sin6{};
  std::memcpy(&sin6, addr, sizeof(sin6));
  std::memcpy(address.data(), &sin6.sin6_addr, 16);
  if (allowed(address, false)) return std::nullopt;

  if (const Range* range = find_range(address, std::begin(kV6Ranges), std::end(kV6Ranges))) {
    return kPrefix + text(address, false) + " is " + range->what + kHint;
  }
  for (const Embedding& e : kEmbeddings) {
    if (!in_block(address, e.network, e.prefix)) continue;
    V6 inner = v4(0, 0, 0, 0);
    std::copy_n(address.begin() + static_cast<std::ptrdiff_t>(e.offset), 4, inner.begin() + 12);
    if (allowed(inner, true)) return std::nullopt;
    const Range* range = find_range(inner, std::begin(kV4Ranges), std::end(kV4Ranges));
    if (range == nullptr) return std::nullopt;
    return kPrefix + text(address, false) + " is the " + e.name + " form of " + text(inner, true) +
           ", " + range->what + kHint;
  }
  return std::nullopt;
}

}  // namespace herald
