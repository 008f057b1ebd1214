#include "api/raw_json.h"

#include <nlohmann/json.hpp>
#include <string>

namespace herald {
namespace {

// A cursor over valid JSON text that can step over whole values.
class Scanner {
 public:
  explicit Scanner(std::string_view t) : t_(t) {}

  bool done() const { return i_ >= t_.size(); }
  size_t pos() const { return i_; }
  char peek() const { return done() ? '\0' : t_[i_]; }
  void advance() { ++i_; }

  void skip_ws() {
    while (!done() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r')) ++i_;
  }

  // At a '"': steps past the closing quote and returns the raw text between the quotes.
  std::string_view string() {
    size_t start = ++i_;
    while (!done() && t_[i_] != '"') i_ += t_[i_] == '\\' ? 2 : 1;
    std::string_view inner = t_.substr(start, std::min(i_, t_.size()) - start);
    ++i_;
    return inner;
  }

  // Steps over one value of any kind.
  void value() {
    skip_ws();
    char c = peek();
    if (c == '"') {
      string();
    } else if (c == '{' || c == '[') {
      int depth = 0;
      while (!done()) {
        char d = t_[i_];
        if (d == '"') {
          string();
          continue;
        }
        if (d == '{' || d == '[') ++depth;
        if (d == '}' || d == ']') {
          if (--depth == 0) {
            ++i_;
            return;
          }
        }
        ++i_;
      }
    } else {
      // A number, true, false or null: runs to the next delimiter.
      while (!done() && t_[i_] != ',' && t_[i_] != '}' && t_[i_] != ']' && t_[i_] != ' ' &&
             t_[i_] != '\t' && t_[i_] != '\n' && t_[i_] != '\r') {
        ++i_;
      }
    }
  }

 private:
  std::string_view t_;
  size_t i_ = 0;
};

// The key as text, with escapes decoded only when there are any.
bool key_equals(std::string_view raw, std::string_view key) {
  if (raw.find('\\') == std::string_view::npos) return raw == key;
  auto decoded = nlohmann::json::parse("\"" + std::string(raw) + "\"", nullptr, false);
  return decoded.is_string() && decoded.get_ref<const std::string&>() == key;
}

}  // namespace

std::optional<std::string_view> raw_member(std::string_view text, std::string_view key) {
  Scanner s(text);
  s.skip_ws();
  if (s.peek() != '{') return std::nullopt;
  s.advance();
  std::optional<std::string_view> found;
  for (;;) {
    s.skip_ws();
    if (s.peek() != '"') return found;  // '}' or malformed
    std::string_view name = s.string();
    s.skip_ws();
    if (s.peek() != ':') return found;
    s.advance();
    s.skip_ws();
    size_t start = s.pos();
    s.value();
    if (key_equals(name, key)) found = text.substr(start, s.pos() - start);
    s.skip_ws();
    if (s.peek() != ',') return found;
    s.advance();
  }
}

}  // namespace herald
