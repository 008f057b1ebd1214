#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/types.h"
#include "db/delivery_store.h"
#include "db/task_store.h"

namespace herald {

// Svix-shaped JSON of herald's records (camelCase, RFC 3339 times).
nlohmann::ordered_json to_json(const Application& a);
nlohmann::ordered_json to_json(const Endpoint& e);
// Without content (an event type list's default, as on Svix), schemas read as null.
nlohmann::ordered_json to_json(const EventType& e, bool with_content = true);
// `with_content` false leaves the payload out (an empty object), as Svix does.
nlohmann::ordered_json to_json(const Message& m, bool with_content);
nlohmann::ordered_json to_json(const Attempt& a, bool with_content);
nlohmann::ordered_json to_json(const DeliveryStats& s);
// Svix's BackgroundTaskOut.
nlohmann::ordered_json to_json(const BackgroundTask& t);

// An attempt's stored request headers (JSON object text) with sensitive values masked; an
// empty object when the text is not a JSON object.
nlohmann::ordered_json masked_headers(const std::string& headers_json);

// Request bodies keep their keys in the order the client sent them, so a message payload is
// stored and signed as written.
using JsonIn = nlohmann::ordered_json;

// Parses JSON text a client sent, keys in sent order. Text nesting deeper than 64 levels is
// refused unparsed (the recursive code that prints JSON would exhaust the stack). On failure,
// nullopt, and `problem` says why, naming the text `what` ("the body").
std::optional<JsonIn> parse_client_json(const std::string& text, const std::string& what,
                                        std::string& problem);

// Reads and validates a request body field by field. Every problem is collected; finish()
// throws one ApiError 422 listing all of them. Explicit nulls read as absent.
class BodyReader {
 public:
  // Throws 422 unless `body` is a JSON object. `body` must outlive the reader.
  explicit BodyReader(const JsonIn& body);
  // Reads a copy of `body` (for callers holding sorted JSON).
  explicit BodyReader(const nlohmann::json& body);
  // Reads an object nested in a body: errors are located under `loc` (a JSON array such as
  // ["body", "eventTypes", 3]). Throws 422 there unless `body` is an object.
  BodyReader(const JsonIn& body, nlohmann::ordered_json loc);

  bool has(const char* field) const;  // present and not null
  // A field present in the body, null included (for PATCH).
  bool present(const char* field) const;

  std::optional<std::string> opt_string(const char* field, size_t max_len = 256);
  std::string req_string(const char* field, size_t max_len = 256);
  std::optional<int64_t> opt_int(const char* field, int64_t min, int64_t max);
  // An RFC 3339 date-time; req_time records a missing field as an error (and returns nullopt).
  std::optional<TimeMs> opt_time(const char* field);
  std::optional<TimeMs> req_time(const char* field);
  std::optional<bool> opt_bool(const char* field);
  // A list of strings, each at most `max_item_len`, at most `max_items` long.
  std::optional<std::vector<std::string>> opt_string_list(const char* field, size_t max_items,
                                                          size_t max_item_len);
  // A list of names (valid_name, at most `max_len` long), duplicates dropped; an empty list
  // reads as absent.
  std::optional<std::vector<std::string>> opt_name_list(const char* field, size_t max_items,
                                                        size_t max_len = 256);
  std::optional<std::map<std::string, std::string>> opt_string_map(const char* field,
                                                                   size_t max_entries,
                                                                   size_t max_len);
  // The raw JSON value (nullptr when absent or null).
  const JsonIn* raw(const char* field) const;

  // Records an error found by the caller.
  void error(const char* field, const std::string& msg, const std::string& type = "value_error");
  // Records an error at `loc` (a JSON array), wherever in the body it is.
  void error_at(nlohmann::ordered_json loc, const std::string& msg,
                const std::string& type = "value_error");
  // Takes over the errors a reader of a nested object found.
  void absorb(const BodyReader& nested);
  bool failed() const { return !errors_.empty(); }
  // Throws the collected errors, if any.
  void finish() const;

 private:
  std::optional<JsonIn> owned_;
  const JsonIn& body_;
  nlohmann::ordered_json loc_ = nlohmann::ordered_json::array({"body"});
  nlohmann::ordered_json errors_ = nlohmann::ordered_json::array();
};

// Reads an event type's required `name` (valid_name).
std::string read_event_type_name(BodyReader& r);
// Reads the fields of Svix's EventTypeIn, EventTypeUpsertIn or EventTypePatch other than the
// name into `et`; with `patch`, only those present. Problems go to `r`.
void read_event_type_fields(BodyReader& r, EventType& et, bool patch);

// Checks a uid: 1 to 256 of [A-Za-z0-9_.-]; it must not look like one of herald's ids.
bool valid_uid(const std::string& uid);
// Checks an event type or channel name: 1 to 256 of [A-Za-z0-9_.-].
bool valid_name(const std::string& name);
// Checks an endpoint URL: absolute http:// or https:// with a host; nullopt when fine,
// else the reason.
std::optional<std::string> url_problem(const std::string& url);
// Checks a custom header name: an HTTP token, not one herald sets itself nor a hop-by-hop one.
std::optional<std::string> header_problem(const std::string& name, const std::string& value);
// Checks the name of the header that carries an endpoint's signature (the same rules).
std::optional<std::string> header_name_problem(const std::string& name);

}  // namespace herald
