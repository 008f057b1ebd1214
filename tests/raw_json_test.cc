#include "api/raw_json.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>

using herald::raw_member;

TEST_CASE("raw_member returns the member's exact source text") {
  CHECK(raw_member(R"({"payload":{"a":1}})", "payload") == R"({"a":1})");
  CHECK(raw_member(
            R"({ "eventType" : "x" , "payload" :  {"n": 1e-7, "big": -9223372036854775809} } )",
            "payload") == R"({"n": 1e-7, "big": -9223372036854775809})");
  CHECK(raw_member(R"({"payload":[1, 2.50, "x"]})", "payload") == R"([1, 2.50, "x"])");
  CHECK(raw_member(R"({"payload":"s"})", "payload") == R"("s")");
  CHECK(raw_member(R"({"payload":12.0})", "payload") == "12.0");
  CHECK(raw_member(R"({"payload":null})", "payload") == "null");
}

TEST_CASE("raw_member is not fooled by look-alikes inside strings and nested objects") {
  const std::string text =
      R"({"a":"\"payload\":1","nested":{"payload":{"wrong":true}},"s":"}{][","payload":{"k":"v\"}"}})";
  CHECK(raw_member(text, "payload") == R"({"k":"v\"}"})");
  CHECK(raw_member(text, "nested") == R"({"payload":{"wrong":true}})");
}

TEST_CASE("raw_member takes the last of repeated keys, as the JSON parser does") {
  const std::string text = R"({"payload":{"first":1},"payload":{"second":2}})";
  CHECK(raw_member(text, "payload") == R"({"second":2})");
  auto parsed = nlohmann::json::parse(text);
  CHECK(nlohmann::json::parse(*raw_member(text, "payload")) == parsed["payload"]);
}

TEST_CASE("raw_member decodes escaped keys") {
  CHECK(raw_member(R"({"pay\u006coad":{"x":1}})", "payload") == R"({"x":1})");
}

TEST_CASE("raw_member finds nothing where there is nothing") {
  CHECK_FALSE(raw_member(R"({"eventType":"a"})", "payload"));
  CHECK_FALSE(raw_member(R"({})", "payload"));
  CHECK_FALSE(raw_member(R"([{"payload":1}])", "payload"));
  CHECK_FALSE(raw_member("", "payload"));
  CHECK_FALSE(raw_member(R"({"payload")", "payload"));  // truncated: no crash
}
