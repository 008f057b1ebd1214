#include "api/http/message.h"

#include "core/ascii.h"
#include "core/encoding.h"

namespace herald::http {

namespace {

const std::string* find_field(const Fields& fields, std::string_view name, bool any_case) {
  for (const auto& [n, v] : fields) {
    const bool same =
        any_case ? n.size() == name.size() && starts_with_ascii_ci(n, name) : n == name;
    if (same) return &v;
  }
  return nullptr;
}

}  // namespace

std::string Request::header(std::string_view name) const {
  const std::string* v = find_field(headers, name, true);
  return v ? *v : std::string();
}

bool Request::has_header(std::string_view name) const {
  return find_field(headers, name, true) != nullptr;
}

std::string Request::param(std::string_view name) const {
  const std::string* v = find_field(query, name, false);
  return v ? *v : std::string();
}

bool Request::has_param(std::string_view name) const {
  return find_field(query, name, false) != nullptr;
}

void Response::set_header(std::string name, std::string value) {
  headers.emplace_back(std::move(name), std::move(value));
}

void Response::set_content(std::string content, std::string type) {
  body = std::move(content);
  content_type = std::move(type);
}

std::string percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      const int hi = hex_digit_value(text[i + 1]);
      const int lo = hex_digit_value(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

Fields parse_query(std::string_view query) {
  Fields out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::string_view name = pair.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    out.emplace_back(percent_decode(name, true), percent_decode(value, true));
  }
  return out;
}

}  // namespace herald::http
