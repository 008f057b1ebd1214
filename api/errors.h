#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace herald {

// An API request that cannot be served as asked. One handler in the server turns it into the
// JSON error response: {code, detail} or, for 422, {detail: [{loc, msg, type}]}.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string code, std::string detail)
      : std::runtime_error(detail), status_(status), code_(std::move(code)) {}
  // A 422 carrying validation details.
  explicit ApiError(nlohmann::ordered_json validation_details)
      : std::runtime_error("validation failed"),
        status_(422),
        code_("validation"),
        validation_(std::move(validation_details)) {}

  int status() const { return status_; }
  const std::string& code() const { return code_; }
  nlohmann::ordered_json body() const;

 private:
  int status_;
  std::string code_;
  nlohmann::ordered_json validation_;
};

ApiError not_found(const std::string& what);
ApiError conflict(const std::string& detail);
ApiError bad_request(const std::string& detail);
// A single 422 detail at body.<field>.
ApiError invalid_field(const std::string& field, const std::string& msg,
                       const std::string& type = "value_error");
// A single 422 detail at query.<param>.
ApiError invalid_query(const std::string& param, const std::string& msg);

}  // namespace herald
