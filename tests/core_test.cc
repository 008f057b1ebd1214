#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/address_policy.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/encoding.h"
#include "core/heap.h"
#include "core/ids.h"
#include "core/retry.h"
#include "core/signer.h"
#include "core/signing.h"
#include "core/time_format.h"
#include "core/types.h"

using namespace herald;

namespace {

// An EnvLookup backed by a map.
EnvLookup fake_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::optional<Config> parse(const std::vector<std::string>& args,
                            std::map<std::string, std::string> vars, std::string* error) {
  return parse_serve_config(args, fake_env(std::move(vars)), error);
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// encoding

TEST_CASE("base64 encodes and decodes the RFC 4648 vectors") {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& vector : vectors) {
    const std::string& plain = vector.first;
    const std::string& encoded = vector.second;
    CAPTURE(plain);
    CHECK(base64_encode(plain) == encoded);
    CHECK(base64_decode(encoded) == plain);
    std::string unpadded = encoded;
    while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
    CHECK(base64_decode(unpadded) == plain);
  }
}

TEST_CASE("base64 round-trips arbitrary bytes of every length") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  CHECK(base64_decode(base64_encode(all)) == all);
  CHECK(base64_encode(std::string("\xfb\xff\xbf", 3)) == "+/+/");

  for (size_t n = 0; n < 100; ++n) {
    const std::string bytes = random_bytes(n);
    const std::string text = base64_encode(bytes);
    CAPTURE(n);
    CHECK(text.size() % 4 == 0);
    CHECK(base64_decode(text) == bytes);
  }
}

TEST_CASE("base64 decode rejects invalid input") {
  for (const char* bad : {"Zm9v!", "Zm=9v", "Z", "Zm9vY", "Zg=", "Zg===", "=", "==", "Zm9v====",
                          " Zm9v", "Zm9v\n", "Zm9v ", "-_-_", "Zm9v=Zm9", "Zg==Zg=="}) {
    CAPTURE(bad);
    CHECK_FALSE(base64_decode(bad).has_value());
  }
  CHECK_FALSE(base64_decode(std::string("Zm\0v", 4)).has_value());
}

TEST_CASE("hex_encode is lowercase and covers every byte") {
  CHECK(hex_encode(std::string("\x00\xff\x10"
                               "ab",
                               5)) == "00ff106162");
  CHECK(hex_encode("") == "");
}

TEST_CASE("hex_digit_value reads either case and refuses everything else") {
  const std::string digits = "0123456789abcdef";
  for (size_t i = 0; i < digits.size(); ++i) {
    CHECK(hex_digit_value(digits[i]) == static_cast<int>(i));
    CHECK(hex_digit_value(static_cast<char>(std::toupper(digits[i]))) == static_cast<int>(i));
  }
  for (char c : std::string("gG/:@` -~")) CHECK(hex_digit_value(c) == -1);
}

TEST_CASE("sha256 matches the FIPS 180-2 vectors") {
  CHECK(hex_encode(sha256("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex_encode(sha256("")) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256("x").size() == 32);
}

TEST_CASE("random_bytes returns n fresh bytes") {
  CHECK(random_bytes(0).empty());
  const std::string a = random_bytes(32);
  const std::string b = random_bytes(32);
  CHECK(a.size() == 32);
  CHECK(a != b);
  CHECK(random_bytes(100000).size() == 100000);
}

TEST_CASE("constant_time_equal compares bytes and lengths") {
  CHECK(constant_time_equal("", ""));
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "ab"));
  CHECK_FALSE(constant_time_equal("", "a"));
  CHECK_FALSE(constant_time_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}

// ---------------------------------------------------------------------------------------------
// signing

TEST_CASE("sign_v1 matches the Standard Webhooks reference vector") {
  const auto key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  REQUIRE(key.has_value());
  CHECK(key->size() == 24);
  CHECK(sign_v1(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})") ==
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST_CASE("sign_v1 depends on every input") {
  const std::string key = *decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  const std::string ref = sign_v1(key, "msg_1", 100, "{}");
  CHECK(sign_v1(key, "msg_2", 100, "{}") != ref);
  CHECK(sign_v1(key, "msg_1", 101, "{}") != ref);
  CHECK(sign_v1(key, "msg_1", 100, "{ }") != ref);
  CHECK(sign_v1(key + "x", "msg_1", 100, "{}") != ref);
  CHECK(sign_v1(key, "msg_1", 100, "{}") == ref);
}

TEST_CASE("hmac_sha256 matches RFC 4231 test case 2") {
  CHECK(hex_encode(hmac_sha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(hmac_sha256("", "data").size() == 32);
}

TEST_CASE("signature_header has one v1 signature per key, in order") {
  const std::string k1 = *decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  const std::string k2 = random_bytes(32);
  const std::string body = R"({"test": 2432232314})";
  const std::string id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
  CHECK(signature_header({k1, k2}, id, 1614265330, body) ==
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= " + sign_v1(k2, id, 1614265330, body));
  CHECK(signature_header({k2, k1}, id, 1614265330, body) ==
        sign_v1(k2, id, 1614265330, body) + " v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  CHECK(signature_header({k1}, id, 1614265330, body) ==
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  CHECK(signature_header({}, id, 1614265330, body).empty());
}

TEST_CASE("decode_secret enforces the prefix, base64 and 24..64 key bytes") {
  CHECK(decode_secret("whsec_" + base64_encode(std::string(24, 'k'))) == std::string(24, 'k'));
  CHECK(decode_secret("whsec_" + base64_encode(std::string(64, 'k'))) == std::string(64, 'k'));
  CHECK_FALSE(decode_secret("whsec_" + base64_encode(std::string(23, 'k'))).has_value());
  CHECK_FALSE(decode_secret("whsec_" + base64_encode(std::string(65, 'k'))).has_value());
  CHECK_FALSE(decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").has_value());
  CHECK_FALSE(decode_secret("whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").has_value());
  CHECK_FALSE(decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!").has_value());
  CHECK_FALSE(decode_secret("whsec_").has_value());
  CHECK_FALSE(decode_secret("").has_value());
}

TEST_CASE("generate_secret makes distinct 32-byte secrets") {
  const std::string a = generate_secret();
  const std::string b = generate_secret();
  CHECK(a.starts_with("whsec_"));
  CHECK(a != b);
  const auto key = decode_secret(a);
  REQUIRE(key.has_value());
  CHECK(key->size() == 32);
}

std::optional<std::string> hex_decode_for_test(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return out;
}

// The RFC 8032 section 7.1 test 1 key, and what the schemes' fixed vectors sign.
const std::string kRfcSeed =
    *hex_decode_for_test("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
const std::string kRfcPublic =
    *hex_decode_for_test("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
constexpr const char* kVectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr const char* kVectorId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr int64_t kVectorTs = 1614265330;
constexpr const char* kVectorBody = R"({"test": 2432232314})";

std::string header_of(const HeaderList& headers, const std::string& name) {
  std::string found;
  int count = 0;
  for (const auto& [n, v] : headers) {
    if (n == name) {
      found = v;
      ++count;
    }
  }
  CHECK_MESSAGE(count == 1, name);
  return found;
}

TEST_CASE("ed25519 signing matches RFC 8032 test 1, and verifies") {
  CHECK(ed25519_public_key(kRfcSeed) == kRfcPublic);
  const std::string sig = ed25519_sign(kRfcSeed, "");
  CHECK(hex_encode(sig) ==
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701"
        "cf9b46bd25bf5f0595bbe24655141438e7a100b");
  CHECK(ed25519_verify(kRfcPublic, "", sig));
  CHECK_FALSE(ed25519_verify(kRfcPublic, "x", sig));
  CHECK_THROWS_AS(ed25519_public_key("short"), std::invalid_argument);
}

TEST_CASE("parse_secret reads whsec_ secrets and whsk_ keys, and says what is wrong") {
  std::string problem;
  auto hmac = parse_secret(kVectorSecret, &problem);
  REQUIRE(hmac.has_value());
  CHECK(hmac->kind == KeyKind::kHmac);
  CHECK(shown_secret(*hmac) == kVectorSecret);

  const std::string whsk = "whsk_" + base64_encode(kRfcSeed + kRfcPublic);
  auto ed = parse_secret(whsk, &problem);
  REQUIRE(ed.has_value());
  CHECK(ed->kind == KeyKind::kEd25519);
  CHECK(ed->bytes == kRfcSeed);
  CHECK(shown_secret(*ed) == "whpk_" + base64_encode(kRfcPublic));  // never the private key

  problem.clear();
  CHECK_FALSE(parse_secret("whsk_" + base64_encode(kRfcSeed), &problem));  // seed alone
  CHECK(problem.find("64 bytes") != std::string::npos);
  std::string wrong_public = kRfcPublic;
  wrong_public[0] = static_cast<char>(wrong_public[0] ^ 1);
  problem.clear();
  CHECK_FALSE(parse_secret("whsk_" + base64_encode(kRfcSeed + wrong_public), &problem));
  CHECK(problem.find("does not belong") != std::string::npos);
  problem.clear();
  CHECK_FALSE(parse_secret("whpk_" + base64_encode(kRfcPublic), &problem));
  CHECK_FALSE(problem.empty());
  problem.clear();
  CHECK_FALSE(parse_secret("whsec_short", &problem));
  CHECK_FALSE(problem.empty());
}

TEST_CASE("the standard signer sends v1 and v1a in webhook-signature and svix-signature") {
  const SigningKey hmac{KeyKind::kHmac, *decode_secret(kVectorSecret)};
  const SigningKey ed{KeyKind::kEd25519, kRfcSeed};
  HeaderList h;
  Signer(SignatureScheme::kStandard, std::nullopt, {hmac})
      .sign(kVectorId, kVectorTs, kVectorBody, h);
  CHECK(header_of(h, "webhook-signature") == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  CHECK(header_of(h, "svix-signature") == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");

  // An ed25519 endpoint in the grace period of its old HMAC key: both, current first.
  h.clear();
  Signer(SignatureScheme::kEd25519, std::nullopt, {ed, hmac})
      .sign(kVectorId, kVectorTs, kVectorBody, h);
  const std::string v1a =
      "v1a,fldxM4gAKugP6nnt1hdz3sgGfZ6d99nzrMFnZOELIxbzEHoVmAb2ADpkJK7zgPePmPsle0zV9jSeGlHFG2NVAw="
      "=";
  CHECK(header_of(h, "webhook-signature") ==
        v1a + " v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  CHECK(ed25519_verify(kRfcPublic, standard_signed_content(kVectorId, kVectorTs, kVectorBody),
                       *base64_decode(v1a.substr(4))));
}

TEST_CASE("the stripe signer sends t= and one v1= per HMAC key, keyed with the secret's text") {
  const SigningKey current{KeyKind::kHmac, *decode_secret(kVectorSecret)};
  const SigningKey old{KeyKind::kHmac, std::string(32, 'o')};
  HeaderList h;
  Signer(SignatureScheme::kStripe, std::nullopt, {current})
      .sign(kVectorId, kVectorTs, kVectorBody, h);
  // HMAC-SHA256("whsec_MfKQ...", "1614265330." + body), computed independently.
  CHECK(header_of(h, "stripe-signature") ==
        "t=1614265330,v1=2e37df5d4a028c51a7f3133d64ae1e300d2c2c900f1b1d49d4369ad2530f8964");
  CHECK(h.size() == 1);  // no webhook-signature
  h.clear();
  Signer(SignatureScheme::kStripe, std::nullopt,
         {current, old, SigningKey{KeyKind::kEd25519, kRfcSeed}})
      .sign(kVectorId, kVectorTs, kVectorBody, h);
  const std::string old_sig =
      hex_encode(hmac_sha256(shown_secret(old), std::string("1614265330.") + kVectorBody));
  CHECK(header_of(h, "stripe-signature") ==
        "t=1614265330,v1=2e37df5d4a028c51a7f3133d64ae1e300d2c2c900f1b1d49d4369ad2530f8964,v1=" +
            old_sig);  // the Ed25519 key cannot be carried: left out
}

TEST_CASE("the github signer sends one sha256= of the body under the current key") {
  const SigningKey current{KeyKind::kHmac, *decode_secret(kVectorSecret)};
  const SigningKey old{KeyKind::kHmac, std::string(32, 'o')};
  HeaderList h;
  Signer(SignatureScheme::kGithub, std::nullopt, {current, old})
      .sign(kVectorId, kVectorTs, kVectorBody, h);
  CHECK(header_of(h, "x-hub-signature-256") ==
        "sha256=80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c");
  CHECK(h.size() == 1);
}

TEST_CASE("a renamed signature header replaces the scheme's headers") {
  const SigningKey key{KeyKind::kHmac, *decode_secret(kVectorSecret)};
  HeaderList h;
  Signer(SignatureScheme::kStandard, "X-Acme-Signature", {key})
      .sign(kVectorId, kVectorTs, kVectorBody, h);
  REQUIRE(h.size() == 1);
  CHECK(h[0].first == "X-Acme-Signature");
  CHECK(h[0].second == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  CHECK(Signer::header_names(SignatureScheme::kStandard, "X-Acme-Signature") ==
        std::vector<std::string>{"x-acme-signature"});
  CHECK(Signer::header_names(SignatureScheme::kStripe, std::nullopt) ==
        std::vector<std::string>{"stripe-signature"});
  // A signer whose keys the scheme cannot carry signs nothing.
  Signer none(SignatureScheme::kGithub, std::nullopt, {SigningKey{KeyKind::kEd25519, kRfcSeed}});
  CHECK(none.empty());
  h.clear();
  none.sign(kVectorId, kVectorTs, kVectorBody, h);
  CHECK(h.empty());
}

TEST_CASE("generate_key makes keys of each kind that sign") {
  const SigningKey ed = generate_key(KeyKind::kEd25519);
  CHECK(ed.bytes.size() == 32);
  CHECK(ed.bytes != generate_key(KeyKind::kEd25519).bytes);
  CHECK(ed25519_verify(ed25519_public_key(ed.bytes), "m", ed25519_sign(ed.bytes, "m")));
  const SigningKey hmac = generate_key(KeyKind::kHmac);
  CHECK(hmac.kind == KeyKind::kHmac);
  CHECK(decode_secret(shown_secret(hmac)) == hmac.bytes);
}

// ---------------------------------------------------------------------------------------------
// ids (these run in file order; the far-future test comes last because ids are monotonic
// across the whole process)

TEST_CASE("new_id has the prefix, an underscore and 22 base62 chars") {
  const SystemClock clock;
  const std::string id = new_id(kMessagePrefix, clock.now_ms());
  CHECK(id.size() == 4 + 22);
  CHECK(id.starts_with("msg_"));
  CHECK(std::all_of(id.begin() + 4, id.end(), [](char c) { return std::isalnum(c) != 0; }));
  CHECK(is_id_with_prefix(id, kMessagePrefix));
  CHECK_FALSE(is_id_with_prefix(id, kAppPrefix));
  CHECK(is_id_with_prefix(new_id(kAttemptPrefix, clock.now_ms()), "atmpt"));
}

TEST_CASE("is_id_with_prefix rejects look-alikes") {
  const std::string good = "msg_" + std::string(22, '1');
  CHECK(is_id_with_prefix(good, "msg"));
  CHECK_FALSE(is_id_with_prefix("msg_" + std::string(21, '1'), "msg"));
  CHECK_FALSE(is_id_with_prefix("msg_" + std::string(23, '1'), "msg"));
  CHECK_FALSE(is_id_with_prefix("msg-" + std::string(22, '1'), "msg"));
  CHECK_FALSE(is_id_with_prefix("msgx" + std::string(22, '1'), "msg"));
  CHECK_FALSE(is_id_with_prefix("msg_" + std::string(21, '1') + "-", "msg"));
  CHECK_FALSE(is_id_with_prefix("msg_" + std::string(21, '1') + "_", "msg"));
  CHECK_FALSE(is_id_with_prefix(good, "ms"));
  CHECK_FALSE(is_id_with_prefix(good, "msg_"));
  CHECK_FALSE(is_id_with_prefix("", "msg"));
  // 22 base62 digits can exceed 128 bits; new_id never makes such a value.
  CHECK_FALSE(is_id_with_prefix("msg_" + std::string(22, 'z'), "msg"));
  CHECK(is_id_with_prefix("msg_7" + std::string(21, '0'), "msg"));
}

TEST_CASE("ids made in a tight loop are unique and sort in creation order") {
  const TimeMs now = SystemClock().now_ms();
  std::vector<std::string> ids;
  for (int i = 0; i < 10000; ++i) ids.push_back(new_id(kDeliveryPrefix, now));
  for (size_t i = 1; i < ids.size(); ++i) {
    if (!(ids[i - 1] < ids[i])) FAIL("id " << i << " sorts before its predecessor");
  }
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == ids.size());
}

TEST_CASE("ids stay monotonic when the clock goes backwards") {
  const TimeMs now = SystemClock().now_ms();
  const std::string a = new_id(kAppPrefix, now);
  const std::string b = new_id(kAppPrefix, now - 60'000);
  CHECK(a < b);
}

TEST_CASE("new_id is thread-safe") {
  const TimeMs now = SystemClock().now_ms();
  constexpr int kThreads = 4, kPerThread = 2000;
  std::vector<std::vector<std::string>> made(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) made[t].push_back(new_id(kEndpointPrefix, now));
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& v : made) {
    CHECK(std::is_sorted(v.begin(), v.end()));
    all.insert(v.begin(), v.end());
  }
  CHECK(all.size() == kThreads * kPerThread);
}

TEST_CASE("id_lower_bound encodes the time with a zero random part") {
  CHECK(id_lower_bound("msg", 0) == "msg_" + std::string(22, '0'));
  CHECK(is_id_with_prefix(id_lower_bound("msg", 1714564800000), "msg"));
  CHECK(id_lower_bound("msg", 1714564800000) < id_lower_bound("msg", 1714564800001));
  CHECK(id_lower_bound("msg", 1714564800000) != id_lower_bound("msg", 1714564800001));
  CHECK(id_lower_bound("msg", -5) == id_lower_bound("msg", 0));
}

TEST_CASE("id_lower_bound separates ids made before t from ids made at or after t") {
  // Far in the future, so no id made earlier in this process forces a later time part.
  const TimeMs t = 4'000'000'000'000;  // 2096
  const std::string before = new_id(kMessagePrefix, t - 1);
  const std::string at = new_id(kMessagePrefix, t);
  const std::string after = new_id(kMessagePrefix, t + 1);
  const std::string bound = id_lower_bound(kMessagePrefix, t);
  CHECK(before < bound);
  CHECK(bound <= at);
  CHECK(at < id_lower_bound(kMessagePrefix, t + 1));
  CHECK(id_lower_bound(kMessagePrefix, t + 1) <= after);
}

// ---------------------------------------------------------------------------------------------
// time_format

TEST_CASE("format_rfc3339 writes UTC with milliseconds") {
  CHECK(format_rfc3339(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_rfc3339(1614265330000) == "2021-02-25T15:02:10.000Z");
  CHECK(format_rfc3339(1714564800123) == "2024-05-01T12:00:00.123Z");
  CHECK(format_rfc3339(951782400000) == "2000-02-29T00:00:00.000Z");
  CHECK(format_rfc3339(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(format_rfc3339(-2208988800000) == "1900-01-01T00:00:00.000Z");
  CHECK(format_rfc3339(253402300799999) == "9999-12-31T23:59:59.999Z");
}

TEST_CASE("parse_rfc3339 reads UTC, offsets and fractions") {
  CHECK(parse_rfc3339("2024-05-01T12:00:00Z") == 1714564800000);
  CHECK(parse_rfc3339("2024-05-01T12:00:00.123Z") == 1714564800123);
  CHECK(parse_rfc3339("2024-05-01T12:00:00.5Z") == 1714564800500);
  CHECK(parse_rfc3339("2024-05-01T12:00:00.05Z") == 1714564800050);
  CHECK(parse_rfc3339("2024-05-01T12:00:00.123999999Z") == 1714564800123);
  CHECK(parse_rfc3339("2024-05-01t12:00:00z") == 1714564800000);
  CHECK(parse_rfc3339("2024-05-01T14:00:00+02:00") == 1714564800000);
  CHECK(parse_rfc3339("2024-05-01T06:30:00-05:30") == 1714564800000);
  CHECK(parse_rfc3339("2024-05-01T12:00:00-00:00") == 1714564800000);
  CHECK(parse_rfc3339("2024-05-01T12:00:00.250+00:00") == 1714564800250);
  CHECK(parse_rfc3339("2024-02-29T00:00:00Z").has_value());
  CHECK(parse_rfc3339("2000-02-29T00:00:00Z") == 951782400000);
  CHECK(parse_rfc3339("1969-12-31T23:59:59.999Z") == -1);
}

TEST_CASE("parse_rfc3339 round-trips format_rfc3339") {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<TimeMs> dist(-2208988800000, 253402300799999);
  for (int i = 0; i < 10000; ++i) {
    const TimeMs t = dist(rng);
    const std::string s = format_rfc3339(t);
    if (parse_rfc3339(s) != t) FAIL("round trip failed for " << t << " (" << s << ")");
  }
}

TEST_CASE("parse_rfc3339 rejects malformed and out-of-range input") {
  for (const char* bad : {
           "",
           "2024-05-01",
           "2024-05-01T12:00:00",
           "2024-05-01T12:00Z",
           "2024-05-01 12:00:00Z",
           "2024-5-01T12:00:00Z",
           "24-05-01T12:00:00Z",
           "x024-05-01T12:00:00Z",
           "2024/05/01T12:00:00Z",
           "2024-00-01T12:00:00Z",
           "2024-13-01T12:00:00Z",
           "2024-05-00T12:00:00Z",
           "2024-04-31T12:00:00Z",
           "2023-02-29T12:00:00Z",
           "1900-02-29T12:00:00Z",
           "2024-05-01T24:00:00Z",
           "2024-05-01T12:60:00Z",
           "2024-05-01T12:00:60Z",
           "2024-05-01T12:00:00.Z",
           "2024-05-01T12:00:00.12a Z",
           "2024-05-01T12:00:00ZZ",
           "2024-05-01T12:00:00Z ",
           " 2024-05-01T12:00:00Z",
           "2024-05-01T12:00:00Zjunk",
           "2024-05-01T12:00:00+0200",
           "2024-05-01T12:00:00+02",
           "2024-05-01T12:00:00+24:00",
           "2024-05-01T12:00:00+02:60",
           "2024-05-01T12:00:00+02:00junk",
           "2024-05-01T12:00:00UTC",
           "2024-05-01T1:00:00Z",
           "2024-05-01T12:00:00.+00:00",
       }) {
    CAPTURE(bad);
    CHECK_FALSE(parse_rfc3339(bad).has_value());
  }
}

TEST_CASE("parse_duration_ms reads each unit") {
  CHECK(parse_duration_ms("250ms") == 250);
  CHECK(parse_duration_ms("0s") == 0);
  CHECK(parse_duration_ms("5s") == 5000);
  CHECK(parse_duration_ms("30m") == 1'800'000);
  CHECK(parse_duration_ms("2h") == 7'200'000);
  CHECK(parse_duration_ms("5d") == 432'000'000);
  CHECK(parse_duration_ms("007s") == 7000);
  CHECK(parse_duration_ms("9223372036854775807ms") == 9223372036854775807);
}

TEST_CASE("parse_duration_ms rejects malformed input and overflow") {
  for (const char* bad : {"", "5", "s", "ms", "-5s", "+5s", "5 s", " 5s", "5s ", "5x", "5sec", "5S",
                          "1.5s", "5m5s", "5ss", "9223372036854775808ms", "99999999999999999999s",
                          "9223372036854775807s", "106751991167301d"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_duration_ms(bad).has_value());
  }
}

// ---------------------------------------------------------------------------------------------
// retry

TEST_CASE("the standard retry policy is Svix's schedule with 20% jitter") {
  const RetryPolicy p = RetryPolicy::standard();
  const std::vector<int64_t> expected = {5'000,      300'000,    1'800'000, 7'200'000,
                                         18'000'000, 36'000'000, 36'000'000};
  CHECK(p.delays_ms() == expected);
  CHECK(p.jitter() == doctest::Approx(0.2));
  CHECK(p.max_attempts() == 8);
}

TEST_CASE("next_delay_ms stays within the jitter and spreads over it") {
  const RetryPolicy p = RetryPolicy::standard();
  std::mt19937_64 rng(7);
  for (int attempt = 1; attempt <= 7; ++attempt) {
    CAPTURE(attempt);
    const auto base = static_cast<double>(p.delays_ms()[static_cast<size_t>(attempt - 1)]);
    double lo = 1e300, hi = 0, sum = 0;
    std::set<int64_t> distinct;
    constexpr int kSamples = 5000;
    for (int i = 0; i < kSamples; ++i) {
      const auto d = p.next_delay_ms(attempt, rng);
      REQUIRE(d.has_value());
      const auto v = static_cast<double>(*d);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      sum += v;
      distinct.insert(*d);
    }
    CHECK(lo >= base * 0.8 - 1);
    CHECK(hi <= base * 1.2 + 1);
    // Uniform over ±20 %: the extremes come close to the bounds and the mean to the base.
    CHECK(lo < base * 0.82);
    CHECK(hi > base * 1.18);
    CHECK(sum / kSamples == doctest::Approx(base).epsilon(0.02));
    CHECK(distinct.size() > 100);
  }
}

TEST_CASE("next_delay_ms is nullopt once the schedule is exhausted") {
  const RetryPolicy p = RetryPolicy::standard();
  std::mt19937_64 rng(1);
  CHECK(p.next_delay_ms(7, rng).has_value());
  CHECK_FALSE(p.next_delay_ms(8, rng).has_value());
  CHECK_FALSE(p.next_delay_ms(100, rng).has_value());

  const RetryPolicy single({1000}, 0.2);
  CHECK(single.max_attempts() == 2);
  CHECK(single.next_delay_ms(1, rng).has_value());
  CHECK_FALSE(single.next_delay_ms(2, rng).has_value());
}

TEST_CASE("next_delay_ms without jitter is exact, and indexes by failed attempts") {
  const RetryPolicy p({100, 200, 300}, 0.0);
  std::mt19937_64 rng(1);
  CHECK(p.next_delay_ms(1, rng) == 100);
  CHECK(p.next_delay_ms(2, rng) == 200);
  CHECK(p.next_delay_ms(3, rng) == 300);
  CHECK(p.next_delay_ms(4, rng) == std::nullopt);
}

TEST_CASE("next_delay_ms is reproducible with the same seed") {
  const RetryPolicy p = RetryPolicy::standard();
  std::mt19937_64 a(99), b(99);
  for (int i = 1; i <= 7; ++i) CHECK(p.next_delay_ms(i, a) == p.next_delay_ms(i, b));
}

TEST_CASE("RetryPolicy::parse reads a comma list of durations") {
  std::string error;
  const auto p = RetryPolicy::parse(" 5s, 5m ,30m,2h ", 0.1, &error);
  REQUIRE(p.has_value());
  CHECK(p->delays_ms() == std::vector<int64_t>{5'000, 300'000, 1'800'000, 7'200'000});
  CHECK(p->jitter() == doctest::Approx(0.1));
  CHECK(p->max_attempts() == 5);

  const auto one = RetryPolicy::parse("250ms", 0.2, &error);
  REQUIRE(one.has_value());
  CHECK(one->delays_ms() == std::vector<int64_t>{250});
}

TEST_CASE("RetryPolicy::parse explains what is wrong") {
  std::string error;
  CHECK_FALSE(RetryPolicy::parse("5s,5x,1h", 0.2, &error).has_value());
  CHECK(error == "'5x' is not a duration (use e.g. 5s, 5m, 2h)");
  for (const char* bad : {"", "  ", "5s,", ",5s", "5s,,5m", "5s;5m", "5", "-5s"}) {
    CAPTURE(bad);
    error.clear();
    CHECK_FALSE(RetryPolicy::parse(bad, 0.2, &error).has_value());
    CHECK_FALSE(error.empty());
    CHECK(error.find('\n') == std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------------
// config

TEST_CASE("config defaults apply with no flags and no environment") {
  std::string error;
  const auto c = parse({}, {}, &error);
  REQUIRE_MESSAGE(c.has_value(), error);
  const Config d;
  CHECK(c->listen_host == "127.0.0.1");
  CHECK(c->listen_port == 8071);
  CHECK(c->db_path == d.db_path);
  CHECK_FALSE(c->admin_token.has_value());
  CHECK(c->retry.delays_ms() == RetryPolicy::standard().delays_ms());
  CHECK(c->retry.jitter() == doctest::Approx(0.2));
  CHECK(c->request_timeout_ms == 15000);
  CHECK(c->connect_timeout_ms == 5000);
  CHECK(c->allow_private_cidrs.empty());
  CHECK(c->max_payload_bytes == size_t{1} << 20);
  CHECK(c->max_in_flight == 512);
  CHECK(c->endpoint_concurrency == 32);
  CHECK(c->lease_ms == 60000);
  CHECK(c->public_url.empty());
  CHECK(c->log_level == "info");
}

TEST_CASE("config reads every environment variable") {
  std::string error;
  const auto c = parse({},
                       {{"HERALD_LISTEN", "0.0.0.0:9000"},
                        {"HERALD_DB", "/var/lib/herald/h.db"},
                        {"HERALD_ADMIN_TOKEN", "0123456789abcdef"},
                        {"HERALD_RETRY_SCHEDULE", "1s,2s"},
                        {"HERALD_REQUEST_TIMEOUT", "20s"},
                        {"HERALD_CONNECT_TIMEOUT", "2s"},
                        {"HERALD_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8"},
                        {"HERALD_MAX_PAYLOAD_BYTES", "2048"},
                        {"HERALD_MAX_CONNECTIONS", "500"},
                        {"HERALD_MAX_CONNECTIONS_PER_CLIENT", "20"},
                        {"HERALD_MAX_IN_FLIGHT", "64"},
                        {"HERALD_ENDPOINT_CONCURRENCY", "4"},
                        {"HERALD_LEASE", "2m"},
                        {"HERALD_PUBLIC_URL", "https://hooks.example.com/"},
                        {"HERALD_LOG_LEVEL", "debug"}},
                       &error);
  REQUIRE_MESSAGE(c.has_value(), error);
  CHECK(c->listen_host == "0.0.0.0");
  CHECK(c->listen_port == 9000);
  CHECK(c->db_path == "/var/lib/herald/h.db");
  CHECK(c->admin_token == "0123456789abcdef");
  CHECK(c->retry.delays_ms() == std::vector<int64_t>{1000, 2000});
  CHECK(c->retry.jitter() == doctest::Approx(0.2));
  CHECK(c->request_timeout_ms == 20000);
  CHECK(c->connect_timeout_ms == 2000);
  CHECK(c->allow_private_cidrs == std::vector<std::string>{"127.0.0.0/8"});
  CHECK(c->max_payload_bytes == 2048);
  CHECK(c->max_connections == 500);
  CHECK(c->max_connections_per_client == 20);
  CHECK(c->max_in_flight == 64);
  CHECK(c->endpoint_concurrency == 4);
  CHECK(c->lease_ms == 120000);
  CHECK(c->public_url == "https://hooks.example.com");
  CHECK(c->log_level == "debug");
}

TEST_CASE("config flags, in both forms, beat the environment") {
  std::string error;
  const auto c = parse({"--listen",
                        "127.0.0.1:0",
                        "--db=/tmp/x.db",
                        "--admin-token",
                        "tok_aaaaaaaaaaaaaaaa",
                        "--retry-schedule=3s",
                        "--request-timeout",
                        "1s",
                        "--connect-timeout=500ms",
                        "--allow-private-cidrs",
                        "::1/128",
                        "--max-payload-bytes=10",
                        "--max-connections=3",
                        "--max-connections-per-client",
                        "2",
                        "--max-in-flight",
                        "2",
                        "--endpoint-concurrency=1",
                        "--lease",
                        "5s",
                        "--public-url=http://h:1",
                        "--log-level",
                        "off"},
                       {{"HERALD_LISTEN", "0.0.0.0:9000"},
                        {"HERALD_DB", "/env.db"},
                        {"HERALD_ADMIN_TOKEN", "env-token-env-token"},
                        {"HERALD_RETRY_SCHEDULE", "1s,2s"},
                        {"HERALD_REQUEST_TIMEOUT", "20s"},
                        {"HERALD_CONNECT_TIMEOUT", "2s"},
                        {"HERALD_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8"},
                        {"HERALD_MAX_PAYLOAD_BYTES", "2048"},
                        {"HERALD_MAX_IN_FLIGHT", "64"},
                        {"HERALD_ENDPOINT_CONCURRENCY", "4"},
                        {"HERALD_LEASE", "2m"},
                        {"HERALD_PUBLIC_URL", "https://env.example.com"},
                        {"HERALD_LOG_LEVEL", "debug"}},
                       &error);
  REQUIRE_MESSAGE(c.has_value(), error);
  CHECK(c->listen_host == "127.0.0.1");
  CHECK(c->listen_port == 0);
  CHECK(c->db_path == "/tmp/x.db");
  CHECK(c->admin_token == "tok_aaaaaaaaaaaaaaaa");
  CHECK(c->retry.delays_ms() == std::vector<int64_t>{3000});
  CHECK(c->request_timeout_ms == 1000);
  CHECK(c->connect_timeout_ms == 500);
  CHECK(c->allow_private_cidrs == std::vector<std::string>{"::1/128"});
  CHECK(c->max_payload_bytes == 10);
  CHECK(c->max_connections == 3);
  CHECK(c->max_connections_per_client == 2);
  CHECK(c->max_in_flight == 2);
  CHECK(c->endpoint_concurrency == 1);
  CHECK(c->lease_ms == 5000);
  CHECK(c->public_url == "http://h:1");
  CHECK(c->log_level == "off");
}

TEST_CASE("a repeated flag keeps its last value; env fills what flags leave out") {
  std::string error;
  const auto c = parse({"--db", "/a.db", "--db=/b.db"}, {{"HERALD_MAX_IN_FLIGHT", "7"}}, &error);
  REQUIRE_MESSAGE(c.has_value(), error);
  CHECK(c->db_path == "/b.db");
  CHECK(c->max_in_flight == 7);
}

TEST_CASE("each bad value gives a one-line error naming the flag or variable and the value") {
  struct Bad {
    const char* flag;
    const char* env;
    const char* value;
  };
  const Bad cases[] = {
      {"listen", "HERALD_LISTEN", "localhost"},
      {"listen", "HERALD_LISTEN", "localhost:70000"},
      {"db", "HERALD_DB", ""},
      {"retry-schedule", "HERALD_RETRY_SCHEDULE", "5x"},
      {"request-timeout", "HERALD_REQUEST_TIMEOUT", "15"},
      {"request-timeout", "HERALD_REQUEST_TIMEOUT", "0s"},
      {"connect-timeout", "HERALD_CONNECT_TIMEOUT", "fast"},
      {"allow-private-cidrs", "HERALD_ALLOW_PRIVATE_CIDRS", "10.0.0.0/33"},
      {"max-payload-bytes", "HERALD_MAX_PAYLOAD_BYTES", "1MB"},
      {"max-payload-bytes", "HERALD_MAX_PAYLOAD_BYTES", "0"},
      {"max-connections", "HERALD_MAX_CONNECTIONS", "0"},
      {"max-connections-per-client", "HERALD_MAX_CONNECTIONS_PER_CLIENT", "many"},
      {"max-in-flight", "HERALD_MAX_IN_FLIGHT", "-1"},
      {"max-in-flight", "HERALD_MAX_IN_FLIGHT", "99999999999"},
      {"endpoint-concurrency", "HERALD_ENDPOINT_CONCURRENCY", "+4"},
      {"endpoint-concurrency", "HERALD_ENDPOINT_CONCURRENCY", "4.5"},
      {"lease", "HERALD_LEASE", "1 h"},
      {"public-url", "HERALD_PUBLIC_URL", "hooks.example.com"},
      {"log-level", "HERALD_LOG_LEVEL", "verbose"},
  };
  for (const auto& bad : cases) {
    CAPTURE(bad.flag);
    CAPTURE(bad.value);
    std::string error;
    CHECK_FALSE(parse({std::string("--") + bad.flag + "=" + bad.value}, {}, &error).has_value());
    CHECK(contains(error, std::string("--") + bad.flag));
    CHECK(contains(error, std::string("'") + bad.value + "'"));
    CHECK(error.find('\n') == std::string::npos);

    error.clear();
    CHECK_FALSE(parse({}, {{bad.env, bad.value}}, &error).has_value());
    CHECK(contains(error, bad.env));
    CHECK(contains(error, std::string("'") + bad.value + "'"));
    CHECK(error.find('\n') == std::string::npos);
  }
}

TEST_CASE("the retry schedule error names the variable and the bad item") {
  std::string error;
  CHECK_FALSE(parse({}, {{"HERALD_RETRY_SCHEDULE", "5s,5x"}}, &error).has_value());
  CHECK(error == "HERALD_RETRY_SCHEDULE: '5x' is not a duration (use e.g. 5s, 5m, 2h)");
  CHECK_FALSE(parse({"--retry-schedule", ""}, {}, &error).has_value());
  CHECK(error.starts_with("--retry-schedule: "));
}

TEST_CASE("the admin token must have 16 characters and is not echoed") {
  std::string error;
  CHECK_FALSE(parse({"--admin-token", "short-secret-15"}, {}, &error).has_value());
  CHECK(contains(error, "--admin-token"));
  CHECK(contains(error, "16"));
  CHECK_FALSE(contains(error, "short-secret-15"));

  CHECK_FALSE(parse({}, {{"HERALD_ADMIN_TOKEN", ""}}, &error).has_value());
  CHECK(contains(error, "HERALD_ADMIN_TOKEN"));

  const auto c = parse({}, {{"HERALD_ADMIN_TOKEN", "exactly-16-chars"}}, &error);
  REQUIRE_MESSAGE(c.has_value(), error);
  CHECK(c->admin_token == "exactly-16-chars");
}

TEST_CASE("listen accepts host:port with ports 0..65535") {
  struct Good {
    const char* text;
    const char* host;
    int port;
  };
  for (const Good& g : {Good{"127.0.0.1:8071", "127.0.0.1", 8071}, Good{"0.0.0.0:0", "0.0.0.0", 0},
                        Good{"localhost:65535", "localhost", 65535},
                        Good{"[::1]:9000", "::1", 9000}, Good{"[::]:1", "::", 1}}) {
    CAPTURE(g.text);
    std::string error;
    const auto c = parse({"--listen", g.text}, {}, &error);
    REQUIRE_MESSAGE(c.has_value(), error);
    CHECK(c->listen_host == g.host);
    CHECK(c->listen_port == g.port);
  }
  for (const char* bad :
       {"8071", "localhost", "localhost:", ":8071", "host:65536", "host:-1", "host:80x",
        "host:123456", "host: 80", "::1:8071", "[::1]8071", "[nothost]:80", "[::1:80", "a b:80"}) {
    CAPTURE(bad);
    std::string error;
    CHECK_FALSE(parse({"--listen", bad}, {}, &error).has_value());
    CHECK(contains(error, "--listen"));
  }
}

TEST_CASE("allow-private-cidrs validates and trims each block") {
  std::string error;
  auto c = parse(
      {}, {{"HERALD_ALLOW_PRIVATE_CIDRS", " 127.0.0.0/8, ::1/128 ,10.0.0.0/8,0.0.0.0/0"}}, &error);
  REQUIRE_MESSAGE(c.has_value(), error);
  CHECK(c->allow_private_cidrs ==
        std::vector<std::string>{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "0.0.0.0/0"});

  c = parse({"--allow-private-cidrs", "fd00::/8,192.168.1.0/24"}, {}, &error);
  REQUIRE_MESSAGE(c.has_value(), error);
  CHECK(c->allow_private_cidrs == std::vector<std::string>{"fd00::/8", "192.168.1.0/24"});

  c = parse({}, {{"HERALD_ALLOW_PRIVATE_CIDRS", ""}}, &error);
  REQUIRE_MESSAGE(c.has_value(), error);
  CHECK(c->allow_private_cidrs.empty());

  for (const char* bad : {"127.0.0.0", "127.0.0.0/33", "::1/129", "300.0.0.0/8", "10.0.0/8",
                          "10.0.0.0/8,", "10.0.0.0/8,,::1/128", "abc/8", "10.0.0.0/-1",
                          "10.0.0.0/8x", "10.0.0.0/", "/8", "fe80::1%eth0/64", "10.0.0.0/0008"}) {
    CAPTURE(bad);
    error.clear();
    CHECK_FALSE(parse({}, {{"HERALD_ALLOW_PRIVATE_CIDRS", bad}}, &error).has_value());
    CHECK(contains(error, "HERALD_ALLOW_PRIVATE_CIDRS"));
  }
  CHECK_FALSE(parse({}, {{"HERALD_ALLOW_PRIVATE_CIDRS", "10.0.0.0/8, 1.2.3.4/40"}}, &error));
  CHECK(contains(error, "'1.2.3.4/40'"));
}

TEST_CASE("unknown flags, missing values and stray words are errors") {
  std::string error;
  CHECK_FALSE(parse({"--x"}, {}, &error).has_value());
  CHECK(error == "unknown flag --x (see herald serve --help)");
  CHECK_FALSE(parse({"--x=1"}, {}, &error).has_value());
  CHECK(error == "unknown flag --x (see herald serve --help)");

  CHECK_FALSE(parse({"--db"}, {}, &error).has_value());
  CHECK(contains(error, "--db"));
  CHECK(contains(error, "needs a value"));
  CHECK_FALSE(parse({"--db", "--listen", "1.2.3.4:5"}, {}, &error).has_value());
  CHECK(contains(error, "--db"));

  CHECK_FALSE(parse({"extra"}, {}, &error).has_value());
  CHECK(contains(error, "'extra'"));
  CHECK_FALSE(parse({"-d", "x"}, {}, &error).has_value());
  CHECK_FALSE(parse({"--"}, {}, &error).has_value());
}

TEST_CASE("the lease must be longer than the request timeout") {
  std::string error;
  CHECK_FALSE(parse({}, {{"HERALD_LEASE", "10s"}}, &error).has_value());
  CHECK(contains(error, "HERALD_LEASE"));
  CHECK(contains(error, "15s"));
  CHECK_FALSE(parse({"--request-timeout", "60s"}, {}, &error).has_value());
  CHECK(contains(error, "--request-timeout"));
  CHECK_FALSE(parse({"--lease", "30s"}, {{"HERALD_REQUEST_TIMEOUT", "30s"}}, &error).has_value());
  CHECK(contains(error, "--lease"));
  CHECK(contains(error, "HERALD_REQUEST_TIMEOUT"));
  CHECK(error.find('\n') == std::string::npos);

  const auto c = parse({"--lease", "61s", "--request-timeout", "1m"}, {}, &error);
  REQUIRE_MESSAGE(c.has_value(), error);
  CHECK(c->lease_ms == 61000);
}

TEST_CASE("log levels are case-insensitive and normalized") {
  std::string error;
  for (const char* level : {"trace", "debug", "info", "warn", "error", "off"}) {
    const auto c = parse({"--log-level", level}, {}, &error);
    REQUIRE_MESSAGE(c.has_value(), error);
    CHECK(c->log_level == level);
  }
  const auto c = parse({}, {{"HERALD_LOG_LEVEL", "WARN"}}, &error);
  REQUIRE_MESSAGE(c.has_value(), error);
  CHECK(c->log_level == "warn");
  CHECK_FALSE(parse({"--log-level", "warning"}, {}, &error).has_value());
}

TEST_CASE("serve_help lists every flag, its variable and its default") {
  const std::string help = serve_help();
  for (const char* word : {"--listen",
                           "HERALD_LISTEN",
                           "127.0.0.1:8071",
                           "--db",
                           "HERALD_DB",
                           "./herald.db",
                           "--admin-token",
                           "HERALD_ADMIN_TOKEN",
                           "--retry-schedule",
                           "HERALD_RETRY_SCHEDULE",
                           "5s,5m,30m,2h,5h,10h,10h",
                           "--request-timeout",
                           "HERALD_REQUEST_TIMEOUT",
                           "15s",
                           "--connect-timeout",
                           "HERALD_CONNECT_TIMEOUT",
                           "5s",
                           "--allow-private-cidrs",
                           "HERALD_ALLOW_PRIVATE_CIDRS",
                           "--max-payload-bytes",
                           "HERALD_MAX_PAYLOAD_BYTES",
                           "1048576",
                           "--max-connections",
                           "HERALD_MAX_CONNECTIONS",
                           "10000",
                           "--max-connections-per-client",
                           "HERALD_MAX_CONNECTIONS_PER_CLIENT",
                           "256",
                           "--max-in-flight",
                           "HERALD_MAX_IN_FLIGHT",
                           "512",
                           "--endpoint-concurrency",
                           "HERALD_ENDPOINT_CONCURRENCY",
                           "32",
                           "--lease",
                           "HERALD_LEASE",
                           "1m",
                           "--public-url",
                           "HERALD_PUBLIC_URL",
                           "--log-level",
                           "HERALD_LOG_LEVEL",
                           "info"}) {
    CAPTURE(word);
    CHECK(contains(help, word));
  }
}

TEST_CASE("process_env reads the real environment") {
  const EnvLookup env = process_env();
  ::setenv("HERALD_CORE_TEST_VAR", "hello", 1);
  CHECK(env("HERALD_CORE_TEST_VAR") == "hello");
  ::unsetenv("HERALD_CORE_TEST_VAR");
  CHECK_FALSE(env("HERALD_CORE_TEST_VAR").has_value());
}

// ---------------------------------------------------------------------------------------------
// clock and types

TEST_CASE("SystemClock is close to the real time and ManualClock only moves when told") {
  const TimeMs now = SystemClock().now_ms();
  CHECK(now > 1'700'000'000'000);  // after 2023
  CHECK(now < 4'102'444'800'000);  // before 2100

  ManualClock clock(1000);
  CHECK(clock.now_ms() == 1000);
  clock.advance(500);
  CHECK(clock.now_ms() == 1500);
  clock.set(42);
  CHECK(clock.now_ms() == 42);
}

TEST_CASE("status_text names each delivery status") {
  CHECK(std::string(status_text(DeliveryStatus::kSuccess)) == "success");
  CHECK(std::string(status_text(DeliveryStatus::kPending)) == "pending");
  CHECK(std::string(status_text(DeliveryStatus::kFail)) == "fail");
  CHECK(std::string(status_text(DeliveryStatus::kSending)) == "sending");
}

namespace {

// A lookup of environment variables that reads `env` (as it is when called).
herald::EnvLookup lookup_in(const std::map<std::string, std::string>& env) {
  return [&env](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("config: delivery-guarantee settings") {
  using herald::Config;
  std::map<std::string, std::string> env;
  const auto lookup = lookup_in(env);
  std::string error;
  auto c = herald::parse_serve_config({}, lookup, &error);
  REQUIRE(c);
  CHECK(c->disable_after_ms == 5LL * 24 * 3600 * 1000);
  CHECK(c->retention_ms == 90LL * 24 * 3600 * 1000);
  CHECK(c->shutdown_timeout_ms == 10000);
  CHECK(c->operator_url.empty());

  env = {{"HERALD_DISABLE_AFTER", "2s"},
         {"HERALD_RETENTION", "3s"},
         {"HERALD_SHUTDOWN_TIMEOUT", "500ms"},
         {"HERALD_OPERATOR_URL", "http://127.0.0.1:1/ops"},
         {"HERALD_OPERATOR_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}};
  c = herald::parse_serve_config({}, lookup, &error);
  REQUIRE(c);
  CHECK(c->disable_after_ms == 2000);
  CHECK(c->retention_ms == 3000);
  CHECK(c->shutdown_timeout_ms == 500);
  CHECK(c->operator_url == "http://127.0.0.1:1/ops");

  env = {{"HERALD_OPERATOR_URL", "http://127.0.0.1:1/ops"}};
  CHECK_FALSE(herald::parse_serve_config({}, lookup, &error));
  CHECK(error.find("HERALD_OPERATOR_SECRET") != std::string::npos);
  env = {{"HERALD_OPERATOR_SECRET", "whsec_short"}};
  CHECK_FALSE(herald::parse_serve_config({}, lookup, &error));
  CHECK(error.find("HERALD_OPERATOR_SECRET") != std::string::npos);
  env = {{"HERALD_RETENTION", "forever"}};
  CHECK_FALSE(herald::parse_serve_config({}, lookup, &error));
  CHECK(error.find("HERALD_RETENTION") != std::string::npos);
}

TEST_CASE("config: messages are kept twice the retention unless told, and never less than it") {
  std::map<std::string, std::string> env;
  const auto lookup = lookup_in(env);
  std::string error;
  auto c = herald::parse_serve_config({}, lookup, &error);
  REQUIRE(c);
  CHECK(c->message_retention_ms == 180LL * 24 * 3600 * 1000);
  env = {{"HERALD_RETENTION", "5m"}};
  c = herald::parse_serve_config({}, lookup, &error);
  REQUIRE(c);
  CHECK(c->message_retention_ms == 600'000);
  env = {{"HERALD_RETENTION", "5m"}, {"HERALD_MESSAGE_RETENTION", "5m"}};
  c = herald::parse_serve_config({}, lookup, &error);
  REQUIRE(c);
  CHECK(c->message_retention_ms == 300'000);
  c = herald::parse_serve_config({"--message-retention", "1h"}, lookup, &error);
  REQUIRE(c);
  CHECK(c->message_retention_ms == 3'600'000);

  c = herald::parse_serve_config({"--message-retention=4m"}, lookup, &error);
  CHECK_FALSE(c);
  CHECK(error.find("--message-retention") != std::string::npos);
  CHECK(error.find("4m") != std::string::npos);
  CHECK(error.find("5m") != std::string::npos);
  CHECK(error.find('\n') == std::string::npos);
  env = {{"HERALD_MESSAGE_RETENTION", "soon"}};
  CHECK_FALSE(herald::parse_serve_config({}, lookup, &error));
  CHECK(error.find("HERALD_MESSAGE_RETENTION") != std::string::npos);
}

TEST_CASE("config: the operational webhooks' signature scheme follows the secret or is checked") {
  using herald::SignatureScheme;
  std::map<std::string, std::string> env;
  const auto lookup = lookup_in(env);
  const std::string hmac = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const herald::SigningKey ed = herald::generate_key(herald::KeyKind::kEd25519);
  const std::string whsk =
      "whsk_" + herald::base64_encode(ed.bytes + herald::ed25519_public_key(ed.bytes));
  const std::string whpk = herald::shown_secret(ed);  // a public key is no secret to sign with
  std::string error;

  env = {{"HERALD_OPERATOR_SECRET", hmac}};
  auto c = herald::parse_serve_config({}, lookup, &error);
  REQUIRE(c);
  CHECK(c->operator_scheme == std::optional(SignatureScheme::kStandard));
  env["HERALD_OPERATOR_SIGNATURE_SCHEME"] = "stripe";
  c = herald::parse_serve_config({}, lookup, &error);
  REQUIRE(c);
  CHECK(c->operator_scheme == std::optional(SignatureScheme::kStripe));

  // Stripe and GitHub key HMAC with the secret's text: it must be the canonical base64.
  const std::string padded = "whsec_" + herald::base64_encode(std::string(25, 'k'));
  REQUIRE(padded.substr(padded.size() - 2) == "==");
  env["HERALD_OPERATOR_SECRET"] = padded;
  CHECK(herald::parse_serve_config({}, lookup, &error));
  env["HERALD_OPERATOR_SECRET"] = padded.substr(0, padded.size() - 2);
  CHECK_FALSE(herald::parse_serve_config({}, lookup, &error));
  CHECK(error.find("canonical") != std::string::npos);
  env["HERALD_OPERATOR_SIGNATURE_SCHEME"] = "standard";  // keyed with the bytes: either will do
  CHECK(herald::parse_serve_config({}, lookup, &error));

  // An Ed25519 key implies ed25519 and fits no HMAC scheme.
  env = {{"HERALD_OPERATOR_SECRET", whsk}};
  c = herald::parse_serve_config({}, lookup, &error);
  REQUIRE(c);
  CHECK(c->operator_scheme == std::optional(SignatureScheme::kEd25519));
  env["HERALD_OPERATOR_SIGNATURE_SCHEME"] = "github";
  CHECK_FALSE(herald::parse_serve_config({}, lookup, &error));
  CHECK(error.find("HERALD_OPERATOR_SIGNATURE_SCHEME") != std::string::npos);
  env = {{"HERALD_OPERATOR_SECRET", hmac}, {"HERALD_OPERATOR_SIGNATURE_SCHEME", "ed25519"}};
  CHECK_FALSE(herald::parse_serve_config({}, lookup, &error));
  env = {{"HERALD_OPERATOR_SECRET", hmac}, {"HERALD_OPERATOR_SIGNATURE_SCHEME", "hmac"}};
  CHECK_FALSE(herald::parse_serve_config({}, lookup, &error));
  CHECK(error.find("HERALD_OPERATOR_SIGNATURE_SCHEME") != std::string::npos);
  env = {{"HERALD_OPERATOR_SECRET", whpk}};
  CHECK_FALSE(herald::parse_serve_config({}, lookup, &error));
}

TEST_CASE("verify_signature_header accepts any valid v1 entry and nothing else") {
  const std::string key = *herald::decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  const std::string other = *herald::decode_secret(herald::generate_secret());
  const std::string id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
  const std::string body = R"({"test": 2432232314})";
  const std::string good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
  CHECK(herald::verify_signature_header({key}, id, 1614265330, body, good));
  CHECK(herald::verify_signature_header({other, key}, id, 1614265330, body, good));
  CHECK(herald::verify_signature_header({key}, id, 1614265330, body, "v1,bad= " + good));
  CHECK(herald::verify_signature_header({key}, id, 1614265330, body, "v2,xyz " + good + " v1a,"));
  CHECK_FALSE(herald::verify_signature_header({key}, id, 1614265331, body, good));
  CHECK_FALSE(herald::verify_signature_header({key}, id, 1614265330, body + " ", good));
  CHECK_FALSE(herald::verify_signature_header({other}, id, 1614265330, body, good));
  CHECK_FALSE(herald::verify_signature_header({key}, id, 1614265330, body, "v2" + good.substr(2)));
  CHECK_FALSE(herald::verify_signature_header({key}, id, 1614265330, body, ""));
  CHECK_FALSE(herald::verify_signature_header({}, id, 1614265330, body, good));
  // What herald sends verifies.
  const std::string header = herald::signature_header({key, other}, id, 1700000000, body);
  CHECK(herald::verify_signature_header({other}, id, 1700000000, body, header));
}

// ---------------------------------------------------------------------------------------------
// address_policy (the SSRF guard)

namespace {

AddressPolicy make_policy(const std::vector<std::string>& allow = {}) {
  std::string error;
  auto policy = AddressPolicy::parse(allow, &error);
  REQUIRE_MESSAGE(policy.has_value(), error);
  return *policy;
}

// The guard's verdict on a numeric IPv4 or IPv6 address, as a connected socket would see it.
std::optional<std::string> verdict(const AddressPolicy& policy, const std::string& ip) {
  sockaddr_in sin{};
  sockaddr_in6 sin6{};
  if (inet_pton(AF_INET, ip.c_str(), &sin.sin_addr) == 1) {
    sin.sin_family = AF_INET;
    sin.sin_port = htons(443);
    return policy.refuse_reason(reinterpret_cast<const sockaddr*>(&sin), sizeof(sin));
  }
  REQUIRE_MESSAGE(inet_pton(AF_INET6, ip.c_str(), &sin6.sin6_addr) == 1, ip);
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(443);
  return policy.refuse_reason(reinterpret_cast<const sockaddr*>(&sin6), sizeof(sin6));
}

}  // namespace

TEST_CASE("the SSRF guard refuses every blocked range, at both ends, naming it") {
  const AddressPolicy policy = make_policy();
  const std::pair<const char*, const char*> refused[] = {
      {"0.0.0.0", "unspecified"},
      {"0.255.255.255", "unspecified"},
      {"10.0.0.0", "private"},
      {"10.255.255.255", "private"},
      {"100.64.0.0", "CGNAT"},
      {"100.127.255.255", "CGNAT"},
      {"127.0.0.0", "loopback"},
      {"127.0.0.1", "loopback"},
      {"127.255.255.255", "loopback"},
      {"169.254.0.0", "link-local"},
      {"169.254.169.254", "cloud metadata"},
      {"169.254.255.255", "link-local"},
      {"172.16.0.0", "private"},
      {"172.31.255.255", "private"},
      {"192.0.0.0", "IETF"},
      {"192.0.0.255", "IETF"},
      {"192.168.0.0", "private"},
      {"192.168.255.255", "private"},
      {"198.18.0.0", "benchmarking"},
      {"198.19.255.255", "benchmarking"},
      {"224.0.0.0", "multicast"},
      {"239.255.255.255", "multicast"},
      {"240.0.0.0", "reserved"},
      {"255.255.255.254", "reserved"},
      {"255.255.255.255", "broadcast"},
      {"::", "unspecified"},
      {"::1", "loopback"},
      {"fe80::", "link-local"},
      {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"},
      {"fec0::1", "site-local"},
      {"fc00::", "unique-local"},
      {"fd00::2", "unique-local"},
      {"fd00:ec2::254", "unique-local"},
      {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique-local"},
      {"ff00::", "multicast"},
      {"ff02::1", "multicast"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"},
  };
  for (const auto& [ip, range] : refused) {
    const std::string shown = ip;
    CAPTURE(shown);
    const auto reason = verdict(policy, ip);
    REQUIRE(reason.has_value());
    CHECK(reason->starts_with("refused by the SSRF guard: "));
    CHECK(contains(*reason, std::string(" ") + ip + " is "));
    CHECK(contains(*reason, range));
    CHECK(contains(*reason, "HERALD_ALLOW_PRIVATE_CIDRS"));
  }
  CHECK(*verdict(policy, "127.0.0.1") ==
        "refused by the SSRF guard: 127.0.0.1 is a loopback address "
        "(HERALD_ALLOW_PRIVATE_CIDRS can allow it)");
}

TEST_CASE("the SSRF guard lets public addresses through, right next to the blocked ranges") {
  const AddressPolicy policy = make_policy();
  for (const char* ip : {"1.0.0.0",          "8.8.8.8",
                         "9.255.255.255",    "11.0.0.0",
                         "100.63.255.255",   "100.128.0.0",
                         "126.255.255.255",  "128.0.0.0",
                         "169.253.255.255",  "169.255.0.0",
                         "172.15.255.255",   "172.32.0.0",
                         "191.255.255.255",  "192.0.1.0",
                         "192.0.2.1",        "192.167.255.255",
                         "192.169.0.0",      "198.17.255.255",
                         "198.20.0.0",       "223.255.255.255",
                         "2606:4700::1111",  "2001:4860:4860::8888",
                         "fe7f:ffff::1",     "fbff:ffff::1",
                         "fe00::1",          "::ffff:8.8.8.8",
                         "64:ff9b::8.8.8.8", "::8.8.8.8",
                         "2002:808:808::1",  "::fffe:7f00:1",
                         "64:ff9a::7f00:1",  "2003:7f00:1::"}) {
    const auto reason = verdict(policy, ip);
    CHECK_MESSAGE(!reason.has_value(), (std::string(ip) + ": " + reason.value_or("")));
  }
}

TEST_CASE("IPv6 forms embedding a blocked IPv4 address are refused as that address") {
  const AddressPolicy policy = make_policy();
  const std::pair<const char*, const char*> refused[] = {
      {"::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1, a loopback"},
      {"::ffff:7f00:2", "IPv4-mapped form of 127.0.0.2, a loopback"},
      {"::ffff:10.1.2.3", "IPv4-mapped form of 10.1.2.3, a private"},
      {"::ffff:169.254.169.254", "IPv4-mapped form of 169.254.169.254, the link-local cloud"},
      {"::ffff:0.0.0.0", "IPv4-mapped form of 0.0.0.0, an unspecified"},
      {"::ffff:100.64.0.1", "CGNAT"},
      {"::ffff:224.0.0.1", "multicast"},
      {"64:ff9b::127.0.0.1", "NAT64 form of 127.0.0.1, a loopback"},
      {"64:ff9b::a9fe:a9fe", "NAT64 form of 169.254.169.254"},
      {"::127.0.0.1", "IPv4-compatible form of 127.0.0.1, a loopback"},
      {"::192.168.1.1", "IPv4-compatible form of 192.168.1.1, a private"},
      {"::2", "IPv4-compatible form of 0.0.0.2, an unspecified"},
      {"2002:7f00:1::", "6to4 form of 127.0.0.1, a loopback"},
      {"2002:a9fe:a9fe::1", "6to4 form of 169.254.169.254"},
  };
  for (const auto& [ip, expected] : refused) {
    const std::string shown = ip;
    CAPTURE(shown);
    const auto reason = verdict(policy, ip);
    REQUIRE(reason.has_value());
    CHECK(contains(*reason, expected));
  }
  CHECK(*verdict(policy, "::ffff:127.0.0.1") ==
        "refused by the SSRF guard: ::ffff:127.0.0.1 is the IPv4-mapped form of 127.0.0.1, a "
        "loopback address (HERALD_ALLOW_PRIVATE_CIDRS can allow it)");
}

TEST_CASE("an allowed CIDR opens exactly its range") {
  const AddressPolicy loopback = make_policy({"127.0.0.0/8"});
  CHECK_FALSE(verdict(loopback, "127.0.0.1").has_value());
  CHECK_FALSE(verdict(loopback, "127.255.255.255").has_value());
  CHECK_FALSE(verdict(loopback, "::ffff:127.0.0.1").has_value());  // the same IPv4 address
  CHECK_FALSE(verdict(loopback, "64:ff9b::127.0.0.1").has_value());
  CHECK(verdict(loopback, "10.0.0.1").has_value());
  CHECK(verdict(loopback, "128.0.0.0").has_value() == false);  // public anyway
  CHECK(verdict(loopback, "126.255.255.255").has_value() == false);
  CHECK(verdict(loopback, "::1").has_value());  // IPv6 loopback is another address
  CHECK(verdict(loopback, "169.254.169.254").has_value());

  const AddressPolicy one = make_policy({"127.0.0.1/32"});
  CHECK_FALSE(verdict(one, "127.0.0.1").has_value());
  CHECK(verdict(one, "127.0.0.2").has_value());
  CHECK(verdict(one, "127.0.0.0").has_value());

  const AddressPolicy v6 = make_policy({"::1/128"});
  CHECK_FALSE(verdict(v6, "::1").has_value());
  CHECK(verdict(v6, "127.0.0.1").has_value());
  CHECK(verdict(v6, "::ffff:127.0.0.1").has_value());
  CHECK(verdict(v6, "::2").has_value());  // IPv4-compatible 0.0.0.2, not loopback

  const AddressPolicy odd = make_policy({"172.16.0.0/13", "fd00::/8", "10.1.2.3/16"});
  CHECK_FALSE(verdict(odd, "172.23.255.255").has_value());
  CHECK(verdict(odd, "172.24.0.0").has_value());
  CHECK_FALSE(verdict(odd, "fd12:3456::1").has_value());
  CHECK(verdict(odd, "fc00::1").has_value());
  CHECK_FALSE(verdict(odd, "10.1.0.0").has_value());  // host bits of 10.1.2.3/16 are ignored
  CHECK_FALSE(verdict(odd, "10.1.255.255").has_value());
  CHECK(verdict(odd, "10.2.0.0").has_value());

  // An IPv6 block never opens plain IPv4 addresses; an IPv4 block never opens IPv6 ranges.
  const AddressPolicy all_v6 = make_policy({"::/0"});
  CHECK_FALSE(verdict(all_v6, "fe80::1").has_value());
  CHECK(verdict(all_v6, "127.0.0.1").has_value());
  const AddressPolicy all_v4 = make_policy({"0.0.0.0/0"});
  CHECK_FALSE(verdict(all_v4, "169.254.169.254").has_value());
  CHECK_FALSE(verdict(all_v4, "::ffff:10.0.0.1").has_value());
  CHECK(verdict(all_v4, "::1").has_value());
  CHECK(verdict(all_v4, "fd00::1").has_value());
}

TEST_CASE("AddressPolicy::parse rejects what is not a CIDR block") {
  std::string error;
  for (const char* bad :
       {"127.0.0.0", "127.0.0.0/33", "::1/129", "300.0.0.0/8", "10.0.0/8", "abc/8", "10.0.0.0/-1",
        "10.0.0.0/8x", "10.0.0.0/", "/8", "fe80::1%eth0/64", "10.0.0.0/0008", "", " 10.0.0.0/8"}) {
    const std::string shown = bad;
    CAPTURE(shown);
    error.clear();
    CHECK_FALSE(AddressPolicy::parse({"10.0.0.0/8", bad}, &error).has_value());
    CHECK(error ==
          "'" + std::string(bad) + "' is not a CIDR block (use e.g. 10.0.0.0/8 or fd00::/8)");
  }
  CHECK(AddressPolicy::parse({}, &error).has_value());
  CHECK(AddressPolicy::parse({"0.0.0.0/0", "::/0", "1.2.3.4/32", "::1/128"}, nullptr));
}

TEST_CASE("the SSRF guard refuses what is not an IPv4 or IPv6 address") {
  const AddressPolicy policy = make_policy({"0.0.0.0/0", "::/0"});
  sockaddr unix_like{};
  unix_like.sa_family = AF_UNIX;
  CHECK(policy.refuse_reason(&unix_like, sizeof(unix_like)).has_value());
  CHECK(policy.refuse_reason(nullptr, 0).has_value());
  sockaddr_in6 short_v6{};
  short_v6.sin6_family = AF_INET6;
  CHECK(policy.refuse_reason(reinterpret_cast<const sockaddr*>(&short_v6), 8).has_value());
}

TEST_CASE("the disk reserve and SQLite's memory bound: 16 and 32 MiB, any byte count, or 0") {
  struct Setting {
    const char* flag;
    const char* env;
    uint64_t Config::*field;
    uint64_t default_bytes;
  };
  for (const Setting& setting : {Setting{"--disk-reserve-bytes", "HERALD_DISK_RESERVE_BYTES",
                                         &Config::disk_reserve_bytes, 16u << 20},
                                 Setting{"--sqlite-memory-bytes", "HERALD_SQLITE_MEMORY_BYTES",
                                         &Config::sqlite_memory_bytes, 32u << 20}}) {
    CAPTURE(setting.env);
    std::string error;
    auto c = parse({}, {}, &error);
    REQUIRE_MESSAGE(c.has_value(), error);
    CHECK((*c).*setting.field == setting.default_bytes);
    c = parse({setting.flag, "0"}, {}, &error);
    REQUIRE_MESSAGE(c.has_value(), error);
    CHECK((*c).*setting.field == 0);
    c = parse({}, {{setting.env, "1073741824"}}, &error);
    REQUIRE_MESSAGE(c.has_value(), error);
    CHECK((*c).*setting.field == 1u << 30);
    for (const char* bad : {"-1", "16m", "", "x"}) {
      const std::string shown = bad;
      CAPTURE(shown);
      CHECK_FALSE(parse({}, {{setting.env, bad}}, &error).has_value());
      CHECK(contains(error, setting.env));
    }
    CHECK(contains(serve_help(), setting.env));
  }
}

TEST_CASE("https-only is off by default and reads true/false/1/0 from flag or environment") {
  std::string error;
  auto c = parse({}, {}, &error);
  REQUIRE_MESSAGE(c.has_value(), error);
  CHECK_FALSE(c->https_only);

  for (const char* yes : {"true", "TRUE", "True", "1"}) {
    const std::string shown = yes;
    CAPTURE(shown);
    c = parse({}, {{"HERALD_HTTPS_ONLY", yes}}, &error);
    REQUIRE_MESSAGE(c.has_value(), error);
    CHECK(c->https_only);
  }
  for (const char* no : {"false", "FALSE", "0"}) {
    const std::string shown = no;
    CAPTURE(shown);
    c = parse({}, {{"HERALD_HTTPS_ONLY", no}}, &error);
    REQUIRE_MESSAGE(c.has_value(), error);
    CHECK_FALSE(c->https_only);
  }
  c = parse({"--https-only"}, {}, &error);  // a bare switch
  REQUIRE_MESSAGE(c.has_value(), error);
  CHECK(c->https_only);
  c = parse({"--https-only", "--db", "x.db"}, {}, &error);
  REQUIRE_MESSAGE(c.has_value(), error);
  CHECK(c->https_only);
  CHECK(c->db_path == "x.db");
  c = parse({"--https-only=false"}, {{"HERALD_HTTPS_ONLY", "true"}}, &error);
  REQUIRE_MESSAGE(c.has_value(), error);
  CHECK_FALSE(c->https_only);
  c = parse({"--https-only", "0"}, {{"HERALD_HTTPS_ONLY", "1"}}, &error);
  REQUIRE_MESSAGE(c.has_value(), error);
  CHECK_FALSE(c->https_only);

  for (const char* bad : {"yes", "on", "", "2", "truee"}) {
    const std::string shown = bad;
    CAPTURE(shown);
    CHECK_FALSE(parse({}, {{"HERALD_HTTPS_ONLY", bad}}, &error).has_value());
    CHECK(error == "HERALD_HTTPS_ONLY: '" + std::string(bad) + "' is not true, false, 1 or 0");
  }
  CHECK_FALSE(parse({"--https-only=maybe"}, {}, &error).has_value());
  CHECK(contains(error, "--https-only"));

  const std::string help = serve_help();
  CHECK(contains(help, "--https-only"));
  CHECK(contains(help, "HERALD_HTTPS_ONLY"));
  CHECK_FALSE(contains(help, "not built yet"));
}

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)  // glibc's allocator, not ASan's
namespace {

// This process's resident size, from /proc.
int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0;
  int64_t resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// Leaves each of `threads` arenas holding about `bytes` freed but not returned: blocks
// allocated and freed on their own threads, every 64th kept so the arenas cannot shrink by
// themselves.
std::vector<std::vector<char*>> fragment_arenas(int threads, size_t bytes) {
  std::vector<std::vector<char*>> kept(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&kept, t, bytes] {
      constexpr size_t kBlock = 4096;
      std::vector<char*> blocks;
      for (size_t i = 0; i < bytes / kBlock; ++i) {
        blocks.push_back(static_cast<char*>(std::malloc(kBlock)));
        std::memset(blocks.back(), 1, kBlock);  // resident
      }
      for (size_t i = 0; i < blocks.size(); ++i) {
        if (i % 64 == 63) {
          kept[static_cast<size_t>(t)].push_back(blocks[i]);
        } else {
          std::free(blocks[i]);
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  return kept;
}

void release(std::vector<std::vector<char*>>& kept) {
  for (auto& blocks : kept) {
    for (char* b : blocks) std::free(b);
  }
}

}  // namespace

TEST_CASE("the heap trimmer gives memory that threads freed back to the system") {
  constexpr int kThreads = 4;
  constexpr size_t kPerThread = 32u << 20;
  auto kept = fragment_arenas(kThreads, kPerThread);
  const auto figures = heap_figures();
  REQUIRE(figures.has_value());
  CHECK(figures->free >= static_cast<int64_t>(kThreads * kPerThread / 2));
  const int64_t before = resident_bytes();
  {
    // On its own thread, within a few periods.
    HeapTrimmer trimmer(std::chrono::milliseconds(10));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (resident_bytes() > before - static_cast<int64_t>(kThreads * kPerThread / 2) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  const int64_t after = resident_bytes();
  INFO("resident before " << before / 1024 << " KiB, after " << after / 1024 << " KiB");
  CHECK(before - after >= static_cast<int64_t>(kThreads * kPerThread / 2));
  // What is still in use stays readable.
  for (auto& blocks : kept) {
    for (char* b : blocks) CHECK(b[4095] == 1);
  }
  release(kept);
}
#endif
