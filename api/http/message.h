#pragma once

#include <functional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herald::http {

// Header or query fields in the order they came, names as sent.
using Fields = std::vector<std::pair<std::string, std::string>>;

// One HTTP request, read whole before any route sees it.
struct Request {
  std::string method;  // as sent: GET, POST, ...
  std::string target;  // the request target as sent: path and query
  std::string path;    // the target's path, percent-decoded
  Fields query;        // the target's query, decoded ('+' is a space)
  Fields headers;
  std::string body;  // de-chunked
  std::string remote_address;
  std::smatch matches;  // the route's captures over `path`; the request is never copied

  // The first value of header `name` (any case); "" when absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  // The first value of query parameter `name`; "" when absent.
  std::string param(std::string_view name) const;
  bool has_param(std::string_view name) const;
};

struct Response {
  int status = 200;
  Fields headers;  // beyond Content-Type and Content-Length, which the server writes
  std::string content_type;
  std::string body;

  void set_header(std::string name, std::string value);
  void set_content(std::string content, std::string type);
};

using Handler = std::function<void(const Request&, Response&)>;

// Decodes %XX escapes (left as they are when malformed); `plus_is_space` for query strings.
std::string percent_decode(std::string_view text, bool plus_is_space);
// Splits "a=1&b=2" into decoded fields; a name without '=' has an empty value.
Fields parse_query(std::string_view query);

}  // namespace herald::http
