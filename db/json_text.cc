#include "db/json_text.h"

#include <nlohmann/json.hpp>

#include "db/list.h"

namespace herald {

std::string to_json_text(const std::vector<std::string>& v) {
  return nlohmann::json(v).dump();
}

std::string to_json_text(const std::map<std::string, std::string>& m) {
  return nlohmann::json(m).dump();
}

std::optional<std::string> to_json_text(const std::optional<std::vector<std::string>>& v) {
  if (!v) return std::nullopt;
  return to_json_text(*v);
}

std::vector<std::string> string_list_from_json(const std::string& text) {
  return nlohmann::json::parse(text).get<std::vector<std::string>>();
}

std::optional<std::vector<std::string>> opt_string_list_from_json(
    const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  return string_list_from_json(*text);
}

std::map<std::string, std::string> string_map_from_json(const std::string& text) {
  if (text.empty()) return {};
  return nlohmann::json::parse(text).get<std::map<std::string, std::string>>();
}

KeysetSql keyset_sql(const std::string& col, bool desc, const ListParams& p,
                     const std::string& placeholder) {
  // Reading backwards flips the direction of both the bound and the order.
  bool descending = desc != p.backwards;
  KeysetSql s;
  if (p.cursor) s.where = " AND " + col + (descending ? " < " : " > ") + placeholder;
  s.order = " ORDER BY " + col + (descending ? " DESC" : " ASC");
  return s;
}

}  // namespace herald
