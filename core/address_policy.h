#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct sockaddr;

namespace herald {

// The SSRF guard's rule: which addresses a delivery may connect to. Loopback, private,
// link-local, CGNAT, unique-local, multicast, reserved and unspecified addresses are refused
// (an IPv6 address that embeds an IPv4 one, such as ::ffff:127.0.0.1, is judged by the IPv4
// address) unless an allowed CIDR block contains them. Immutable, so safe to share between
// threads. No I/O.
class AddressPolicy {
 public:
  // A policy allowing `allow_cidrs` ("10.0.0.0/8", "::1/128"; host bits are ignored) besides
  // every public address. An IPv4 block also covers the IPv6 forms embedding its addresses.
  // Returns nullopt with the bad block named in *error.
  static std::optional<AddressPolicy> parse(const std::vector<std::string>& allow_cidrs,
                                            std::string* error);

  // nullopt when connecting to `addr` (`addrlen` bytes, AF_INET or AF_INET6) is allowed, else
  // a one-line reason naming the address and its range, e.g. "refused by the SSRF guard:
  // 127.0.0.1 is a loopback address (HERALD_ALLOW_PRIVATE_CIDRS can allow it)".
  std::optional<std::string> refuse_reason(const sockaddr* addr, size_t addrlen) const;

 private:
  using V6 = std::array<uint8_t, 16>;
  struct Block {
    bool v4 = false;  // an IPv4 block is held as ::ffff:a.b.c.d/(96 + n)
    V6 network{};
    int prefix = 0;  // of the 128 bits
  };

  AddressPolicy() = default;
  // `address` as a raw IPv6 address (`v4` false), or ::ffff:a.b.c.d for an IPv4 one.
  bool allowed(const V6& address, bool v4) const;

  std::vector<Block> allow_;
};

}  // namespace herald
