#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace herald {

// JSON text conversions for the columns that hold small JSON values.
std::string to_json_text(const std::vector<std::string>& v);
std::string to_json_text(const std::map<std::string, std::string>& m);
std::optional<std::string> to_json_text(const std::optional<std::vector<std::string>>& v);
std::vector<std::string> string_list_from_json(const std::string& text);
std::optional<std::vector<std::string>> opt_string_list_from_json(
    const std::optional<std::string>& text);
std::map<std::string, std::string> string_map_from_json(const std::string& text);

}  // namespace herald
